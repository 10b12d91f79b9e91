// Package storetest is the conformance suite of choreo's stores: every database a service can
// run on (SQLite, PostgreSQL) must pass the same tests, because the inbox, the outbox and the
// services' SQL are written once for all of them.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/outbox"
)

// Opener opens one database (always the same one) with the platform's migrations and migs.
type Opener func(ctx context.Context, migs ...migrate.Migrations) (*sql.DB, error)

// Run runs the suite; newOpener returns an Opener of a fresh, empty database for each test.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"PlatformTables", testPlatformTables},
		{"MigrationsIdempotent", testMigrationsIdempotent},
		{"InboxDeduplicates", testInboxDeduplicates},
		{"InboxConcurrentClaims", testInboxConcurrentClaims},
		{"OutboxCommitsWithTheTransaction", testOutboxCommitsWithTheTransaction},
		{"SavepointUndoesOneRecord", testSavepointUndoesOneRecord},
		{"SavepointRecoversFromAnError", testSavepointRecoversFromAnError},
		{"PortableSQL", testPortableSQL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newOpener(t))
		})
	}
}

func mustOpen(t *testing.T, open Opener, migs ...migrate.Migrations) *sql.DB {
	t.Helper()
	db, err := open(context.Background(), migs...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

var things = migrate.Migrations{Component: "things", FS: fstest.MapFS{
	"0001_things.sql": {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL);`)},
	"0002_more.sql":   {Data: []byte(`ALTER TABLE things ADD COLUMN label TEXT NOT NULL DEFAULT '';`)},
}}

func testPlatformTables(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	for _, table := range []string{"inbox", "outbox", "schema_migrations"} {
		count(t, db, `SELECT count(*) FROM `+table)
	}
}

func testMigrationsIdempotent(t *testing.T, open Opener) {
	db := mustOpen(t, open, things)
	before := count(t, db, `SELECT count(*) FROM schema_migrations`)
	if n := count(t, db, `SELECT count(*) FROM schema_migrations WHERE component = 'things'`); n != 2 {
		t.Fatalf("%d migrations of things recorded, want 2", n)
	}
	if _, err := db.Exec(`INSERT INTO things (id, n, label) VALUES ('a', 1, 'kept')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, open, things) // opening again applies nothing twice and keeps the data
	if after := count(t, db, `SELECT count(*) FROM schema_migrations`); after != before {
		t.Fatalf("schema_migrations has %d rows after reopening, %d before", after, before)
	}
	if n := count(t, db, `SELECT count(*) FROM things WHERE label = 'kept'`); n != 1 {
		t.Fatalf("the data did not survive reopening")
	}
}

func claim(ctx context.Context, tx *sql.Tx, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		"g", id, "T", time.Now().UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func testInboxDeduplicates(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	ctx := context.Background()
	for i, want := range []bool{true, false} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := claim(ctx, tx, "e1")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("claim %d of one event = %v, want %v", i+1, got, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// testInboxConcurrentClaims: two transactions claiming one event at once (two partitions carrying
// the same event, two replicas): exactly one wins.
func testInboxConcurrentClaims(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan bool, n)
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				errs <- err
				return
			}
			won, err := claim(ctx, tx, "contended")
			if err != nil {
				_ = tx.Rollback()
				errs <- err
				return
			}
			time.Sleep(5 * time.Millisecond) // hold the claim for a while
			if err := tx.Commit(); err != nil {
				errs <- err
				return
			}
			wins <- won
		}()
	}
	wg.Wait()
	close(wins)
	close(errs)
	for err := range errs {
		t.Fatalf("claim: %v", err)
	}
	won := 0
	for w := range wins {
		if w {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims won, want exactly 1", won, n)
	}
}

func testOutboxCommitsWithTheTransaction(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	ctx := context.Background()
	rec := func(v string) *kgo.Record {
		return &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(v)}, {Key: "null"}}}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Add(ctx, tx, rec("rolled back")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two", "three"} {
		if err := outbox.Add(ctx, tx, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT value FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(v))
	}
	if len(got) != 3 || got[0] != "one" || got[1] != "two" || got[2] != "three" {
		t.Fatalf("outbox holds %q, want one, two, three in order and nothing rolled back", got)
	}
}

func testSavepointUndoesOneRecord(t *testing.T, open Opener) {
	db := mustOpen(t, open, things)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO things (id, n) VALUES ($1, $2)`, "kept", 1)
	exec(`SAVEPOINT handler`)
	exec(`INSERT INTO things (id, n) VALUES ($1, $2)`, "undone", 2)
	exec(`ROLLBACK TO SAVEPOINT handler`)
	exec(`RELEASE SAVEPOINT handler`)
	exec(`SAVEPOINT handler`)
	exec(`INSERT INTO things (id, n) VALUES ($1, $2)`, "also kept", 3)
	exec(`RELEASE SAVEPOINT handler`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM things`); n != 2 || count(t, db, `SELECT count(*) FROM things WHERE id = 'undone'`) != 0 {
		t.Fatalf("%d rows; the savepoint did not undo exactly its own insert", n)
	}
}

// testSavepointRecoversFromAnError: after a failed statement (PostgreSQL then refuses everything
// until a rollback), rolling back to the savepoint lets the transaction go on.
func testSavepointRecoversFromAnError(t *testing.T, open Opener) {
	db := mustOpen(t, open, things)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT handler`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('a', 2)`); err == nil {
		t.Fatal("a duplicate primary key was accepted")
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT handler`); err != nil {
		t.Fatalf("rollback to savepoint after an error: %v", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('b', 3)`); err != nil {
		t.Fatalf("the transaction is unusable after rolling back to the savepoint: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM things`); n != 2 {
		t.Fatalf("%d rows, want a and b", n)
	}
}

// testPortableSQL covers the SQL the services share across stores: numbered placeholders (also
// repeated), RETURNING, 64-bit integers (unix milliseconds) and binary values.
func testPortableSQL(t *testing.T, open Opener) {
	db := mustOpen(t, open, things)
	ctx := context.Background()
	ms := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() // beyond 32 bits
	if _, err := db.ExecContext(ctx, `INSERT INTO things (id, n, label) VALUES ($1, $2, $1)`, "x", ms); err != nil {
		t.Fatal(err)
	}
	var label string
	var n int64
	err := db.QueryRowContext(ctx, `UPDATE things SET n = n + 1 WHERE id = $1 RETURNING label, n`, "x").Scan(&label, &n)
	if err != nil || label != "x" || n != ms+1 {
		t.Fatalf("UPDATE ... RETURNING = %q %d %v, want x %d", label, n, err, ms+1)
	}
	err = db.QueryRowContext(ctx, `UPDATE things SET n = 0 WHERE id = $1 RETURNING label`, "missing").Scan(&label)
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("RETURNING of no row: %v, want sql.ErrNoRows", err)
	}
}

// Count returns the integer query selects (a count(*)), failing t if the query fails.
func Count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
