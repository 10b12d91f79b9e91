// Package kafka holds choreo's Kafka conventions: how clients are configured and how topics are
// provisioned. Topics are created explicitly at start-up, never by broker auto-creation, so that
// partition counts (and with them per-key order) are the ones the platform chose.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrPartitions is returned when an existing topic has fewer partitions than configured.
var ErrPartitions = errors.New("topic has fewer partitions than configured")

// ClientOpts returns the options every choreo client starts from: the seed brokers, an
// idempotent producer that waits for all in-sync replicas (franz-go's default), and a producer
// linger of zero: choreo's producers already batch by waiting for acknowledgements, and a
// linger would add its whole duration to every hop of a chain.
func ClientOpts(brokers []string, clientID string, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 on the key, as the Java client
	}
	return append(opts, extra...)
}

// Topic is a topic to provision.
type Topic struct {
	Name       string
	Partitions int32
	// ReplicationFactor of the topic; -1 takes the broker's default.
	ReplicationFactor int16
	Configs           map[string]*string
}

// EnsureTopics creates the topics that do not exist and checks those that do. It is idempotent
// and safe to run from several services at once. An existing topic with fewer partitions than
// configured is an error wrapping ErrPartitions: adding partitions would move keys between
// partitions and break per-key order, so that is a decision for a human.
func EnsureTopics(ctx context.Context, adm *kadm.Client, topics ...Topic) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	existing, err := listTopics(ctx, adm, names)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range topics {
		if td, ok := existing[t.Name]; ok {
			if n := int32(len(td.Partitions)); n < t.Partitions {
				errs = append(errs, fmt.Errorf("topic %s has %d partitions, configured %d: %w", t.Name, n, t.Partitions, ErrPartitions))
			}
			continue
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, t.Configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", t.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitForLeaders(ctx, adm, names)
}

func listTopics(ctx context.Context, adm *kadm.Client, names []string) (map[string]kadm.TopicDetail, error) {
	// Listing every topic: asking for missing topics by name makes the client retry the
	// unknown-topic error for seconds before answering.
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make(map[string]kadm.TopicDetail)
	for name, td := range tds {
		if td.Err == nil && slices.Contains(names, name) {
			out[name] = td
		}
	}
	return out, nil
}

// waitForLeaders waits until every partition of names has a leader, so the first produce after
// provisioning does not race topic creation on a real broker.
func waitForLeaders(ctx context.Context, adm *kadm.Client, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		tds, err := adm.ListTopics(ctx, names...)
		ready := err == nil
		if ready {
			for _, n := range names {
				td, ok := tds[n]
				if !ok || td.Err != nil || len(td.Partitions) == 0 || slices.ContainsFunc(td.Partitions.Sorted(), func(p kadm.PartitionDetail) bool {
					return p.Err != nil || p.Leader < 0
				}) {
					ready = false
					break
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("waiting for topics %v to get leaders: %w", names, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
