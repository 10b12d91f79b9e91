package postgres_test

import (
	"context"
	"testing"

	"github.com/choreo-dev/choreo/pkg/postgres"
)

// TestRelayLockIsExclusive: of two relays over one schema, one publishes at a time.
func TestRelayLockIsExclusive(t *testing.T) {
	t.Parallel()
	u := schemaURL(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := postgres.RelayLock(db, postgres.Schema(u)), postgres.RelayLock(db, postgres.Schema(u))
	unlock, ok, err := a(ctx)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := b(ctx); err != nil || ok {
		t.Fatalf("second lock while the first is held: ok=%v err=%v, want refused", ok, err)
	}
	unlock()
	unlock2, ok, err := b(ctx)
	if err != nil || !ok {
		t.Fatalf("second lock after the first was released: %v %v", ok, err)
	}
	unlock2()
	other := postgres.RelayLock(db, "another_schema")
	if u3, ok, err := other(ctx); err != nil || !ok {
		t.Fatalf("lock of another schema: %v %v", ok, err)
	} else {
		u3()
	}
}
