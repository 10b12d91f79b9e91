package handlers_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/consumer"
)

// BenchmarkQueueWelcome measures the Notification Service's handler path in a burst: b.N
// UserCreated published at once to the users topic's partitions, each queueing a welcome email
// in a consumer runner's transaction (inbox and notifications row); done when all are handled.
// On SQLite, or on PostgreSQL with TEST_DATABASE_URL. Reports records/s and the process's CPU
// time per record (the runner and the in-process broker), which depends less on a loaded
// machine than the rate.
func BenchmarkQueueWelcome(b *testing.B) {
	n := startNotifier(b)
	// One record first: the group has joined and the statements are prepared before the clock runs.
	n.produce(b, []string{"warm-up"}, userCreated("warm-up", "warm-up"))
	n.waitStats(b, "the warm-up record", func(s consumer.Stats) bool { return s.Handled >= 1 })
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		user := fmt.Sprintf("u%d", i)
		recs[i] = n.record(b, int32(i%partitions), "e-"+user, userCreated(user, user))
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	n.send(b, recs...)
	n.waitStats(b, "every record handled", func(s consumer.Stats) bool { return s.Handled >= int64(b.N+1) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
