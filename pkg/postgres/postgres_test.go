package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"sync"
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

// A service's goroutines use the pool at once (consumer, relay, sender, probes): connections they
// return are kept for the next, not closed and opened again.
func TestOpenKeepsConnectionsForReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, schemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := db.ExecContext(ctx, "SELECT pg_sleep(0.05)"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if st := db.Stats(); st.MaxIdleClosed != 0 || st.OpenConnections < 8 {
		t.Errorf("after 3 rounds of 8 statements at once: %d connections open, %d closed as surplus idle; want 8 or more kept, none closed",
			st.OpenConnections, st.MaxIdleClosed)
	}
}
