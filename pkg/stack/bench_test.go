package stack_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
)

// BenchmarkRegistrationChain measures the whole registration chain in a burst: b.N AccountCreated
// published at once, done when b.N welcome emails are recorded (two hops, two durable stores, one
// .eml file per chain). Reports chains/s.
func BenchmarkRegistrationChain(b *testing.B) {
	addrs := map[string]string{}
	dir := b.TempDir()
	s := startStackB(b, dir, addrs)
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		recs[i] = accountCreatedB(b, s, envelope.NewID(), fmt.Sprintf("bench-%d", i), fmt.Sprintf("u%d", i))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	notif := s.Service("notification-service").DB
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	for {
		var n int
		if err := notif.QueryRow(`SELECT count(*) FROM notifications`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n >= b.N {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "chains/s")
}

// BenchmarkAccountToUserHop measures one hop in a burst: b.N AccountCreated published at once,
// done when the User Service has applied them all (user row, inbox record, UserCreated in its
// outbox). Reports events/s.
func BenchmarkAccountToUserHop(b *testing.B) {
	s := startStackB(b, b.TempDir(), map[string]string{})
	if err := s.StopService("notification-service"); err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		recs[i] = accountCreatedB(b, s, envelope.NewID(), fmt.Sprintf("hop-%d", i), fmt.Sprintf("u%d", i))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	runner := s.Service("user-service").Runner()
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	for runner.Stats().Handled < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
