package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

// BenchmarkHop measures one hop as the user service makes it: b.N AccountCreated published at
// once to the topic's partitions of a running consumer, each applied by a handler that writes a row and emits an event, with the
// inbox, the outbox and the relay publishing what was emitted; done when every emitted event is
// acknowledged. On SQLite, or on PostgreSQL with TEST_DATABASE_URL. Reports records/s.
func BenchmarkHop(b *testing.B) {
	h := newHarness(b)
	db := openDB(b)
	n := h.start(b, db, group, []consumer.Handler{onAccountCreated("create-user",
		func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
			return tx.Emit(ctx, userCreatedOf(ev))
		}, consumer.Emits(new(event.UserCreated)))})
	handled := func(want int) {
		kafkatest.Eventually(b, 5*time.Minute, func() error {
			if st := n.runner.Stats(); st.Handled < int64(want) {
				return fmt.Errorf("%d of %d handled", st.Handled, want)
			}
			return nil
		})
	}
	// One record first: the group has joined and the statements are prepared before the clock runs.
	h.produce(b, h.accountCreated(b, 0, envelope.NewID(), "warm-up", "warm-up"))
	handled(1)
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		recs[i] = h.accountCreated(b, int32(i%partitions), envelope.NewID(), fmt.Sprintf("acc-%d", i), fmt.Sprintf("u%d", i))
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	h.produce(b, recs...)
	handled(b.N + 1)
	n.flush(b)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	// On a loaded machine the rate follows the scheduler; CPU time per record (of this process:
	// the consumer, the relay and the in-process broker) does much less.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
	n.stop()
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHopLatency measures the same hop at a steady 1,000 records/s: from publishing an
// AccountCreated to reading the UserCreated it caused (consumer, transaction, relay, broker).
// Reports the 50th and 99th percentiles in milliseconds.
func BenchmarkHopLatency(b *testing.B) {
	h := newHarness(b)
	h.start(b, openDB(b), group, []consumer.Handler{onAccountCreated("create-user",
		func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
			return tx.Emit(ctx, userCreatedOf(ev))
		}, consumer.Emits(new(event.UserCreated)))})
	reader, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumeTopics(h.topic("users")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer reader.Close()
	// Linger 0, as choreo's producers: franz-go's default linger would add itself to every record.
	producer, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	recs := make([]*kgo.Record, b.N+1)
	for i := range recs {
		recs[i] = h.accountCreated(b, int32(i%partitions), fmt.Sprintf("cause-%d", i), fmt.Sprintf("acc-%d", i), fmt.Sprintf("u%d", i))
	}
	sent, got := make([]time.Time, len(recs)), make([]time.Time, len(recs))
	read := func(from, to int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for n := from; n < to; {
			fs := reader.PollFetches(ctx)
			if ctx.Err() != nil {
				b.Fatalf("%d of %d events read: %v", n-from, to-from, ctx.Err())
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var i int
				if _, err := fmt.Sscanf(headers(r)[envelope.HeaderCausationID], "cause-%d", &i); err != nil {
					b.Fatal(err)
				}
				got[i] = now
				n++
			})
		}
	}
	// One record first: the group has joined and the statements are prepared before the clock runs.
	h.produce(b, recs[0])
	read(0, 1)
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for i := 1; i < len(recs); i++ {
			<-t.C
			sent[i] = time.Now()
			producer.Produce(context.Background(), recs[i], func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
	}()
	read(1, len(recs))
	<-done
	b.StopTimer()
	arrived := make([]time.Duration, 0, b.N)
	for i := 1; i < len(recs); i++ {
		arrived = append(arrived, got[i].Sub(sent[i]))
	}
	slices.Sort(arrived)
	ms := func(q float64) float64 { return float64(arrived[int(q*float64(len(arrived)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
