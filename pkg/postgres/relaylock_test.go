package postgres_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
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

	// Each wake-up records how many outbox records its schema held then. Notifications reach
	// the listener in commit order, one at a time, so once a wake-up has seen the last commit
	// of its schema, every notification before it has been handled: the count is final.
	var (
		mu    sync.Mutex
		wakes []int
	)
	go postgres.Listen(ctx, mine, postgres.OutboxChannel, postgres.Schema(mine), func() {
		var n int
		_ = db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n)
		mu.Lock()
		wakes = append(wakes, n)
		mu.Unlock()
	})
	waitFor := func(what string, cond func([]int) bool) []int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			ws := slices.Clone(wakes)
			mu.Unlock()
			if cond(ws) {
				return ws
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 30s (wake-ups saw %v)", what, ws)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the listener's first wake-up", func(ws []int) bool { return len(ws) >= 1 })

	add := func(db *sql.DB, v string) {
		t.Helper()
		if err := outbox.Add(ctx, db, &kgo.Record{Topic: "t", Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	add(otherDB, "other")
	add(db, "mine")
	add(otherDB, "other again")
	add(db, "mine again") // the marker: its wake-up sees 2 records
	ws := waitFor("a wake-up for the last commit in its schema", func(ws []int) bool { return slices.Contains(ws, 2) })
	if len(ws) != 3 {
		t.Errorf("wake-ups %v, want 3 (the first, and one per commit in its own schema)", ws)
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
