package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// TestWithMiddleware: middleware wraps every handler, the first given outermost, and what it
// returns is the handler's result: here the inner one rejects an event before the handler sees
// it, and the record is parked like any other permanent failure.
func TestWithMiddleware(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var (
		mu  sync.Mutex
		got []string
	)
	note := func(name string) consumer.Middleware {
		return func(next consumer.HandlerFunc) consumer.HandlerFunc {
			return func(ctx context.Context, tx *consumer.UnitOfWork, ev event.Event) error {
				mu.Lock()
				got = append(got, name+":"+ev.(*event.AccountCreated).Username)
				mu.Unlock()
				if name == "inner" && ev.(*event.AccountCreated).Username == "mallory" {
					return consumer.Permanent(errors.New("rejected by middleware"))
				}
				return next(ctx, tx, ev)
			}
		}
	}
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)},
		consumer.WithMiddleware(note("outer"), note("inner")))
	h.produce(t, h.accountCreated(t, 0, envelope.NewID(), "acc-1", "alice"), h.accountCreated(t, 0, envelope.NewID(), "acc-2", "mallory"))

	n.waitStats(t, "one handled, one parked", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 2 })
	n.flush(t) // the parked record is published from the outbox
	n.stop()
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 1, Parked: 1}) {
		t.Errorf("stats = %+v, want 1 handled and 1 parked", st)
	}
	mu.Lock()
	defer mu.Unlock()
	// A handler may run again after a rollback (the batch is re-applied under savepoints once a
	// handler fails): every call goes through both middlewares, outer first.
	seen := map[string]bool{}
	for i := 0; i+1 < len(got); i += 2 {
		user := strings.TrimPrefix(got[i], "outer:")
		if got[i] != "outer:"+user || got[i+1] != "inner:"+user {
			t.Errorf("middleware calls %v: want outer then inner for every call", got)
			break
		}
		seen[user] = true
	}
	if len(got)%2 != 0 || !seen["alice"] || !seen["mallory"] {
		t.Errorf("middleware calls %v, want alice's and mallory's, each through outer then inner", got)
	}
	if cs := calls(t, n.db); len(cs) != 1 || cs[0].Username != "alice" {
		t.Errorf("handler calls %+v, want alice's only", cs)
	}
	parked := h.readTopic(t, deadletter.Topic(group))
	if len(parked) != 1 || !strings.Contains(deadletter.Parse(parked[0]).Error, "rejected by middleware") {
		t.Errorf("parked %d records, want mallory's, rejected by middleware", len(parked))
	}
}

// TestMaxPollRecords: a batch (one transaction) holds at most MaxPollRecords records. The
// records are all on the partition before the runner starts, so without the bound the first
// poll would take them all.
func TestMaxPollRecords(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const total, most = 12, 2
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, h.accountCreated(t, 0, envelope.NewID(), fmt.Sprintf("acc-%d", i), fmt.Sprintf("user%d", i)))
	}
	h.produce(t, recs...)

	// One partition, one worker: its handler calls and the commits after them do not interleave
	// with another's.
	var (
		mu            sync.Mutex
		inTx, maxInTx int
		transactions  int
	)
	counting := consumer.WithMiddleware(func(next consumer.HandlerFunc) consumer.HandlerFunc {
		return func(ctx context.Context, tx *consumer.UnitOfWork, ev event.Event) error {
			mu.Lock()
			inTx++
			maxInTx = max(maxInTx, inTx)
			mu.Unlock()
			return next(ctx, tx, ev)
		}
	})
	committed := consumer.AfterCommit(func() {
		mu.Lock()
		inTx = 0
		transactions++
		mu.Unlock()
	})
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)}, consumer.MaxPollRecords(most), counting, committed)
	n.waitStats(t, "every event handled", func(s consumer.Stats) bool { return s.Handled >= total })
	n.stop()
	mu.Lock()
	defer mu.Unlock()
	if maxInTx > most || transactions < total/most {
		t.Errorf("%d transactions, up to %d records in one; want at most %d records each", transactions, maxInTx, most)
	}
}
