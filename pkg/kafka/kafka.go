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
	Name string
	// Partitions of the topic; -1 takes the broker's default.
	Partitions int32
	// ReplicationFactor of the topic; -1 takes the broker's default. On a single live broker it
	// is capped at 1; with more live brokers, fewer than it, a new topic is refused (see EnsureTopics).
	ReplicationFactor int16
	// Configs are topic configs such as min.insync.replicas, retention.ms, cleanup.policy.
	Configs map[string]*string
}

// EnsureTopics creates the topics that do not exist and compares those that do with their
// declaration. It is idempotent and safe to run from several services at once.
//
// On a cluster with exactly one live broker the replication factor is capped at 1, and
// min.insync.replicas at the (capped) replication factor, so that one declaration serves a single
// development broker and a production cluster; Report.Capped says so. With two or more live
// brokers (the broker list holds only live ones) a new topic whose replication factor is above
// their number is not created: that is an error wrapping ErrTooFewBrokers, because a topic
// created weaker while a broker is down would fail the drift check at every later start.
//
// An existing topic is never changed. A difference that weakens a guarantee is an error
// wrapping ErrDrift: fewer partitions (also ErrPartitions: adding partitions moves keys between
// partitions and breaks per-key order, a decision for a human), a lower replication factor or
// min.insync.replicas (fewer broker failures survived, or writes acknowledged by fewer copies),
// or another cleanup.policy (compaction drops all but a key's latest event; deletion drops the
// latest state after retention). Any other difference (more partitions, more replicas, another
// retention.ms) is a warning in Report.Warnings.
func EnsureTopics(ctx context.Context, adm *kadm.Client, topics ...Topic) (Report, error) {
	var rep Report
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return rep, fmt.Errorf("list brokers: %w", err)
	}
	rep.Brokers = len(brokers)
	existing, err := listTopics(ctx, adm, names)
	if err != nil {
		return rep, err
	}
	var (
		errs []error
		have []Topic // declared (capped) settings of the existing topics
	)
	for _, t := range topics {
		t, capped := capToBrokers(t, rep.Brokers)
		if capped != "" {
			rep.Capped = append(rep.Capped, capped)
		}
		if _, ok := existing[t.Name]; ok {
			have = append(have, t)
			continue
		}
		if int(t.ReplicationFactor) > rep.Brokers && rep.Brokers > 1 {
			errs = append(errs, fmt.Errorf("topic %s wants replication factor %d but only %d brokers are live; "+
				"retry when they are up, or lower replication in catalog.yaml / TOPIC_REPLICATION_FACTOR: %w",
				t.Name, t.ReplicationFactor, rep.Brokers, ErrTooFewBrokers))
			continue
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, t.Configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			rep.Created = append(rep.Created, t.Name)
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another service created it between the listing and now: it was created from the
			// same catalog, so there is nothing to compare.
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w", t.Name, err))
		}
	}
	if len(have) > 0 {
		drifts, err := compare(ctx, adm, existing, have)
		if err != nil {
			errs = append(errs, err)
		}
		for _, d := range drifts {
			if d.Weaker {
				errs = append(errs, d.err())
			} else {
				rep.Warnings = append(rep.Warnings, d)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	return rep, waitForLeaders(ctx, adm, names)
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
