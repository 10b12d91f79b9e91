package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// stores opens the account tables on SQLite and, where TEST_DATABASE_URL names a server, on
// PostgreSQL in a schema of the test's own.
func stores(t *testing.T) map[string]*sql.DB {
	t.Helper()
	ctx := context.Background()
	out := map[string]*sql.DB{}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "accounts.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	out["sqlite"] = db
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		out["postgres"], _ = storetest.PostgresSchema(t, base, "store_test", store.Migrations())
	}
	return out
}

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	for name, db := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			created := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
			a := store.Account{ID: "acc-1", Username: "jane", Email: "jane@mail.com", CreatedAt: created}
			if err := store.Insert(ctx, db, a); err != nil {
				t.Fatalf("Insert: %v", err)
			}
			if err := store.Insert(ctx, db, a); err == nil {
				t.Error("a second Insert of the same ID succeeded")
			}
			got, err := store.Get(ctx, db, "acc-1")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ID != a.ID || got.Username != a.Username || got.Email != a.Email || got.Status != "active" ||
				!got.CreatedAt.Equal(created) || got.DeletedAt != nil || got.RejectedReason != "" {
				t.Errorf("Get = %+v, want the inserted active account", got)
			}

			if _, err := store.Get(ctx, db, "nobody"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get of a missing account = %v, want ErrNotFound", err)
			}

			deletedAt := created.Add(time.Hour)
			if ok, err := store.MarkDeleted(ctx, db, "acc-1", deletedAt); err != nil || !ok {
				t.Fatalf("MarkDeleted = %v, %v; want true", ok, err)
			}
			if ok, err := store.MarkDeleted(ctx, db, "acc-1", deletedAt.Add(time.Hour)); err != nil || ok {
				t.Errorf("second MarkDeleted = %v, %v; want false (not active)", ok, err)
			}
			// A rejection arriving after the deletion changes nothing.
			if ok, err := store.MarkRejected(ctx, db, "acc-1", "late"); err != nil || ok {
				t.Errorf("MarkRejected of a deleted account = %v, %v; want false", ok, err)
			}
			got, err = store.Get(ctx, db, "acc-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != "deleted" || got.DeletedAt == nil || !got.DeletedAt.Equal(deletedAt) || got.RejectedReason != "" {
				t.Errorf("after deletion: %+v, want deleted at %s", got, deletedAt)
			}
		})
	}
}

func TestRejectionIsRecordedOnce(t *testing.T) {
	t.Parallel()
	for name, db := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := store.Insert(ctx, db, store.Account{ID: "acc-r", Username: "bob", Email: "bob@mail.com", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if ok, err := store.MarkRejected(ctx, db, "acc-r", `username "bob" is taken`); err != nil || !ok {
				t.Fatalf("MarkRejected = %v, %v; want true", ok, err)
			}
			if ok, err := store.MarkRejected(ctx, db, "acc-r", "another reason"); err != nil || ok {
				t.Errorf("second MarkRejected = %v, %v; want false", ok, err)
			}
			if ok, err := store.MarkDeleted(ctx, db, "acc-r", time.Now()); err != nil || ok {
				t.Errorf("MarkDeleted of a rejected account = %v, %v; want false", ok, err)
			}
			got, err := store.Get(ctx, db, "acc-r")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != "rejected" || got.RejectedReason != `username "bob" is taken` || got.DeletedAt != nil {
				t.Errorf("Get = %+v, want rejected with the first reason", got)
			}
			if ok, err := store.MarkRejected(ctx, db, "nobody", "x"); err != nil || ok {
				t.Errorf("MarkRejected of a missing account = %v, %v; want false", ok, err)
			}
		})
	}
}

// TestEffects: effects are listed by operation, oldest first, once per causing event however
// often it is recorded, each done at the time it was recorded.
func TestEffects(t *testing.T) {
	t.Parallel()
	for name, db := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			for _, e := range []struct {
				event, corr string
				at          time.Time
			}{{"ev-2", "op-1", t0.Add(time.Second)}, {"ev-1", "op-1", t0}, {"ev-1", "op-1", t0.Add(time.Hour)}, {"ev-3", "op-2", t0}} {
				if err := store.RecordEffect(ctx, db, e.event, e.corr, "account rejected", "acc-1", e.at); err != nil {
					t.Fatal(err)
				}
			}
			got, err := store.Effects(ctx, db, "account-service", "op-1")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].EventID != "ev-1" || !got[0].At.Equal(t0) || got[1].EventID != "ev-2" ||
				got[0].Status != "done" || got[0].DoneAt == nil || got[0].Service != "account-service" || got[0].Effect != "account rejected" {
				t.Errorf("Effects(op-1) = %+v, want ev-1 at %s then ev-2, done", got, t0)
			}
			if none, err := store.Effects(ctx, db, "account-service", "op-9"); err != nil || none == nil || len(none) != 0 {
				t.Errorf("Effects(op-9) = %#v, %v; want an empty list", none, err)
			}
		})
	}
}
