package consumer_test

import (
	"context"
	"fmt"
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
