package consumer_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"modernc.org/sqlite"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/event"
	choreosqlite "github.com/choreo-dev/choreo/pkg/sqlite"
)

// inserted is written by handlers with UnitOfWork.Insert: seq gives the order rows were written
// in, the CHECK lets a test make one row bad, the unique id makes a second row a conflict. On
// PostgreSQL a statement trigger counts the statements that insert into it.
const (
	insertedSQLite = `
CREATE TABLE inserted (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id  TEXT    NOT NULL UNIQUE,
    n   INTEGER NOT NULL CHECK (n >= 0)
);`
	insertedPostgres = `
CREATE TABLE inserted (
    seq BIGSERIAL PRIMARY KEY,
    id  TEXT   NOT NULL UNIQUE,
    n   BIGINT NOT NULL CHECK (n >= 0)
);
CREATE TABLE insert_statements (n BIGINT NOT NULL);
INSERT INTO insert_statements (n) VALUES (0);
CREATE FUNCTION count_insert_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE insert_statements SET n = n + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER inserted_statements AFTER INSERT ON inserted FOR EACH STATEMENT EXECUTE FUNCTION count_insert_statement();`
)

// insertRow is the Insert of the tests' handlers.
var insertRow = consumer.Insert{Into: `INSERT INTO inserted (id, n)`, Columns: 2, Then: `ON CONFLICT DO NOTHING`}

// onAccountCreatedInsert is a handler that adds the row (username, n) with UnitOfWork.Insert, n
// being -1 (refused by the CHECK) for a username beginning with "bad".
func onAccountCreatedInsert(name string, calls *atomic.Int64) consumer.Handler {
	return consumer.On(name, func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
		calls.Add(1)
		n := int64(len(ev.Username))
		if strings.HasPrefix(ev.Username, "bad") {
			n = -1
		}
		return tx.Insert(ctx, insertRow, ev.Username, n)
	})
}

// insertedIDs returns the ids of inserted in the order they were written.
func insertedIDs(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM inserted ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// openCountingDB is openDB with a count of the statements that inserted into the table
// inserted: on PostgreSQL from the statement trigger; on SQLite from the driver's connections,
// wrapped to count the statements they run (with $N parameters then: the wrapped driver is not
// recognised as SQLite's, which SQLite accepts too).
func openCountingDB(t *testing.T) (*sql.DB, func() int64) {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") != "" {
		db := openDB(t)
		return db, func() int64 {
			var n int64
			if err := db.QueryRow(`SELECT n FROM insert_statements`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	// The schema first, as openDB makes it; then the same file through the counting driver.
	path := filepath.Join(t.TempDir(), "db")
	mig, err := choreosqlite.Open(context.Background(), path, testMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if err := mig.Close(); err != nil {
		t.Fatal(err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	c := &countingConnector{dsn: "file:" + path + "?" + q.Encode(), prefix: "INSERT INTO inserted"}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db, c.n.Load
}

// countingConnector opens SQLite connections that count the statements run whose text begins
// with prefix, prepared or not.
type countingConnector struct {
	dsn, prefix string
	n           atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.Driver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: c}, nil
}

func (c *countingConnector) Driver() driver.Driver { return &sqlite.Driver{} }

func (c *countingConnector) count(query string) {
	if strings.HasPrefix(query, c.prefix) {
		c.n.Add(1)
	}
}

// countingConn forwards what database/sql asks of a SQLite connection.
type countingConn struct {
	driver.Conn
	c *countingConnector
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, query: query, c: c.c}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.c.count(query)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.c.count(query)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *countingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

type countingStmt struct {
	driver.Stmt
	query string
	c     *countingConnector
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.count(s.query)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.count(s.query)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// TestInsertWritesABatchsRowsAtCommit: rows that handlers add in an unguarded batch are all
// written, in the order added, with fewer statements than rows; a key twice in the batch is
// written once (ON CONFLICT DO NOTHING within one multi-row statement), its first row kept.
func TestInsertWritesABatchsRowsAtCommit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db, statements := openCountingDB(t)
	var calls atomic.Int64
	n := h.start(t, db, group, []consumer.Handler{onAccountCreatedInsert("insert", &calls)})

	const records = 40
	var want []string
	recs := make([]*kgo.Record, 0, records)
	for i := range records {
		user := fmt.Sprintf("user-%02d", i)
		if i == 25 {
			user = "user-07" // a key already added in the batch
		} else {
			want = append(want, user)
		}
		recs = append(recs, h.accountCreated(t, 0, fmt.Sprintf("id-%d", i), fmt.Sprintf("acc-%d", i), user))
	}
	h.produce(t, recs...)
	n.waitStats(t, "every record handled", func(s consumer.Stats) bool { return s.Handled >= records })

	if st := n.runner.Stats(); st != (consumer.Stats{Handled: records}) {
		t.Errorf("stats = %+v, want %d handled", st, records)
	}
	if got := insertedIDs(t, db); !slices.Equal(got, want) {
		t.Errorf("rows written %v,\nwant %v", got, want)
	}
	if s := statements(); s == 0 || s >= records {
		t.Errorf("%d statements inserted the %d rows, want at least one and fewer than the rows", s, records)
	} else {
		t.Logf("%d statements for %d rows", s, records)
	}
}

// TestInsertParksTheRecordWhoseRowIsRefused: one record's row breaks a CHECK, which shows only
// when the batch's rows are written at commit. The batch must be applied again record by record:
// the others commit, and the bad record's handler fails, is retried and parked, not retried
// forever.
func TestInsertParksTheRecordWhoseRowIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	var calls atomic.Int64
	n := h.start(t, db, group, []consumer.Handler{onAccountCreatedInsert("insert", &calls)},
		consumer.Retry(consumer.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond}))

	bad := h.accountCreated(t, 0, "id-bad", "acc-bad", "bad-one")
	h.produce(t,
		h.accountCreated(t, 0, "id-1", "acc-1", "ok-1"),
		h.accountCreated(t, 0, "id-2", "acc-2", "ok-2"),
		bad,
		h.accountCreated(t, 0, "id-3", "acc-3", "ok-3"),
		h.accountCreated(t, 0, "id-4", "acc-4", "ok-4"))

	// A runner retrying the batch forever never gets here; the deadline only bounds the failure.
	n.waitStats(t, "4 handled and 1 parked", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 5 })
	n.flush(t)
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 4, Parked: 1, Retried: 1}) {
		t.Errorf("stats = %+v, want 4 handled, 1 retried once and parked", st)
	}
	if got, want := insertedIDs(t, db), []string{"ok-1", "ok-2", "ok-3", "ok-4"}; !slices.Equal(got, want) {
		t.Errorf("rows written %v, want %v", got, want)
	}
	parked := h.readTopic(t, deadletter.Topic(group))
	if len(parked) != 1 {
		t.Fatalf("%d parked records, want 1", len(parked))
	}
	checkParked(t, h, parked[0], bad, "insert", deadletter.ReasonHandler)
	if hs := headers(parked[0]); !strings.Contains(strings.ToLower(hs[deadletter.HeaderError]), "check") {
		t.Errorf("%s = %q, want the database's refusal of the row", deadletter.HeaderError, hs[deadletter.HeaderError])
	}
}

// TestInsertRefusesAWrongNumberOfValues: a row with more or fewer values than the Insert's
// columns is a programmer's error, parked at once without retries.
func TestInsertRefusesAWrongNumberOfValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	n := h.start(t, db, group, []consumer.Handler{consumer.On("insert",
		func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
			if ev.Username == "short" {
				return tx.Insert(ctx, insertRow, ev.Username)
			}
			return tx.Insert(ctx, insertRow, ev.Username, 1)
		})})
	h.produce(t,
		h.accountCreated(t, 0, "id-1", "acc-1", "short"),
		h.accountCreated(t, 0, "id-2", "acc-2", "full"))
	n.waitStats(t, "2 records", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 2 })
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 1, Parked: 1}) {
		t.Errorf("stats = %+v, want 1 handled, 1 parked at once", st)
	}
	if got := insertedIDs(t, db); !slices.Equal(got, []string{"full"}) {
		t.Errorf("rows written %v, want [full]", got)
	}
}
