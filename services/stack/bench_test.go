package stack_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// burst encodes b.N AccountCreated of accounts <prefix>-<i>, then resets b's timer and publishes
// them all at once without waiting for the acknowledgements; it returns when the timer started.
func burst(b *testing.B, s *stack.Stack, prefix string) time.Time {
	b.Helper()
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		recs[i] = stacktest.AccountCreated(b, s, envelope.NewID(), fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("u%d", i))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	return start
}

// BenchmarkRegistrationChain measures the whole registration chain in a burst: b.N AccountCreated
// published at once, done when b.N welcome emails are recorded (two hops, two durable stores, one
// .eml file per chain). Reports chains/s.
func BenchmarkRegistrationChain(b *testing.B) {
	s := stacktest.Start(b)
	notif := s.Service("notification-service").DB
	start := burst(b, s, "bench")
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
	s := stacktest.Start(b)
	if err := s.StopService("notification-service"); err != nil {
		b.Fatal(err)
	}
	runner := s.Service("user-service").Runner()
	start := burst(b, s, "hop")
	for runner.Stats().Handled < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBareFranzGoTwoHops is the baseline of BenchmarkRegistrationChain: the same two hops
// (accounts -> users -> a final consumer) with bare franz-go and hamba/avro on the same embedded
// broker, with no stores, no inbox, no outbox and no email. Reports chains/s.
func BenchmarkBareFranzGoTwoHops(b *testing.B) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(3, "a", "u"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	schema := new(event.AccountCreated).Schema()
	uschema := new(event.UserCreated).Schema()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	hop := func(group, from string, next func(*kgo.Client, *kgo.Record)) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(from),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerLinger(0), kgo.DisableAutoCommit())
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				recs := fs.Records()
				for _, r := range recs {
					next(cl, r)
				}
				if err := cl.Flush(ctx); err != nil { // wait for the acknowledgements, then commit
					return
				}
				_ = cl.CommitRecords(ctx, recs...)
			}
		}()
		return cl
	}
	var done atomic.Int64
	h1 := hop("g1", "a", func(cl *kgo.Client, r *kgo.Record) {
		var ev event.AccountCreated
		if err := avro.Unmarshal(schema, r.Value, &ev); err != nil {
			b.Error(err)
			return
		}
		v, err := avro.Marshal(uschema, &event.UserCreated{UserID: ev.AccountID, AccountID: ev.AccountID, Username: ev.Username, Email: ev.Email, CreatedAt: ev.CreatedAt})
		if err != nil {
			b.Error(err)
			return
		}
		cl.Produce(ctx, &kgo.Record{Topic: "u", Key: r.Key, Value: v}, nil)
	})
	defer h1.Close()
	h2 := hop("g2", "u", func(_ *kgo.Client, r *kgo.Record) {
		var ev event.UserCreated
		if err := avro.Unmarshal(uschema, r.Value, &ev); err == nil {
			done.Add(1)
		}
	})
	defer h2.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		v, err := avro.Marshal(schema, &event.AccountCreated{AccountID: fmt.Sprint("bare-", i), Username: "u", Email: "u@mail.com", CreatedAt: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: "a", Key: []byte(fmt.Sprint("bare-", i)), Value: v}
	}
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		prod.Produce(ctx, r, nil)
	}
	for done.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "chains/s")
}
