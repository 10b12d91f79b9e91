package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// inboxInsert records that a consumer group processed an event; a second insert of the same
// event is a no-op, which is how a redelivery is recognised.
const inboxInsert = `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`

// claimState is what the inbox said about an item's event in the current transaction.
type claimState uint8

const (
	claimPending   claimState = iota // not asked yet: the handler's turn claims it alone
	claimFresh                       // claimed for this transaction: run the handler
	claimDuplicate                   // processed before (or earlier in the batch): skip it
)

// inbox is the table of the events a consumer group processed, written in the transaction that
// applies them: the event's mark commits with the handler's changes or not at all, so an event
// redelivered after a crash or a rebalance finds its mark and is acknowledged without effect.
type inbox struct {
	group  string
	params outbox.Params
	stmt   *sql.Stmt // inboxInsert, bound to the batch's transaction
	now    int64     // processed_at, Unix milliseconds
}

// claim marks it's event as processed by the group, and reports false when it was already.
func (in inbox) claim(ctx context.Context, it *item) (fresh bool, err error) {
	switch it.claim {
	case claimFresh:
		return true, nil
	case claimDuplicate:
		return false, nil
	}
	res, err := in.stmt.ExecContext(ctx, in.group, it.Envelope.ID, it.Type.Name, in.now)
	if err != nil {
		return false, fmt.Errorf("inbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("inbox: %w", err)
	}
	return n > 0, nil
}

// claimAll claims the events of items up front, with a few multi-row statements (see
// outbox.NextRows) instead of one per item (each a round trip on PostgreSQL), and notes each item's claim. Only a transaction
// that is applied whole or not at all may do so: a record left out of the commit (one stopped
// before under a savepoint) would keep its claim and never be handled.
func (in inbox) claimAll(ctx context.Context, tx *sql.Tx, items []*item) error {
	for len(items) > 0 {
		n := outbox.NextRows(len(items))
		if err := in.claimChunk(ctx, tx, items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

func (in inbox) claimChunk(ctx context.Context, tx *sql.Tx, items []*item) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES `)
	in.params.Rows(&q, len(items), 4)
	args := make([]any, 0, 4*len(items))
	for _, it := range items {
		args = append(args, in.group, it.Envelope.ID, it.Type.Name, in.now)
	}
	q.WriteString(` ON CONFLICT DO NOTHING RETURNING event_id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(items))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	for _, it := range items {
		// An event twice in the batch was inserted once: its first record is the fresh one.
		if inserted[it.Envelope.ID] {
			it.claim = claimFresh
			delete(inserted, it.Envelope.ID)
		} else {
			it.claim = claimDuplicate
		}
	}
	return nil
}
