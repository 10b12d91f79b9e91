package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

var errDown = errors.New("dependency down")

// failFirst returns a handler that fails transiently the first n times it meets username.
func failFirst(n int64, username string, calls *atomic.Int64) func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error {
	return func(_ context.Context, _ *consumer.UnitOfWork, ev *event.AccountCreated) error {
		if ev.Username == username && calls.Add(1) <= n {
			return fmt.Errorf("send: %w", errDown)
		}
		return nil
	}
}

func TestTransientFailureIsRetriedInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var tries atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", failFirst(2, "flaky", &tries))},
		consumer.Retry(consumer.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond}))
	h.produce(t,
		h.accountCreated(t, 0, "id-1", "acc-1", "first"),
		h.accountCreated(t, 0, "id-2", "acc-1", "flaky"),
		h.accountCreated(t, 0, "id-3", "acc-1", "third"))
	st := n.waitStats(t, "3 handled", func(s consumer.Stats) bool { return s.Handled == 3 })
	if st.Retried != 2 || st.Parked != 0 {
		t.Errorf("stats %+v, want 2 retries and nothing parked", st)
	}
	var got []string
	for _, c := range calls(t, n.db) {
		got = append(got, c.Username)
	}
	// The failed tries rolled back their call rows; the key's order held.
	if !slices.Equal(got, []string{"first", "flaky", "third"}) {
		t.Errorf("applied %v, want first, flaky, third", got)
	}
	if hs := n.runner.HandlerStats()["create"]; hs.Handled != 3 || hs.Retried != 2 {
		t.Errorf("handler stats %+v", hs)
	}
}

func TestTransientFailurePastThePolicyIsParked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var tries atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", failFirst(100, "down", &tries))},
		consumer.Retry(consumer.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond}))
	bad := h.accountCreated(t, 0, "id-down", "acc-1", "down")
	h.produce(t, bad, h.accountCreated(t, 0, "id-next", "acc-1", "next"))
	st := n.waitStats(t, "1 handled, 1 parked", func(s consumer.Stats) bool { return s.Handled == 1 && s.Parked == 1 })
	if st.Retried != 2 || tries.Load() != 3 {
		t.Errorf("stats %+v after %d tries, want 3 tries (2 retries)", st, tries.Load())
	}
	n.flush(t)
	parked := h.readTopic(t, deadletter.Topic(group))
	if len(parked) != 1 {
		t.Fatalf("%d parked, want 1", len(parked))
	}
	checkParked(t, h, parked[0], bad, "create", "handler")
	hs := headers(parked[0])
	if hs[deadletter.HeaderClass] != "transient" || hs[deadletter.HeaderAttempts] != "3" {
		t.Errorf("class %q attempts %q, want transient and 3", hs[deadletter.HeaderClass], hs[deadletter.HeaderAttempts])
	}
	first, err1 := time.Parse(time.RFC3339Nano, hs[deadletter.HeaderFirstFailure])
	last, err2 := time.Parse(time.RFC3339Nano, hs[deadletter.HeaderLastFailure])
	if err1 != nil || err2 != nil || !last.After(first) {
		t.Errorf("first failure %q, last %q: want two times, the last later", hs[deadletter.HeaderFirstFailure], hs[deadletter.HeaderLastFailure])
	}
}

func TestPermanentFailureIsParkedAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var tries atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create",
		func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error {
			tries.Add(1)
			return consumer.Permanent(errors.New("username taken"))
		})})
	h.produce(t, h.accountCreated(t, 0, "id-1", "acc-1", "x"))
	st := n.waitStats(t, "1 parked", func(s consumer.Stats) bool { return s.Parked == 1 })
	if st.Retried != 0 || tries.Load() != 1 {
		t.Errorf("stats %+v after %d tries, want 1 try and no retry", st, tries.Load())
	}
	n.flush(t)
	if p := h.readTopic(t, deadletter.Topic(group)); len(p) != 1 || headers(p[0])[deadletter.HeaderClass] != "permanent" {
		t.Errorf("parked %d records, want 1 with class permanent", len(p))
	}
}

// TestRetryDoesNotStallOtherPartitions: one partition waits out a long backoff while another
// goes on.
func TestRetryDoesNotStallOtherPartitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var tries atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", failFirst(1, "slow", &tries))},
		consumer.Retry(consumer.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Minute, MaxElapsed: time.Hour}))
	h.produce(t, h.accountCreated(t, 0, "id-slow", "acc-0", "slow"))
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if tries.Load() == 0 {
			return errors.New("not tried yet")
		}
		return nil
	})
	for i := range 5 {
		h.produce(t, h.accountCreated(t, 1, "id-p1-"+strconv.Itoa(i), "acc-1", "fast"))
	}
	// Partition 1 is done long before partition 0's backoff ends.
	n.waitStats(t, "partition 1's records", func(s consumer.Stats) bool { return s.Handled == 5 })
	start := time.Now()
	n.stop() // shutdown interrupts the backoff
	// The backoff is at least 5 minutes: a stop that waited it out takes that long. The bound
	// sits far below it and far above any stop under load.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("stop took %s during a backoff of at least 5m, want it interrupted", d)
	}
}

func TestRecordLargerThanTheLimitIsParked(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)}, consumer.MaxRecordBytes(200))
	big := h.accountCreated(t, 0, "id-big", "acc-1", string(make([]byte, 300)))
	h.produce(t, big, h.accountCreated(t, 0, "id-ok", "acc-1", "ok"))
	n.waitStats(t, "1 handled, 1 parked", func(s consumer.Stats) bool { return s.Handled == 1 && s.Parked == 1 })
	n.flush(t)
	p := h.readTopic(t, deadletter.Topic(group))
	if len(p) != 1 {
		t.Fatalf("%d parked, want 1", len(p))
	}
	checkParked(t, h, p[0], big, "", "too-large")
}

func TestRetryPolicyDefaultsAndPermanent(t *testing.T) {
	t.Parallel()
	p := consumer.DefaultRetryPolicy()
	if p.MaxAttempts < 2 || p.InitialBackoff <= 0 || p.MaxBackoff < p.InitialBackoff || p.MaxElapsed <= 0 {
		t.Fatalf("default policy %+v is not usable", p)
	}
	if !consumer.IsPermanent(consumer.Permanent(errDown)) || consumer.IsPermanent(errDown) || consumer.Permanent(nil) != nil {
		t.Fatal("Permanent/IsPermanent disagree")
	}
	if !errors.Is(consumer.Permanent(errDown), errDown) {
		t.Fatal("Permanent hides the error it wraps")
	}
}
