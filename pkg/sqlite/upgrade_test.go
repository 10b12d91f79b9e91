package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/choreo-dev/choreo/pkg/migrate"
)

// A database created before the outbox kept trace context gets the columns when it is opened,
// and the rows it already holds keep their data with no trace context.
func TestOpenAddsTraceContextToAnExistingOutbox(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := `CREATE TABLE inbox (consumer TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
		processed_at INTEGER NOT NULL, PRIMARY KEY (consumer, event_id)) WITHOUT ROWID;
		CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key BLOB, value BLOB,
		headers BLOB NOT NULL, created_at INTEGER NOT NULL);`
	if err := migrate.Apply(t.Context(), old, migrate.Migrations{Component: migrate.Platform,
		FS: fstest.MapFS{"0001_inbox_outbox.sql": {Data: []byte(v1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO outbox (topic, key, value, headers, created_at) VALUES ('t', 'k', 'v', x'', 1)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db := open(t, path)
	var (
		topic       string
		traceparent sql.NullString
	)
	if err := db.QueryRow(`SELECT topic, traceparent FROM outbox`).Scan(&topic, &traceparent); err != nil {
		t.Fatalf("outbox after upgrade: %v", err)
	}
	if topic != "t" || traceparent.Valid {
		t.Errorf("old row = %q, traceparent %v; want t, NULL", topic, traceparent)
	}
}
