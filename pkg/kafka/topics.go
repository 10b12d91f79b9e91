package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrDrift is wrapped by every error about an existing topic whose settings give weaker
// guarantees than its declaration (ErrPartitions is one such error too).
var ErrDrift = errors.New("existing topic differs from its declaration")

// Config names that provisioning compares with more than equality.
const (
	ConfigMinInsyncReplicas = "min.insync.replicas"
	ConfigCleanupPolicy     = "cleanup.policy"
	ConfigRetentionMs       = "retention.ms"
)

// Drift is one way an existing topic differs from its declaration.
type Drift struct {
	Topic   string
	Setting string // "partitions", "replication factor" or a config name
	Have    string
	Want    string
	// Weaker is true when the existing topic gives weaker guarantees than declared (EnsureTopics
	// then fails); false when it is only different (a warning).
	Weaker bool
	// Why says what the difference means and what to do.
	Why string
}

func (d Drift) String() string {
	return fmt.Sprintf("topic %s: %s is %s, declared %s: %s", d.Topic, d.Setting, d.Have, d.Want, d.Why)
}

func (d Drift) err() error {
	if d.Setting == "partitions" {
		return fmt.Errorf("%s: %w: %w", d, ErrDrift, ErrPartitions)
	}
	return fmt.Errorf("%s: %w", d, ErrDrift)
}

// Report is what EnsureTopics did and found besides errors, for the caller to log.
type Report struct {
	// Created are the topics created now.
	Created []string
	// Capped says, per topic, how the replication factor and min.insync.replicas were lowered
	// to fit a single broker, or min.insync.replicas to a declared replication factor below it.
	Capped []string
	// Warnings are differences of existing topics that keep choreo's guarantees.
	Warnings []Drift
	// Brokers is the number of live brokers the cluster listed.
	Brokers int
}

// ErrTooFewBrokers is wrapped by the error about a new topic whose replication factor is above
// the number of live brokers of a cluster that has more than one.
var ErrTooFewBrokers = errors.New("fewer live brokers than the replication factor")

// capToBrokers lowers t's replication factor to 1 when the cluster has exactly one live broker
// (a development or test broker), and min.insync.replicas to the replication factor; it returns
// what it changed, or "". With two or more live brokers nothing is capped: they may be a cluster
// with a broker down, and a topic created weaker then would fail the drift check at every later
// start.
func capToBrokers(t Topic, brokers int) (Topic, string) {
	var msgs []string
	if t.ReplicationFactor > 0 && brokers == 1 && int(t.ReplicationFactor) > brokers {
		msgs = append(msgs, fmt.Sprintf("replication factor %d capped at the cluster's %d broker(s)", t.ReplicationFactor, brokers))
		t.ReplicationFactor = int16(brokers)
	}
	if v := t.Configs[ConfigMinInsyncReplicas]; v != nil && t.ReplicationFactor > 0 {
		if n, err := strconv.Atoi(*v); err == nil && n > int(t.ReplicationFactor) {
			capped := strconv.Itoa(int(t.ReplicationFactor))
			t.Configs = maps.Clone(t.Configs)
			t.Configs[ConfigMinInsyncReplicas] = &capped
			msgs = append(msgs, fmt.Sprintf("min.insync.replicas %d capped at the replication factor %s", n, capped))
		}
	}
	if len(msgs) == 0 {
		return t, ""
	}
	return t, "topic " + t.Name + ": " + strings.Join(msgs, ", ")
}

// compare lists how the existing topics differ from their declarations.
func compare(ctx context.Context, adm *kadm.Client, existing map[string]kadm.TopicDetail, declared []Topic) ([]Drift, error) {
	names := make([]string, len(declared))
	for i, t := range declared {
		names[i] = t.Name
	}
	var drifts []Drift
	// A least-privilege principal (choreo acls) may not describe configs: then only partitions
	// and replication are compared, and the caller is told so.
	unauthorized := func(topic string) {
		drifts = append(drifts, Drift{Topic: topic, Setting: "configs", Have: "unknown", Want: "compared",
			Why: "not authorized to describe the topic's configs (DESCRIBE_CONFIGS), so min.insync.replicas, retention and cleanup policy were not compared"})
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if isAuthorization(err) {
		for _, n := range names {
			unauthorized(n)
		}
		rcs, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe configs of %v: %w", names, err)
	}
	configs := map[string]map[string]string{}
	var errs []error
	for _, rc := range rcs {
		if isAuthorization(rc.Err) {
			unauthorized(rc.Name)
			continue
		}
		if rc.Err != nil {
			errs = append(errs, fmt.Errorf("describe configs of topic %s: %w", rc.Name, rc.Err))
			continue
		}
		m := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				m[c.Key] = *c.Value
			}
		}
		configs[rc.Name] = m
	}
	for _, t := range declared {
		drifts = append(drifts, drift(t, existing[t.Name], configs[t.Name])...)
	}
	return drifts, errors.Join(errs...)
}

func isAuthorization(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// drift compares one existing topic (its metadata and described configs) with its declaration.
func drift(t Topic, td kadm.TopicDetail, configs map[string]string) []Drift {
	var out []Drift
	add := func(setting string, have, want any, weaker bool, why string) {
		out = append(out, Drift{Topic: t.Name, Setting: setting, Have: fmt.Sprint(have), Want: fmt.Sprint(want), Weaker: weaker, Why: why})
	}
	if n := int32(len(td.Partitions)); t.Partitions > 0 && n != t.Partitions {
		if n < t.Partitions {
			add("partitions", n, t.Partitions, true, "adding partitions would move keys to other partitions and break per-key order; "+
				"add them yourself (kafka-topics --alter --partitions) once no key's events are in flight, or declare the existing count")
		} else {
			add("partitions", n, t.Partitions, false, "more partitions than declared; keys keep their partitions, nothing to do")
		}
	}
	if rf := replicationOf(td); t.ReplicationFactor > 0 && rf > 0 && rf != int(t.ReplicationFactor) {
		if rf < int(t.ReplicationFactor) {
			add("replication factor", rf, t.ReplicationFactor, true, "the topic survives fewer broker failures than declared; "+
				"add replicas with kafka-reassign-partitions")
		} else {
			add("replication factor", rf, t.ReplicationFactor, false, "more replicas than declared")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		v := t.Configs[k]
		if v == nil {
			continue
		}
		want := *v
		have, ok := configs[k]
		if !ok || have == want {
			continue
		}
		switch k {
		case ConfigMinInsyncReplicas:
			h, herr := strconv.Atoi(have)
			w, werr := strconv.Atoi(want)
			switch {
			case herr != nil || werr != nil:
				add(k, have, want, false, "not comparable")
			case h < w:
				add(k, have, want, true, "acks=all would acknowledge writes held by fewer replicas than declared; "+
					"set it with kafka-configs --alter --add-config "+k+"="+want)
			default:
				add(k, have, want, false, "producers stop sooner than declared when brokers fail")
			}
		case ConfigCleanupPolicy:
			if normalList(have) != normalList(want) {
				add(k, have, want, true, "compaction drops all but the latest event of a key (consumers replaying the topic "+
					"miss events), deletion drops the latest state after retention; choose one and align the topic or the catalog")
			}
		default:
			add(k, have, want, false, "differs from the declaration; an operator may have changed it on purpose")
		}
	}
	return out
}

// replicationOf returns the smallest replica count of the topic's partitions (0 if unknown).
func replicationOf(td kadm.TopicDetail) int {
	rf := 0
	for _, p := range td.Partitions {
		if n := len(p.Replicas); n > 0 && (rf == 0 || n < rf) {
			rf = n
		}
	}
	return rf
}

func normalList(v string) string {
	parts := strings.Split(strings.ReplaceAll(v, " ", ""), ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
