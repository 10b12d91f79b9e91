package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"

	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/postgres"
)

// PostgresSchema opens, with the platform's migrations and migs, a schema of the test's own on
// the PostgreSQL server of dsn (typically TEST_DATABASE_URL), named prefix and a random suffix,
// so that tests share one server without seeing each other's tables. The schema is dropped and
// the database closed when t ends. It also returns the DSN of that schema, for a test that opens
// the database again (a restart).
func PostgresSchema(t testing.TB, dsn, prefix string, migs ...migrate.Migrations) (db *sql.DB, schemaDSN string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	u, err := postgres.WithSearchPath(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	if db, err = postgres.Open(context.Background(), u, migs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA "` + schema + `" CASCADE`)
		_ = db.Close()
	})
	return db, u
}
