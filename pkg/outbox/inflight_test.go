package outbox_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/sqlite"
)

// events records, in order, when the producer takes a record and when it is done with it.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.log {
		if l == s {
			return true
		}
	}
	return false
}

func (e *events) OnProduceRecordBuffered(r *kgo.Record) { e.add("buffered " + string(r.Value)) }
func (e *events) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err == nil {
		e.add("acknowledged " + string(r.Value))
	}
}

// TestRelayPublishesWhileABatchAwaitsItsAcknowledgement: a record committed while the batch
// before it waits for the broker is handed to the producer at once, not after that batch's
// acknowledgement and delete; both are then published in commit order and deleted.
func TestRelayPublishesWhileABatchAwaitsItsAcknowledgement(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "pipelined"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	// Until released, the broker refuses every produce with a retriable error: the first
	// batch stays unacknowledged, the producer retrying it.
	var held atomic.Bool
	held.Store(true)
	refuseProduce(fake, &held, nil)
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ev := &events{}
	cl, err := kgo.NewClient(append(kafka.ClientOpts(fake.ListenAddrs(), "relay"), kgo.WithHooks(ev))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	r := outbox.NewRelay(db, cl)
	run(t, r)
	first, second := &kgo.Record{Topic: "pipelined", Value: []byte("first")}, &kgo.Record{Topic: "pipelined", Value: []byte("second")}
	add(t, db, first)
	r.Notify()
	waitFor(t, "the first record handed to the producer", func() bool { return ev.has("buffered first") })
	add(t, db, second)
	r.Notify()
	waitFor(t, "the second record handed to the producer while the first awaits its acknowledgement", func() bool {
		return ev.has("buffered second")
	})
	if ev.has("acknowledged first") {
		t.Fatal("the first record was acknowledged while the broker refused every produce")
	}

	held.Store(false)
	flush(t, r)
	if n := pending(t, db); n != 0 {
		t.Fatalf("%d records in the outbox after both were acknowledged, want 0", n)
	}
	cons, err := kgo.NewClient(append(kafka.ClientOpts(fake.ListenAddrs(), "check"), kgo.ConsumeTopics("pipelined"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	var got []string
	for len(got) < 2 {
		fs := cons.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(rec *kgo.Record) { got = append(got, string(rec.Value)) })
	}
	if len(got) != 2 || got[0] != "first" || got[1] != "second" {
		t.Fatalf("topic holds %q, want [first second] in that order, once each", got)
	}
}
