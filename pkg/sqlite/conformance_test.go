package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "db")
		return func(ctx context.Context, migs ...migrate.Migrations) (*sql.DB, error) {
			return sqlite.Open(ctx, path, migs...)
		}
	})
}
