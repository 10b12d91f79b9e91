package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// errNoSavepoint is rollbackTo's error in an unguarded transaction.
var errNoSavepoint = errors.New("no savepoint")

// batchTx is the transaction a batch of records is applied in, with the runner's statements
// bound to it. Guarded, each handler runs under a savepoint, so that its failure undoes its own
// changes only; unguarded, the savepoint methods do nothing.
type batchTx struct {
	sql     *sql.Tx
	stmts   *stmts
	inbox   inbox
	guarded bool
	// emitted are the outbox records of an unguarded transaction, written together at commit
	// (one statement instead of one per record); a guarded one writes each under its savepoint.
	emitted []outbox.Entry
	// inserts are the rows handlers added with UnitOfWork.Insert in an unguarded transaction,
	// written together at commit; a guarded one writes each under its savepoint.
	inserts []rowsOf
}

func (r *Runner) begin(ctx context.Context, guarded bool) (*batchTx, error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	st := r.stmts.bind(ctx, tx)
	return &batchTx{
		sql: tx, stmts: st, guarded: guarded,
		inbox: inbox{group: r.cfg.Group, params: r.params, stmt: st.inbox, now: r.opts.now().UnixMilli()},
	}, nil
}

// emit adds rec to the outbox of the transaction.
func (t *batchTx) emit(ctx context.Context, rec *kgo.Record) error {
	if t.guarded {
		return outbox.AddPrepared(ctx, t.stmts.outbox, rec)
	}
	t.emitted = append(t.emitted, outbox.NewEntry(ctx, rec))
	return nil
}

// commit writes the rows and the outbox records held back and commits. A failure to write the
// rows is an *errDeferredInsert.
func (t *batchTx) commit(ctx context.Context) error {
	if err := t.writeInserts(ctx); err != nil {
		return err
	}
	if err := outbox.AddAll(ctx, t.sql, t.inbox.params, t.stmts.outbox, t.emitted); err != nil {
		return err
	}
	if err := t.sql.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (t *batchTx) rollback() { _ = t.sql.Rollback() }

func (t *batchTx) savepoint(ctx context.Context) error {
	if !t.guarded {
		return nil
	}
	if _, err := t.stmts.savepoint.ExecContext(ctx); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	return nil
}

func (t *batchTx) release(ctx context.Context) error {
	if !t.guarded {
		return nil
	}
	if _, err := t.stmts.release.ExecContext(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// rollbackTo undoes what was done since the savepoint. Unguarded there is none: it fails with
// errNoSavepoint.
func (t *batchTx) rollbackTo(ctx context.Context) error {
	if !t.guarded {
		return errNoSavepoint
	}
	if _, err := t.stmts.rollbackTo.ExecContext(ctx); err != nil {
		return fmt.Errorf("rollback to savepoint: %w", err)
	}
	return nil
}
