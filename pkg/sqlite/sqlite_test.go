package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/choreo-dev/choreo/pkg/sqlite"
)

type migrationRow struct {
	component string
	version   int
	name      string
}

func migrationRows(t *testing.T, db *sql.DB) []migrationRow {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT component, version, name FROM schema_migrations ORDER BY component, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []migrationRow
	for rows.Next() {
		var r migrationRow
		if err := rows.Scan(&r.component, &r.version, &r.name); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func open(t *testing.T, path string, migs ...sqlite.Migrations) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path, migs...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenAppliesPlatformMigrations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "svc.db") // Open creates the directory
	db := open(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
	if got, want := tables(t, db), []string{"inbox", "outbox", "schema_migrations"}; !slices.Equal(got, want) {
		t.Errorf("tables = %v, want %v", got, want)
	}
	if got, want := migrationRows(t, db), []migrationRow{{"choreo", 1, "0001_inbox_outbox.sql"}, {"choreo", 2, "0002_outbox_trace_context.sql"}}; !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
	// The tables are usable as the outbox relay and the inbox use them.
	if _, err := db.ExecContext(t.Context(), `INSERT INTO outbox (topic, key, value, headers, created_at) VALUES ($1, $2, $3, $4, $5)`,
		"accounts", []byte("k"), []byte{0, 0, 0, 0, 1}, []byte("{}"), 1); err != nil {
		t.Errorf("insert into outbox: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4)`,
		"g", "e1", "AccountCreated", 1); err != nil {
		t.Errorf("insert into inbox: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4)`,
		"g", "e1", "AccountCreated", 2); err == nil {
		t.Error("inbox accepted one event twice for one consumer")
	}
}

func TestOpenPragmas(t *testing.T) {
	t.Parallel()
	db := open(t, filepath.Join(t.TempDir(), "svc.db"))
	for _, tt := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		t.Run(tt.pragma, func(t *testing.T) {
			var got string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
}

// component's migrations are deliberately named so that name order differs from version order:
// 10 alters the table 9 creates.
var component = sqlite.Migrations{Component: "widgets", FS: fstest.MapFS{
	"9_widgets.sql":       {Data: []byte(`CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL);`)},
	"10_widget_color.sql": {Data: []byte(`ALTER TABLE widgets ADD COLUMN color TEXT NOT NULL DEFAULT 'red';`)},
	"README.md":           {Data: []byte(`not a migration`)},
	"notes/0001_x.sql":    {Data: []byte(`not a migration either: in a subdirectory`)},
}}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "svc.db")
	want := []migrationRow{{"choreo", 1, "0001_inbox_outbox.sql"}, {"choreo", 2, "0002_outbox_trace_context.sql"}, {"widgets", 9, "9_widgets.sql"}, {"widgets", 10, "10_widget_color.sql"}}

	db, err := sqlite.Open(t.Context(), path, component)
	if err != nil {
		t.Fatal(err)
	}
	if got := migrationRows(t, db); !slices.Equal(got, want) {
		t.Errorf("first open: schema_migrations = %v, want %v", got, want)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO widgets (id, name) VALUES ($1, $2)`, "w1", "sprocket"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, component)
	if got := migrationRows(t, db); !slices.Equal(got, want) {
		t.Errorf("second open: schema_migrations = %v, want %v", got, want)
	}
	var name, color string
	if err := db.QueryRowContext(t.Context(), `SELECT name, color FROM widgets WHERE id = $1`, "w1").Scan(&name, &color); err != nil {
		t.Fatalf("data written before reopening: %v", err)
	}
	if name != "sprocket" || color != "red" {
		t.Errorf("widget = %q, %q; want sprocket, red", name, color)
	}

	// Migrate on an open database is a no-op too.
	if err := sqlite.Migrate(t.Context(), db, component); err != nil {
		t.Errorf("Migrate again: %v", err)
	}
	if got := migrationRows(t, db); !slices.Equal(got, want) {
		t.Errorf("after Migrate: schema_migrations = %v, want %v", got, want)
	}
}

func TestMigrationAddedLater(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "svc.db")
	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte(`CREATE TABLE a (id INTEGER PRIMARY KEY);`)}}
	db, err := sqlite.Open(t.Context(), path, sqlite.Migrations{Component: "c", FS: v1})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": {Data: []byte(`CREATE TABLE b (id INTEGER PRIMARY KEY, a INTEGER REFERENCES a (id));`)},
	}
	db = open(t, path, sqlite.Migrations{Component: "c", FS: v2})
	if got, want := tables(t, db), []string{"a", "b", "inbox", "outbox", "schema_migrations"}; !slices.Equal(got, want) {
		t.Errorf("tables = %v, want %v", got, want)
	}
	// foreign_keys is on: a dangling reference is refused.
	if _, err := db.ExecContext(t.Context(), `INSERT INTO b (id, a) VALUES ($1, $2)`, 1, 42); err == nil {
		t.Error("insert with a dangling foreign key succeeded")
	}
}

func TestBadMigrations(t *testing.T) {
	t.Parallel()
	ok := &fstest.MapFile{Data: []byte(`CREATE TABLE t (id INTEGER);`)}
	tests := []struct {
		name    string
		fs      fstest.MapFS
		wantErr []string // substrings of the error
	}{
		{name: "no version", fs: fstest.MapFS{"accounts.sql": ok}, wantErr: []string{"accounts.sql", "NNNN_description.sql"}},
		{name: "no description", fs: fstest.MapFS{"0001.sql": ok}, wantErr: []string{"0001.sql", "NNNN_description.sql"}},
		{name: "version not a number", fs: fstest.MapFS{"v1_accounts.sql": ok}, wantErr: []string{"v1_accounts.sql"}},
		{name: "version 0", fs: fstest.MapFS{"0000_init.sql": ok}, wantErr: []string{"0000_init.sql"}},
		{name: "negative version", fs: fstest.MapFS{"-1_init.sql": ok}, wantErr: []string{"-1_init.sql"}},
		{name: "duplicate version", fs: fstest.MapFS{"0001_a.sql": ok, "1_b.sql": ok}, wantErr: []string{"0001_a.sql", "1_b.sql", "version 1"}},
		{
			name:    "SQL error",
			fs:      fstest.MapFS{"0001_ok.sql": ok, "0002_broken.sql": {Data: []byte(`CREATE TABLE u (id INTEGER); CREATE TABEL v (id INTEGER);`)}},
			wantErr: []string{"0002_broken.sql"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "svc.db")
			db, err := sqlite.Open(t.Context(), path, sqlite.Migrations{Component: "bad-component", FS: tt.fs})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			for _, s := range append(tt.wantErr, "bad-component") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// A failed migration leaves nothing of itself behind.
			db = open(t, path)
			for _, r := range migrationRows(t, db) {
				if r.component == "bad-component" && r.version != 1 {
					t.Errorf("schema_migrations records %v", r)
				}
			}
			if slices.Contains(tables(t, db), "u") {
				t.Error("table u of the failed migration exists: the migration was not rolled back")
			}
		})
	}
}

func TestDollarPlaceholders(t *testing.T) {
	t.Parallel()
	db := open(t, filepath.Join(t.TempDir(), "svc.db"), sqlite.Migrations{Component: "kv", FS: fstest.MapFS{
		"0001_kv.sql": {Data: []byte(`CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, n INTEGER);`)},
	}})
	tests := []struct {
		k, v string
		n    int64
	}{
		{"a", "one", 1},
		{"b", "it's $2 -- not a placeholder", -7},
		{"c", "", 1 << 40},
	}
	for _, tt := range tests {
		if _, err := db.ExecContext(t.Context(), `INSERT INTO kv (n, k, v) VALUES ($3, $1, $2)`, tt.k, tt.v, tt.n); err != nil {
			t.Fatalf("insert %q: %v", tt.k, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.k, func(t *testing.T) {
			var v string
			var n int64
			// $1 used twice binds one argument twice.
			err := db.QueryRowContext(t.Context(), `SELECT v, n FROM kv WHERE k = $1 AND k >= $1`, tt.k).Scan(&v, &n)
			if err != nil {
				t.Fatal(err)
			}
			if v != tt.v || n != tt.n {
				t.Errorf("got %q, %d; want %q, %d", v, n, tt.v, tt.n)
			}
		})
	}
}

func TestOpenPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
	}{
		{name: "plain", file: "svc.db"},
		{name: "space", file: "my svc.db"},
		{name: "hash", file: "svc#1.db"},
		{name: "question mark", file: "svc?.db"},
		{name: "percent", file: "svc%41.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			db := open(t, path)
			var mode string
			if err := db.QueryRowContext(context.Background(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode = %q, %v; want wal", mode, err)
			}
			if _, err := os.Stat(path); err != nil {
				entries, _ := os.ReadDir(dir)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("database not at %s (%v); directory holds %v", path, err, names)
			}
		})
	}
}

func TestComponentNameCollision(t *testing.T) {
	t.Parallel()
	mig := func(component, file, table string) sqlite.Migrations {
		return sqlite.Migrations{Component: component, FS: fstest.MapFS{file: {Data: []byte(`CREATE TABLE ` + table + ` (id INTEGER);`)}}}
	}
	tests := []struct {
		name string
		migs []sqlite.Migrations
	}{
		{
			name: "the platform's component name",
			migs: []sqlite.Migrations{mig("choreo", "0001_mine.sql", "mine")},
		},
		{
			name: "one component twice",
			migs: []sqlite.Migrations{mig("c", "0001_a.sql", "a"), mig("c", "0001_b.sql", "b")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "svc.db"), tt.migs...)
			if err == nil {
				t.Errorf("Open succeeded with tables %v; want an error naming the colliding component", tables(t, db))
				db.Close()
			}
		})
	}
}
