package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/postgres"
)

// TestOutboxCommitWakesTheListener: a commit with outbox records notifies the listeners of that
// schema, and only of that schema.
func TestOutboxCommitWakesTheListener(t *testing.T) {
	t.Parallel()
	mine, other := schemaURL(t), schemaURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := postgres.Open(ctx, mine)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	otherDB, err := postgres.Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer otherDB.Close()

	var wakes atomic.Int64
	go postgres.Listen(ctx, mine, postgres.OutboxChannel, postgres.Schema(mine), func() { wakes.Add(1) })
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10s (wakes %d)", what, wakes.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the listener's first wake-up", func() bool { return wakes.Load() == 1 })

	if err := outbox.Add(ctx, otherDB, &kgo.Record{Topic: "t", Value: []byte("other")}); err != nil {
		t.Fatal(err)
	}
	if err := outbox.Add(ctx, db, &kgo.Record{Topic: "t", Value: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	waitFor("a wake-up for the commit in its schema", func() bool { return wakes.Load() >= 2 })
	time.Sleep(100 * time.Millisecond)
	if n := wakes.Load(); n != 2 {
		t.Errorf("%d wake-ups, want 2 (the first, and its own schema's commit only)", n)
	}
}

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
