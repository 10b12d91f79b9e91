package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// stmts are the statements the runner runs for every record, prepared once: parsing them again
// for each record was a measurable share of a record's cost. Handlers' statements (UnitOfWork's
// ExecContext and friends) are prepared on first use and kept too, up to maxCached.
type stmts struct {
	savepoint, release, rollbackTo, inbox, outbox *sql.Stmt

	db     *sql.DB
	cache  *sync.Map // query -> *sql.Stmt prepared on db, shared by all batches
	size   *atomic.Int64
	wanted *sync.Map // queries met inside a transaction, to prepare on db before the next

	tx    *sql.Tx              // set on a bound copy
	bound map[string]*sql.Stmt // cache entries bound to tx
}

// maxCached bounds the handler statements kept prepared; past it (SQL built per call, say)
// statements are run unprepared.
const maxCached = 256

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := stmts{db: db, cache: &sync.Map{}, size: &atomic.Int64{}, wanted: &sync.Map{}}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.savepoint, `SAVEPOINT handler`},
		{&s.release, `RELEASE SAVEPOINT handler`},
		{&s.rollbackTo, `ROLLBACK TO SAVEPOINT handler`},
		{&s.inbox, inboxInsert},
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
		db:         s.db, cache: s.cache, size: s.size, wanted: s.wanted,
		tx: tx, bound: make(map[string]*sql.Stmt),
	}
}

// prepareWanted prepares on the database the queries handlers ran since the last call. It runs
// outside any transaction: a pool of one connection (SQLite) has none to spare inside one.
func (s *stmts) prepareWanted(ctx context.Context) {
	s.wanted.Range(func(k, _ any) bool {
		s.wanted.Delete(k)
		query := k.(string)
		if _, ok := s.cache.Load(query); ok || s.size.Load() >= maxCached {
			return true
		}
		p, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return true // it runs unprepared, and its error shows there
		}
		if _, loaded := s.cache.LoadOrStore(query, p); loaded {
			_ = p.Close()
		} else {
			s.size.Add(1)
		}
		return true
	})
}

// stmt returns query prepared and bound to the transaction, or nil when it is not prepared
// yet (it is then noted, and prepared before the next transaction) or the cache is full: the
// caller runs it unprepared.
func (s *stmts) stmt(ctx context.Context, query string) *sql.Stmt {
	if b := s.bound[query]; b != nil {
		return b
	}
	v, ok := s.cache.Load(query)
	if !ok {
		if s.size.Load() < maxCached {
			s.wanted.Store(query, struct{}{})
		}
		return nil
	}
	b := s.tx.StmtContext(ctx, v.(*sql.Stmt))
	s.bound[query] = b
	return b
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.savepoint, s.release, s.rollbackTo, s.inbox, s.outbox} {
		_ = st.Close()
	}
	s.cache.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
}
