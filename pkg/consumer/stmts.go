package consumer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// stmts are the statements the runner runs for every record, prepared once: parsing them again
// for each record was a measurable share of a record's cost.
type stmts struct {
	savepoint, release, rollbackTo, inbox, outbox *sql.Stmt
}

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	var s stmts
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.savepoint, `SAVEPOINT handler`},
		{&s.release, `RELEASE SAVEPOINT handler`},
		{&s.rollbackTo, `ROLLBACK TO SAVEPOINT handler`},
		{&s.inbox, `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`},
		{&s.outbox, outbox.Insert},
	} {
		stmt, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = stmt
	}
	return &s, nil
}

// bind returns the statements bound to tx.
func (s *stmts) bind(ctx context.Context, tx *sql.Tx) *stmts {
	return &stmts{
		savepoint:  tx.StmtContext(ctx, s.savepoint),
		release:    tx.StmtContext(ctx, s.release),
		rollbackTo: tx.StmtContext(ctx, s.rollbackTo),
		inbox:      tx.StmtContext(ctx, s.inbox),
		outbox:     tx.StmtContext(ctx, s.outbox),
	}
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.savepoint, s.release, s.rollbackTo, s.inbox, s.outbox} {
		_ = st.Close()
	}
}
