package trace_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/trace"
)

var logTopics = []string{"accounts", "users", "user-service.dlq"}

// history is a log of registrations on kfake: each an AccountCreated on accounts and, 3ms
// later, its UserCreated on users, spread evenly over span and ending now.
type history struct {
	cl     *kgo.Client
	topics []string // accounts, users, user-service.dlq
	start  time.Time
	step   time.Duration
	ops    int
}

// op returns the IDs and the time of registration i.
func (h history) op(i int) (root, child string, at time.Time) {
	return "acc-" + strconv.Itoa(i), "usr-" + strconv.Itoa(i), h.start.Add(time.Duration(i) * h.step)
}

func newHistory(tb testing.TB, ops int, span time.Duration) history {
	tb.Helper()
	ctx := context.Background()
	brokers, topics := []string{os.Getenv("KAFKA_BROKERS")}, logTopics
	if brokers[0] == "" {
		c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(3, logTopics...))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		brokers = c.ListenAddrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	if os.Getenv("KAFKA_BROKERS") != "" { // a real broker: topics of this run's own
		prefix := fmt.Sprintf("trace-bench-%d.", time.Now().UnixNano())
		topics = nil
		for _, t := range logTopics {
			topics = append(topics, prefix+t)
		}
		adm := kadm.NewClient(cl)
		if _, err := adm.CreateTopics(ctx, 3, 1, nil, topics...); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topics...) })
	}
	h := history{cl: cl, topics: topics, start: time.Now().Add(-span), step: span / time.Duration(ops), ops: ops}
	var (
		mu   sync.Mutex
		perr error
	)
	for i := range ops {
		root, child, at := h.op(i)
		key := []byte(strconv.Itoa(i))
		for _, r := range []*kgo.Record{
			{Topic: topics[0], Key: key, Timestamp: at, Headers: envelope.Envelope{ID: root, Type: "AccountCreated",
				Source: "/account-service", Time: at, CorrelationID: root}.AppendHeaders(nil)},
			{Topic: topics[1], Key: key, Timestamp: at.Add(3 * time.Millisecond), Headers: envelope.Envelope{ID: child, Type: "UserCreated",
				Source: "/user-service", Time: at.Add(3 * time.Millisecond), CorrelationID: root, CausationID: root}.AppendHeaders(nil)},
		} {
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil && perr == nil {
					perr = err
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil || perr != nil {
		tb.Fatal(err, perr)
	}
	return h
}

func reader(tb testing.TB, h history) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.cl.OptValue(kgo.SeedBrokers).([]string)...))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// TestFindByIDReadsAWindow: on a log of 20,000 records over ten hours, an operation five hours
// back is found around a time hint by either of its IDs, and an operation a second old without
// one, each reading a small part of the log; an ID beyond the lookback is reported as such.
func TestFindByIDReadsAWindow(t *testing.T) {
	t.Parallel()
	h := newHistory(t, 10_000, 10*time.Hour)
	cl := reader(t, h)
	ctx := context.Background()
	total := 2 * h.ops

	for _, tc := range []struct {
		name string
		op   int
		id   func(root, child string) string
		opts []trace.Option
	}{
		{"root around a hint", h.ops / 2, func(r, _ string) string { return r }, nil},
		{"later event around a hint", h.ops / 2, func(_, c string) string { return c }, nil},
		{"recent without a hint", h.ops - 1, func(r, _ string) string { return r }, []trace.Option{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, child, at := h.op(tc.op)
			read := 0
			opts := append([]trace.Option{trace.WithRecordsRead(func(n int) { read += n })}, tc.opts...)
			if tc.opts == nil {
				opts = append(opts, trace.WithAround(at.Add(-20*time.Second)))
			}
			tr, err := trace.FindByID(ctx, cl, nil, h.topics, tc.id(root, child), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tr.CorrelationID != root || len(tr.Roots) != 1 || tr.Roots[0].ID != root ||
				len(tr.Roots[0].Children) != 1 || tr.Roots[0].Children[0].ID != child {
				t.Fatalf("trace of %s: %+v", root, tr)
			}
			if read == 0 || read > total/20 {
				t.Errorf("read %d of %d records; want a window, under 5%%", read, total)
			}
		})
	}

	t.Run("beyond the lookback", func(t *testing.T) {
		root, _, _ := h.op(h.ops / 2)
		_, err := trace.FindByID(ctx, cl, nil, h.topics, root, trace.WithLookback(time.Hour))
		if !errors.Is(err, trace.ErrNotFound) || !errors.Is(err, trace.ErrNotInWindow) {
			t.Fatalf("err = %v, want ErrNotFound and ErrNotInWindow", err)
		}
		if tr, err := trace.FindByID(ctx, cl, nil, h.topics, root, trace.WithLookback(0)); err != nil || tr.CorrelationID != root {
			t.Fatalf("without a lookback: %v %+v", err, tr)
		}
	})
	t.Run("nowhere", func(t *testing.T) {
		_, err := trace.FindByID(ctx, cl, nil, h.topics, "no-such-id", trace.WithLookback(0))
		if !errors.Is(err, trace.ErrNotFound) || errors.Is(err, trace.ErrNotInWindow) {
			t.Fatalf("err = %v, want ErrNotFound alone: the whole log was searched", err)
		}
	})
	t.Run("widens while incomplete", func(t *testing.T) {
		root, _, at := h.op(h.ops / 3)
		passes := 0
		want := func(tr *trace.Trace) bool { return len(tr.Events()) > 2 } // never: widen to the spread
		_, err := trace.FindByID(ctx, cl, nil, h.topics, root, trace.WithAround(at), trace.WithComplete(want),
			trace.WithWindow(time.Second), trace.WithSpread(time.Minute), trace.WithRecordsRead(func(int) { passes++ }))
		if err != nil {
			t.Fatal(err)
		}
		// Locating takes one pass; the window then grows 1s, 4s, 16s, 60s.
		if passes != 5 {
			t.Errorf("%d passes, want 1 to locate and 4 widening to the spread", passes)
		}
	})
}

// TestRecent: the last operations, newest first, each with its events.
func TestRecent(t *testing.T) {
	t.Parallel()
	h := newHistory(t, 2_000, 2*time.Hour)
	cl := reader(t, h)
	read := 0
	trs, err := trace.Recent(context.Background(), cl, nil, h.topics, 3, trace.WithRecordsRead(func(n int) { read += n }))
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 3 {
		t.Fatalf("%d operations, want 3", len(trs))
	}
	for i, tr := range trs {
		root, child, _ := h.op(h.ops - 1 - i)
		if tr.CorrelationID != root || len(tr.Roots) != 1 || len(tr.Roots[0].Children) != 1 || tr.Roots[0].Children[0].ID != child {
			t.Errorf("operation %d: %+v, want %s then %s", i, tr, root, child)
		}
	}
	if read > 2*h.ops/10 {
		t.Errorf("read %d of %d records for the last 3 operations", read, 2*h.ops)
	}
}

// BenchmarkFindByID fills three topics with TRACE_BENCH_RECORDS records (default 1,000,000:
// kfake holds them in memory; with KAFKA_BROKERS set, on that broker instead) over 24 hours and traces one operation from the middle by its
// ID, with the time of its API call as a hint, and one from the last minute without a hint.
func BenchmarkFindByID(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("TRACE_BENCH_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	h := newHistory(b, n/2, 24*time.Hour)
	cl := reader(b, h)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		op   int
		hint bool
	}{{"middle/around-hint", h.ops / 2, true}, {"recent/no-hint", h.ops - 10, false}} {
		b.Run(fmt.Sprintf("%s/records=%d", bc.name, n), func(b *testing.B) {
			root, _, at := h.op(bc.op)
			read := 0
			opts := []trace.Option{trace.WithRecordsRead(func(n int) { read += n })}
			if bc.hint {
				opts = append(opts, trace.WithAround(at))
			}
			for b.Loop() {
				tr, err := trace.FindByID(ctx, cl, nil, h.topics, root, opts...)
				if err != nil || tr.CorrelationID != root {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(read)/float64(b.N), "records-read/op")
		})
	}
}
