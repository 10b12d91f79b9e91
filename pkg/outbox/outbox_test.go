package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

// env is a Kafka cluster (kafkatest.Brokers: a real broker with KAFKA_BROKERS, else in-process
// kfake) with topics in a namespace of the test's own, and a service database with the outbox
// table (PostgreSQL with TEST_DATABASE_URL, else SQLite).
type env struct {
	ns      string
	brokers []string
	adm     *kadm.Client
	db      *sql.DB
}

// ordered has one partition, so its log order is the order the relay published in.
const ordered = "ordered"

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{ns: kafkatest.Namespace(t), brokers: kafkatest.Brokers(t)}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	e.adm = kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := e.adm.CreateTopics(ctx, 1, 1, nil, e.topic(ordered))
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", e.topic(ordered), err)
	}
	// A real broker answers for a new topic only once its metadata has spread.
	for {
		ends, err := e.adm.ListEndOffsets(ctx, e.topic(ordered))
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s created but not served: %v", e.topic(ordered), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if kafkatest.Kind() == "kfake" {
			return // the cluster goes with the test
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.adm.DeleteTopics(ctx, e.topic(ordered))
	})
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		e.db, _ = storetest.PostgresSchema(t, base, "outbox_test")
		return e
	}
	if e.db, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.db.Close() })
	return e
}

// topic returns the env's name of a topic named as a test names it.
func (e *env) topic(name string) string { return e.ns + "." + name }

// producer returns a client of the cluster as services build theirs.
func (e *env) producer(t *testing.T, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kafka.ClientOpts(e.brokers, "relay", extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// run runs r until the returned stop (also called at the end of the test).
func run(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return 15s after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func flush(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// add writes recs to the outbox in one transaction.
func add(t *testing.T, db *sql.DB, recs ...*kgo.Record) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range recs {
		if err := outbox.Add(ctx, tx, r); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func pending(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// endOffsets returns the number of records in topic (named as a test names it).
func (e *env) endOffsets(t *testing.T, topic string) int64 {
	t.Helper()
	topic = e.topic(topic)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

// readTopic returns every record of topic (named as a test names it), in log order per
// partition.
func (e *env) readTopic(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	total := e.endOffsets(t, topic)
	if total == 0 {
		return nil
	}
	topic = e.topic(topic)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(recs), total, ctx.Err())
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// testRecords returns n records for topic with varied keys, values and headers.
func testRecords(topic string, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := &kgo.Record{
			Topic: topic,
			Key:   []byte("key-" + strconv.Itoa(i%3)),
			Value: []byte(fmt.Sprintf("value %d", i)),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
				{Key: "binary", Value: []byte{0, 0xff, byte(i), 0x80}},
				{Key: "empty", Value: []byte{}},
				{Key: "seq", Value: []byte("repeated key " + strconv.Itoa(i))},
			},
		}
		switch i % 4 {
		case 1:
			r.Headers = nil
		case 2:
			r.Key = nil
		}
		recs[i] = r
	}
	return recs
}

// checkSame checks that got are want, in order, as published.
func checkSame(t *testing.T, got, want []*kgo.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records published, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Topic != w.Topic || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Errorf("record %d: %s %q=%q, want %s %q=%q", i, g.Topic, g.Key, g.Value, w.Topic, w.Key, w.Value)
		}
		if (g.Key == nil) != (w.Key == nil) {
			t.Errorf("record %d: key %q, want %q (null and empty differ)", i, g.Key, w.Key)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
			continue
		}
		for j, h := range w.Headers {
			if g.Headers[j].Key != h.Key || !bytes.Equal(g.Headers[j].Value, h.Value) {
				t.Errorf("record %d header %d: %q=%x, want %q=%x", i, j, g.Headers[j].Key, g.Headers[j].Value, h.Key, h.Value)
			}
		}
	}
}

func TestRelayPublishesInOrderAndEmptiesTheOutbox(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 3, 1024} {
		t.Run("batch "+strconv.Itoa(batch), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := outbox.NewRelay(e.db, e.producer(t), outbox.BatchSize(batch))
			run(t, r)

			recs := testRecords(e.topic(ordered), 11)
			add(t, e.db, recs[:4]...)
			add(t, e.db, recs[4])
			add(t, e.db, recs[5:]...)
			r.Notify()
			flush(t, r)
			if n := pending(t, e.db); n != 0 {
				t.Errorf("%d records in the outbox after Flush, want 0", n)
			}
			checkSame(t, e.readTopic(t, ordered), recs)
		})
	}
}

func TestRelayPublishesWhatItFindsInTheOutbox(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, e *env, recs []*kgo.Record)
	}{
		{
			// Crash recovery: the records committed before the relay (re)started.
			name: "added before the relay started",
			run: func(t *testing.T, e *env, recs []*kgo.Record) {
				first := outbox.NewRelay(e.db, e.producer(t))
				stop := run(t, first)
				add(t, e.db, recs[:2]...)
				first.Notify()
				flush(t, first)
				stop()
				add(t, e.db, recs[2:]...) // while no relay runs

				r := outbox.NewRelay(e.db, e.producer(t))
				run(t, r)
				flush(t, r)
			},
		},
		{
			// Another process committed them: nobody calls Notify; the poll interval finds them.
			name: "committed without a Notify",
			run: func(t *testing.T, e *env, recs []*kgo.Record) {
				r := outbox.NewRelay(e.db, e.producer(t), outbox.PollInterval(20*time.Millisecond))
				run(t, r)
				add(t, e.db, recs...)
				deadline := time.Now().Add(10 * time.Second)
				for e.endOffsets(t, ordered) < int64(len(recs)) || pending(t, e.db) > 0 {
					if time.Now().After(deadline) {
						t.Fatalf("%d records published, %d pending, 10s after the commit",
							e.endOffsets(t, ordered), pending(t, e.db))
					}
					time.Sleep(10 * time.Millisecond)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			recs := testRecords(e.topic(ordered), 5)
			tc.run(t, e, recs)
			if n := pending(t, e.db); n != 0 {
				t.Errorf("%d records in the outbox, want 0", n)
			}
			checkSame(t, e.readTopic(t, ordered), recs)
		})
	}
}

// logRecorder keeps the errors a relay reports.
type logRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// waitErr waits until the relay reported an error matching is.
func (l *logRecorder) waitErr(t *testing.T, is func(error) bool) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		for _, err := range l.errs {
			if is(err) {
				l.mu.Unlock()
				return err
			}
		}
		errs := l.errs
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching error reported after 10s; reported: %v", errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayKeepsRecordsUntilTheBrokerAcknowledges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedBroker := ln.Addr().String()
	_ = ln.Close()
	dead, err := kgo.NewClient(kafka.ClientOpts([]string{closedBroker}, "relay",
		kgo.RecordDeliveryTimeout(time.Second))...) // franz-go's minimum
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)

	recs := testRecords(e.topic(ordered), 4)
	add(t, e.db, recs...)
	var logs logRecorder
	broken := outbox.NewRelay(e.db, dead, outbox.Logger(slog.New(&logs)))
	stop := run(t, broken)
	logs.waitErr(t, func(err error) bool { return errors.Is(err, kgo.ErrRecordTimeout) }) // a publish failed
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := broken.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush of a relay that cannot publish = %v, want the context's deadline", err)
	}
	cancel()
	stop()
	if n := pending(t, e.db); n != len(recs) {
		t.Fatalf("%d records in the outbox after failed publishes, want all %d kept", n, len(recs))
	}

	r := outbox.NewRelay(e.db, e.producer(t))
	run(t, r)
	flush(t, r)
	if n := pending(t, e.db); n != 0 {
		t.Errorf("%d records in the outbox, want 0", n)
	}
	checkSame(t, e.readTopic(t, ordered), recs)
}

func TestRelayReportsCorruptStoredHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.db.Exec(`INSERT INTO outbox (topic, key, value, headers, created_at) VALUES ($1, $2, $3, $4, $5)`,
		e.topic(ordered), []byte("k"), []byte("v"), []byte{10, 'a', 'b'}, time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	var logs logRecorder
	r := outbox.NewRelay(e.db, e.producer(t), outbox.Logger(slog.New(&logs)))
	run(t, r)
	logs.waitErr(t, func(err error) bool { return errors.Is(err, outbox.ErrCorrupt) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with a corrupt record = %v, want the context's deadline", err)
	}
	if n := pending(t, e.db); n != 1 {
		t.Errorf("%d records in the outbox, want the corrupt one kept", n)
	}
	if n := e.endOffsets(t, ordered); n != 0 {
		t.Errorf("%d records published, want none", n)
	}
}

// TestRelayKeepsNullHeaderValues: Kafka tells a null header value from an empty one, and so do
// franz-go and the Java client. The outbox should publish the headers it was given.
func TestRelayKeepsNullHeaderValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := outbox.NewRelay(e.db, e.producer(t))
	run(t, r)
	add(t, e.db, &kgo.Record{Topic: e.topic(ordered), Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}},
	}})
	flush(t, r)
	got := e.readTopic(t, ordered)
	if len(got) != 1 || len(got[0].Headers) != 2 {
		t.Fatalf("published %+v", got)
	}
	if v := got[0].Headers[0].Value; v != nil {
		t.Errorf("header %q = %q (non-null), want null", got[0].Headers[0].Key, v)
	}
	if v := got[0].Headers[1].Value; v == nil {
		t.Errorf("header %q is null, want empty", got[0].Headers[1].Key)
	}
}

// TestRelayWithANonPositiveBatchSize: BatchSize documents no lower bound and NewRelay returns
// no error, so a relay built with one must still publish.
func TestRelayWithANonPositiveBatchSize(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, -1} {
		t.Run(strconv.Itoa(batch), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := outbox.NewRelay(e.db, e.producer(t), outbox.BatchSize(batch))
			run(t, r)
			recs := testRecords(e.topic(ordered), 3)
			add(t, e.db, recs...)
			// A relay that never publishes with this size waits out the deadline; one that
			// works is done in milliseconds.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v; %d records still in the outbox", err, pending(t, e.db))
			}
			checkSame(t, e.readTopic(t, ordered), recs)
		})
	}
}

// AddAll writes many records in few statements; the relay must publish them exactly as Add's,
// in the order given, across the statements' chunks and beside records written by Add.
func TestAddAllWritesInOrder(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 600} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			recs := testRecords(e.topic(ordered), n+1)
			tx, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			entries := make([]outbox.Entry, n)
			for i, r := range recs[:n] {
				entries[i] = outbox.NewEntry(ctx, r)
			}
			if err := outbox.AddAll(ctx, tx, outbox.ParamsOf(e.db), nil, entries); err != nil {
				t.Fatalf("AddAll: %v", err)
			}
			if err := outbox.Add(ctx, tx, recs[n]); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := pending(t, e.db); got != n+1 {
				t.Fatalf("%d records in the outbox, want %d", got, n+1)
			}
			r := outbox.NewRelay(e.db, e.producer(t))
			run(t, r)
			flush(t, r)
			checkSame(t, e.readTopic(t, ordered), recs)
		})
	}
}

func TestNextRowsTakesPowersOfTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, want int }{{1, 1}, {2, 2}, {3, 2}, {255, 128}, {256, 256}, {257, 256}, {5000, 256}} {
		if got := outbox.NextRows(tc.n); got != tc.want {
			t.Errorf("NextRows(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
