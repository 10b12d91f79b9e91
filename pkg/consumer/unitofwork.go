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
