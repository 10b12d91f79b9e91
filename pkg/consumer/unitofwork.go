package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// UnitOfWork is what a handler runs in: more than a database transaction (it is not a *sql.Tx),
// its statements, the inbox record of the event and the events emitted with Emit (the outbox)
// commit together or not at all.
type UnitOfWork struct {
	tx      *batchTx
	r       *Runner
	h       *Handler
	cause   envelope.Envelope
	emitted map[string]int
}

// ExecContext runs a statement in the transaction. Statements are prepared on first use and
// kept for the runner's life.
func (tx *UnitOfWork) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.tx.stmts.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.tx.sql.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (tx *UnitOfWork) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.tx.stmts.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.tx.sql.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query returning at most one row in the transaction.
func (tx *UnitOfWork) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.tx.stmts.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.tx.sql.QueryRowContext(ctx, query, args...)
}

// Insert adds a row of ins, len(args) == ins.Columns values, to write in the transaction.
//
// In a batch applied without savepoints (the common case) the row is held back and written at
// commit with the batch's other rows of ins, in the order added, with a few multi-row
// statements: one statement per row was a large share of a handler's cost (on PostgreSQL, a
// round trip each). So it is for rows that nothing reads back before the transaction commits:
// a later statement of the same batch (this handler's or another record's) does not see the
// row, and nobody learns whether it was written (RowsAffected) or what it conflicted with.
// If writing the rows at commit fails, no record can be blamed for it: the runner rolls back
// and applies the batch again guarded (each record under a savepoint), where Insert writes the
// row at once, so a row the database refuses fails its own handler, which is retried and
// parked per the RetryPolicy like any failure, while the other records commit.
//
// A wrong number of values is a permanent error at once.
func (tx *UnitOfWork) Insert(ctx context.Context, ins Insert, args ...any) error {
	return tx.tx.insert(ctx, tx, ins, args)
}

// Cause returns the envelope of the event being handled.
func (tx *UnitOfWork) Cause() envelope.Envelope { return tx.cause }

// Emit adds ev to the outbox, caused by the event being handled: same correlation ID, causation
// ID = the cause's ID, and an ID derived from the cause's, so that handling the same cause again
// emits the very same fact. It is published once the transaction commits.
func (tx *UnitOfWork) Emit(ctx context.Context, ev event.Event) error {
	name := event.NameOf(ev)
	if !slices.Contains(tx.h.emits, name) {
		return fmt.Errorf("%s emits %s: %w", tx.h.name, name, ErrUndeclaredEmit)
	}
	t, err := tx.r.cfg.Codec.Types().Of(ev)
	if err != nil {
		return err
	}
	if tx.emitted == nil {
		tx.emitted = make(map[string]int, 1)
	}
	n := tx.emitted[name]
	tx.emitted[name] = n + 1
	env := tx.cause.Caused(name, tx.r.source, t.KeyOf(ev)+"#"+strconv.Itoa(n), tx.r.opts.now())
	rec, err := tx.r.cfg.Codec.Record(env, ev)
	if err != nil {
		return err
	}
	return tx.tx.emit(ctx, rec)
}
