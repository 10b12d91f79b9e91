// Package sqlite opens the embedded default store of a choreo service: a SQLite database (pure Go,
// modernc.org/sqlite) in WAL mode, with choreo's inbox and outbox tables and the service's own
// tables created by versioned migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var platform embed.FS

// Migrations is one component's schema changes; see package migrate.
type Migrations = migrate.Migrations

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
	// cache_size: SQLite's page cache grows with the pages a connection touches up to this bound
	// (2 MiB, SQLite's own default); at 64 MiB, then 8 MiB, it was a good part of the 64 MiB a
	// service process should take, and pages beyond the bound are read from the OS page cache, not
	// the disk (make bench's burst: no slower with 2 MiB than with 8 within its runs' noise).
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)", "cache_size(-2048)"} {
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
		if m.Component == migrate.Platform {
			return nil, fmt.Errorf("sqlite: migration component name %q is the platform's own; choose another", m.Component)
		}
	}
	all := append([]Migrations{{Component: migrate.Platform, FS: mustSub(platform, "migrations")}}, migs...)
	if err := migrate.Apply(ctx, db, all...); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Migrate applies migs to db; see migrate.Apply.
func Migrate(ctx context.Context, db *sql.DB, migs ...Migrations) error {
	return migrate.Apply(ctx, db, migs...)
}
