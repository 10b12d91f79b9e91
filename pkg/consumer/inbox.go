package consumer

import (
	"context"
	"database/sql"
	"fmt"
)

// inboxInsert records that a consumer group processed an event; a second insert of the same
// event is a no-op, which is how a redelivery is recognised.
const inboxInsert = `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`

// inbox is the table of the events a consumer group processed, written in the transaction that
// applies them: the event's mark commits with the handler's changes or not at all, so an event
// redelivered after a crash or a rebalance finds its mark and is acknowledged without effect.
type inbox struct {
	group string
	stmt  *sql.Stmt // inboxInsert, bound to the batch's transaction
	now   int64     // processed_at, Unix milliseconds
}

// claim marks it's event as processed by the group, and reports false when it was already.
func (in inbox) claim(ctx context.Context, it *item) (fresh bool, err error) {
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
