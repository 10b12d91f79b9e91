// Package sqlite opens the embedded default store of a choreo service: a SQLite database (pure Go,
// modernc.org/sqlite) in WAL mode, with choreo's inbox and outbox tables and the service's own
// tables created by versioned migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var platform embed.FS

// Migrations is one component's ordered schema changes: files named NNNN_description.sql at the
// root of FS, applied in version order, each once.
type Migrations struct {
	// Component names whose migrations these are ("choreo" is taken by the platform's own).
	Component string
	FS        fs.FS
}

// Open opens (creating if needed) the database at path and applies the platform's migrations and
// then each of migs. Applying is idempotent: a version already recorded is skipped.
//
// SQLite allows one writer at a time, so the pool holds one connection: callers queue in
// database/sql instead of failing with SQLITE_BUSY.
func Open(ctx context.Context, path string, migs ...Migrations) (*sql.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: create directory of %s: %w", path, err)
		}
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// A file: URI decodes %XX and ends the path at ? or #: escape exactly those.
	uriPath := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+uriPath+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	for _, m := range migs {
		if m.Component == platformComponent {
			return nil, fmt.Errorf("sqlite: migration component name %q is the platform's own; choose another", m.Component)
		}
	}
	all := append([]Migrations{{Component: platformComponent, FS: mustSub(platform, "migrations")}}, migs...)
	if err := Migrate(ctx, db, all...); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// platformComponent names the inbox and outbox migrations.
const platformComponent = "choreo"

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Migrate applies the migrations of each component that db has not recorded yet, each file in
// its own transaction together with its record.
func Migrate(ctx context.Context, db *sql.DB, migs ...Migrations) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	seen := map[string]bool{}
	for _, m := range migs {
		if m.Component == "" || seen[m.Component] {
			return fmt.Errorf("sqlite: migration component %q is empty or given twice; each component needs its own name", m.Component)
		}
		seen[m.Component] = true
	}
	for _, m := range migs {
		files, err := migrationFiles(m)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := apply(ctx, db, m, f); err != nil {
				return err
			}
		}
	}
	return nil
}

type migrationFile struct {
	version int
	name    string
}

func migrationFiles(m Migrations) ([]migrationFile, error) {
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations of %s: %w", m.Component, err)
	}
	var files []migrationFile
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %s/%s: name must be NNNN_description.sql", m.Component, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlite: migrations %s and %s of %s share version %d", prev, e.Name(), m.Component, v)
		}
		seen[v] = e.Name()
		files = append(files, migrationFile{version: v, name: e.Name()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].version < files[j].version })
	return files, nil
}

func apply(ctx context.Context, db *sql.DB, m Migrations, f migrationFile) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate %s/%s: %w", m.Component, f.name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE component = $1 AND version = $2`,
		m.Component, f.version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	body, err := fs.ReadFile(m.FS, f.name)
	if err != nil {
		return fmt.Errorf("sqlite: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("sqlite: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)`,
		m.Component, f.version, f.name); err != nil {
		return fmt.Errorf("sqlite: migrate %s/%s: %w", m.Component, f.name, err)
	}
	return tx.Commit()
}
