// Package migrate applies versioned schema migrations to a database/sql database, per component
// (the platform's inbox and outbox, each service's own tables), idempotently: a version already
// recorded in schema_migrations is skipped. It uses only SQL that SQLite and PostgreSQL share.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrations is one component's ordered schema changes: files named NNNN_description.sql at the
// root of FS, applied in version order, each once.
type Migrations struct {
	// Component names whose migrations these are ("choreo" is taken by the platform's own).
	Component string
	FS        fs.FS
}

// Platform names the component of choreo's own tables (inbox, outbox).
const Platform = "choreo"

// DB is what Apply needs of a *sql.DB or *sql.Conn.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Apply applies the migrations of each component that db has not recorded yet, each file in
// its own transaction together with its record.
func Apply(ctx context.Context, db DB, migs ...Migrations) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,
		PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	seen := map[string]bool{}
	for _, m := range migs {
		if m.Component == "" || seen[m.Component] {
			return fmt.Errorf("migrate: migration component %q is empty or given twice; each component needs its own name", m.Component)
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
		return nil, fmt.Errorf("migrate: migrations of %s: %w", m.Component, err)
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
			return nil, fmt.Errorf("migrate: migration %s/%s: name must be NNNN_description.sql", m.Component, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrate: migrations %s and %s of %s share version %d", prev, e.Name(), m.Component, v)
		}
		seen[v] = e.Name()
		files = append(files, migrationFile{version: v, name: e.Name()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].version < files[j].version })
	return files, nil
}

func apply(ctx context.Context, db DB, m Migrations, f migrationFile) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: migrate %s/%s: %w", m.Component, f.name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE component = $1 AND version = $2`,
		m.Component, f.version).Scan(&n); err != nil {
		return fmt.Errorf("migrate: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	body, err := fs.ReadFile(m.FS, f.name)
	if err != nil {
		return fmt.Errorf("migrate: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migrate: migrate %s/%s: %w", m.Component, f.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)`,
		m.Component, f.version, f.name); err != nil {
		return fmt.Errorf("migrate: migrate %s/%s: %w", m.Component, f.name, err)
	}
	return tx.Commit()
}

// Dir returns the migrations of component found in directory dir of fsys (usually an embed.FS
// of the component's package). It panics if dir is not in fsys: that is a build-time mistake.
func Dir(component string, fsys fs.FS, dir string) Migrations {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("migrate: %s: %v", component, err))
	}
	return Migrations{Component: component, FS: sub}
}
