// Package postgres opens the production store of a choreo service: a PostgreSQL database through
// pgx, with the platform's inbox and outbox tables and the service's own tables created by
// versioned migrations, the same ones as the SQLite store's (see package migrate).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var platform embed.FS

// Migrations is one component's schema changes; see package migrate.
type Migrations = migrate.Migrations

// migrationLock is the advisory lock that serialises migrations of instances starting together.
const migrationLock = 0x63686f72656f // "choreo"

// maxConns bounds a service's connections to the database.
const maxConns = 20

// Open connects to the database at dsn (a postgres:// URL or key=value string) and applies the
// platform's migrations, then each of migs. A search_path parameter in a URL names the schema the
// service's tables live in; it is created if missing, so several services (or tests) can share
// one database, each in its own schema.
func Open(ctx context.Context, dsn string, migs ...Migrations) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: DATABASE_URL: %w", err)
	}
	schema := cfg.RuntimeParams["search_path"]
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	// As many idle as open: database/sql keeps 2 by default and closes the others as they are
	// returned, so a service whose consumer, relay, sender and probes overlap opened a new
	// connection (a server process, authentication, statements prepared again) many times a
	// second. Idle connections still close after five minutes.
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s (DATABASE_URL): %w", redact(dsn), err)
	}
	for _, m := range migs {
		if m.Component == migrate.Platform {
			db.Close()
			return nil, fmt.Errorf("postgres: migration component name %q is the platform's own; choose another", m.Component)
		}
	}
	if err := migrateLocked(ctx, db, schema, migs); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrateLocked(ctx context.Context, db *sql.DB, schema string, migs []Migrations) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: lock for migrations: %w", err)
	}
	defer func() {
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
		err = errors.Join(err, uerr)
	}()
	if schema != "" && !strings.ContainsAny(schema, `,"`) {
		// The server folds an unquoted search_path entry to lower case: create that schema.
		if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{strings.ToLower(schema)}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: create schema %s: %w", schema, err)
		}
	}
	sub, err := fs.Sub(platform, "migrations")
	if err != nil {
		return err
	}
	return migrate.Apply(ctx, conn, append([]Migrations{{Component: migrate.Platform, FS: sub}}, migs...)...)
}

// redact hides a URL's password in messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// WithSearchPath returns dsn (a URL) with its search_path set to schema.
func WithSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("postgres: DATABASE_URL is not a URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
