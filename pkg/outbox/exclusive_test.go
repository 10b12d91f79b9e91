package outbox_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// heldLock is an outbox.Locker that another relay holds until release, counting the tries.
type heldLock struct {
	held  atomic.Bool
	tries atomic.Int64
}

func (l *heldLock) lock(context.Context) (func(), bool, error) {
	l.tries.Add(1)
	if l.held.Load() {
		return nil, false, nil
	}
	return func() {}, true, nil
}

// A relay woken while another relay holds the lock publishes once the lock is free, without
// being woken again and long before its next poll: the holder may have read the outbox before
// these records committed.
func TestExclusiveRelayTriesAgainWhileTheLockIsHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := &heldLock{}
	l.held.Store(true)
	r := outbox.NewRelay(e.db, e.producer(t), outbox.Exclusive(l.lock), outbox.PollInterval(time.Hour))
	run(t, r)
	recs := testRecords(e.topic(ordered), 3)
	add(t, e.db, recs...)
	r.Notify()
	deadline := time.Now().Add(30 * time.Second)
	for l.tries.Load() < 3 { // woken once: every try after the first is a retry
		if time.Now().After(deadline) {
			t.Fatalf("%d tries of a held lock in 30s, want retries", l.tries.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := pending(t, e.db); n != 3 {
		t.Fatalf("%d records in the outbox while another relay holds the lock, want 3", n)
	}
	l.held.Store(false)
	for pending(t, e.db) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still in the outbox 30s after the lock was released", pending(t, e.db))
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkSame(t, e.readTopic(t, ordered), recs)
}
