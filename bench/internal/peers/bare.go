package peers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
)

// RunBare runs the chain on bare franz-go until ctx ends: each hop is one client in its own
// consumer group that polls, handles the batch's partitions concurrently (each in order), waits
// for its produced records' acknowledgements (producer linger 0) and only then commits. A record
// that does not decode is skipped and given to report; a failed email is retried until it goes
// out or ctx ends.
func RunBare(ctx context.Context, cfg Config, report func(error)) error {
	c := newCodec(cfg.UserSchemaID)
	var clients []*kgo.Client
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	var wg sync.WaitGroup
	hop := func(group, topic string, handle func(*kgo.Client, *kgo.Record)) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumerGroup(cfg.Group+group),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.ProducerLinger(0), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
		if err != nil {
			return fmt.Errorf("bare %s: %w", group, err)
		}
		clients = append(clients, cl)
		wg.Go(func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				var pw sync.WaitGroup
				fs.EachPartition(func(p kgo.FetchTopicPartition) {
					pw.Go(func() {
						for _, r := range p.Records {
							handle(cl, r)
						}
					})
				})
				pw.Wait()
				if err := cl.Flush(ctx); err == nil { // acknowledged, then committed
					if err := cl.CommitRecords(ctx, fs.Records()...); err != nil && ctx.Err() == nil {
						report(fmt.Errorf("bare %s: commit: %w", group, err))
					}
				}
				cl.AllowRebalance()
			}
		})
		return nil
	}
	err := hop("users", cfg.Accounts, func(cl *kgo.Client, r *kgo.Record) {
		a, err := c.accountCreated(r.Value)
		if err != nil {
			report(fmt.Errorf("bare: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
			return
		}
		v, err := c.userOf(a)
		if err != nil {
			report(err)
			return
		}
		in, _ := envelope.FromHeaders(r.Headers)
		out := in.Caused("UserCreated", "/bare-peer", "", time.Now())
		cl.Produce(ctx, &kgo.Record{Topic: cfg.Users, Key: r.Key, Value: v, Headers: out.AppendHeaders(nil)},
			func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					report(fmt.Errorf("bare: produce UserCreated: %w", err))
				}
			})
	})
	if err == nil {
		err = hop("email", cfg.Users, func(_ *kgo.Client, r *kgo.Record) {
			u, err := c.userCreated(r.Value)
			if err != nil {
				report(fmt.Errorf("bare: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
				return
			}
			sendRetrying(ctx, cfg.SMTPAddr, u, report)
		})
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}
