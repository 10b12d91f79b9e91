package migrate_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/choreo-dev/choreo/pkg/migrate"
)

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestApplyInVersionOrderOnce: files are applied by version number (not by name: 10 after 9),
// each once, and a later Apply with a new file applies only that one.
func TestApplyInVersionOrderOnce(t *testing.T) {
	t.Parallel()
	db := open(t)
	fsys := fstest.MapFS{
		"0010_third.sql":  {Data: []byte(`INSERT INTO log (step) VALUES ('third');`)},
		"0001_first.sql":  {Data: []byte(`CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, step TEXT NOT NULL);`)},
		"0009_second.sql": {Data: []byte(`INSERT INTO log (step) VALUES ('second');`)},
		"README.md":       {Data: []byte(`not a migration`)},
	}
	ctx := context.Background()
	for range 2 {
		if err := migrate.Apply(ctx, db, migrate.Migrations{Component: "c", FS: fsys}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	var steps []string
	rows, err := db.Query(`SELECT step FROM log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, s)
	}
	rows.Close()
	if strings.Join(steps, ",") != "second,third" {
		t.Errorf("applied %v, want second then third, once each", steps)
	}
	fsys["0011_fourth.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO log (step) VALUES ('fourth');`)}
	if err := migrate.Apply(ctx, db, migrate.Migrations{Component: "c", FS: fsys}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM log`); n != 3 {
		t.Errorf("%d rows after adding one migration, want 3", n)
	}
	if n := count(t, db, `SELECT count(*) FROM schema_migrations WHERE component = 'c'`); n != 4 {
		t.Errorf("%d versions recorded, want 4", n)
	}
}

// TestFailedMigrationLeavesNoTrace: a file that fails is rolled back with its record, so fixing
// it and applying again works.
func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	good := fstest.MapFS{"0001_t.sql": {Data: []byte(`CREATE TABLE t (id TEXT PRIMARY KEY);`)}}
	bad := fstest.MapFS{
		"0001_t.sql":   good["0001_t.sql"],
		"0002_bad.sql": {Data: []byte(`INSERT INTO t (id) VALUES ('x'); INSERT INTO nowhere VALUES (1);`)},
	}
	err := migrate.Apply(ctx, db, migrate.Migrations{Component: "c", FS: bad})
	if err == nil || !strings.Contains(err.Error(), "c/0002_bad.sql") {
		t.Fatalf("Apply = %v, want an error naming c/0002_bad.sql", err)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 0 {
		t.Errorf("%d rows of the failed migration kept", n)
	}
	if n := count(t, db, `SELECT count(*) FROM schema_migrations WHERE version = 2`); n != 0 {
		t.Error("the failed migration was recorded")
	}
	bad["0002_bad.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO t (id) VALUES ('x');`)}
	if err := migrate.Apply(ctx, db, migrate.Migrations{Component: "c", FS: bad}); err != nil {
		t.Fatalf("Apply after the fix: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM t`); n != 1 {
		t.Errorf("%d rows after the fix, want 1", n)
	}
}

// TestComponentsAreIndependent: two components may use the same version numbers.
func TestComponentsAreIndependent(t *testing.T) {
	t.Parallel()
	db := open(t)
	a := fstest.MapFS{"0001_a.sql": {Data: []byte(`CREATE TABLE a (x INT);`)}}
	b := fstest.MapFS{"0001_b.sql": {Data: []byte(`CREATE TABLE b (x INT);`)}}
	if err := migrate.Apply(context.Background(), db, migrate.Migrations{Component: "a", FS: a}, migrate.Migrations{Component: "b", FS: b}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM schema_migrations`); n != 2 {
		t.Errorf("%d versions recorded, want 2", n)
	}
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	ok := fstest.MapFS{"0001_a.sql": {Data: []byte(`SELECT 1;`)}}
	tests := []struct {
		name string
		migs []migrate.Migrations
		want string
	}{
		{"empty component", []migrate.Migrations{{Component: "", FS: ok}}, "empty or given twice"},
		{"component twice", []migrate.Migrations{{Component: "c", FS: ok}, {Component: "c", FS: ok}}, "empty or given twice"},
		{"name without version", []migrate.Migrations{{Component: "c", FS: fstest.MapFS{"init.sql": {}}}}, "NNNN_description.sql"},
		{"version zero", []migrate.Migrations{{Component: "c", FS: fstest.MapFS{"0000_x.sql": {}}}}, "NNNN_description.sql"},
		{"shared version", []migrate.Migrations{{Component: "c", FS: fstest.MapFS{"0001_x.sql": {}, "1_y.sql": {}}}}, "share version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := migrate.Apply(context.Background(), open(t), tt.migs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDir(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte(`SELECT 1;`)}}
	m := migrate.Dir("c", fsys, "migrations")
	if m.Component != "c" {
		t.Errorf("Component = %q", m.Component)
	}
	if err := migrate.Apply(context.Background(), open(t), m); err != nil {
		t.Errorf("Apply of Dir: %v", err)
	}
}
