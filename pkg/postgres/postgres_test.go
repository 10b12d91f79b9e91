package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

// schemaURL returns TEST_DATABASE_URL with a schema of its own, or skips.
func schemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL is not set: no PostgreSQL server here (make test starts one)")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	u, err := postgres.WithSearchPath(base, "test_"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		u := schemaURL(t)
		return func(ctx context.Context, migs ...migrate.Migrations) (*sql.DB, error) {
			return postgres.Open(ctx, u, migs...)
		}
	})
}

func TestOpenErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "::not a url::"} {
		if _, err := postgres.Open(context.Background(), dsn); err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
		} else if !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("Open(%q) = %v, want it to name DATABASE_URL", dsn, err)
		}
	}
}
