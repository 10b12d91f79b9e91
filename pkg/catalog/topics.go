package catalog

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TopicSettings are the Kafka settings a topic is created with. A zero field is not declared:
// an entry of topics inherits it from topicDefaults, and what topicDefaults leaves out the
// broker decides (its num.partitions, default.replication.factor, min.insync.replicas, ...).
type TopicSettings struct {
	// Partitions is the partition count. Per-key order holds within a partition, so the count
	// of an existing topic is never changed by choreo.
	Partitions int `yaml:"partitions"`
	// Replication is the replication factor. Provisioning caps it at the number of brokers, so
	// that a catalog written for a three-broker cluster also runs on one broker.
	Replication int `yaml:"replication"`
	// MinInsyncReplicas is the topic's min.insync.replicas: how many replicas must hold a write
	// before a producer with acks=all gets it acknowledged. At most Replication.
	MinInsyncReplicas int `yaml:"minInsyncReplicas"`
	// Retention is how long records are kept (retention.ms): a Go duration ("168h"), a number
	// of days ("7d"), or "infinite".
	Retention string `yaml:"retention"`
	// CleanupPolicy is the topic's cleanup.policy: delete, compact, or compact,delete.
	CleanupPolicy string `yaml:"cleanupPolicy"`
}

// Topic is the declaration of one event topic's settings in the topics list.
type Topic struct {
	// Name is the topic, as events name it (without a deployment's namespace).
	Name          string `yaml:"name"`
	TopicSettings `yaml:",inline"`
}

// TopicSettings returns the settings of topic (named without namespace): its entry in topics
// over topicDefaults. Topics without an entry, such as dead-letter topics, get topicDefaults.
func (c *Catalog) TopicSettings(topic string) TopicSettings {
	s := c.TopicDefaults
	for _, t := range c.TopicSpecs {
		if t.Name != topic {
			continue
		}
		if t.Partitions != 0 {
			s.Partitions = t.Partitions
		}
		if t.Replication != 0 {
			s.Replication = t.Replication
		}
		if t.MinInsyncReplicas != 0 {
			s.MinInsyncReplicas = t.MinInsyncReplicas
		}
		if t.Retention != "" {
			s.Retention = t.Retention
		}
		if t.CleanupPolicy != "" {
			s.CleanupPolicy = t.CleanupPolicy
		}
	}
	return s
}

// RetentionMs returns Retention as Kafka's retention.ms (-1 for infinite); ok is false when
// Retention is not declared. Retention must be valid (as in a parsed catalog).
func (s TopicSettings) RetentionMs() (ms int64, ok bool) {
	ms, err := parseRetention(s.Retention)
	return ms, err == nil && s.Retention != ""
}

// Configs returns the declared settings that are Kafka topic configs, by config name:
// min.insync.replicas, retention.ms and cleanup.policy.
func (s TopicSettings) Configs() map[string]string {
	out := map[string]string{}
	if s.MinInsyncReplicas > 0 {
		out["min.insync.replicas"] = strconv.Itoa(s.MinInsyncReplicas)
	}
	if ms, ok := s.RetentionMs(); ok {
		out["retention.ms"] = strconv.FormatInt(ms, 10)
	}
	if s.CleanupPolicy != "" {
		out["cleanup.policy"] = normalPolicy(s.CleanupPolicy)
	}
	return out
}

func parseRetention(v string) (int64, error) {
	switch {
	case v == "":
		return 0, nil
	case v == "infinite":
		return -1, nil
	case strings.HasSuffix(v, "d"):
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "d"), 10, 64)
		if err != nil || n < 1 || n > math.MaxInt64/int64(24*time.Hour/time.Millisecond) {
			return 0, fmt.Errorf("retention %q: want a whole number of days of at least 1, such as 7d", v)
		}
		return n * int64(24*time.Hour/time.Millisecond), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Millisecond {
		return 0, fmt.Errorf("retention %q: want a positive duration such as 168h or 7d, or infinite", v)
	}
	return d.Milliseconds(), nil
}

// cleanupPolicies are the values Kafka accepts for cleanup.policy (a list, in either order).
var cleanupPolicies = []string{"delete", "compact", "compact,delete"}

func normalPolicy(v string) string {
	parts := strings.Split(strings.ReplaceAll(v, " ", ""), ",")
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

func (c *Catalog) validateTopics(p *problems) {
	validateSettings(p, "topicDefaults", c.TopicDefaults)
	names := make([]string, len(c.TopicSpecs))
	events := c.Topics()
	for i, t := range c.TopicSpecs {
		names[i] = t.Name
		at := label("topic", i, t.Name)
		required(p, at, "name", t.Name)
		if t.Name != "" && !slices.Contains(events, t.Name) {
			p.addf("%s: no event is published to it (event topics: %s); other topics, such as dead-letter topics, take topicDefaults",
				at, strings.Join(events, ", "))
		}
		validateSettings(p, at, t.TopicSettings)
		// The merged settings: an entry that sets one of the two may break the rule with the other's default.
		if m := c.TopicSettings(t.Name); t.Name != "" && m.Replication > 0 && m.MinInsyncReplicas > m.Replication &&
			(t.Replication != 0) != (t.MinInsyncReplicas != 0) {
			p.addf("%s: minInsyncReplicas %d (with topicDefaults) exceeds replication %d: no write could ever be acknowledged",
				at, m.MinInsyncReplicas, m.Replication)
		}
	}
	unique(p, "topic", names)
}

func validateSettings(p *problems, at string, s TopicSettings) {
	if s.Partitions < 0 || s.Partitions > math.MaxInt32 {
		p.addf("%s: partitions %d: want at least 1 (or leave it out)", at, s.Partitions)
	}
	if s.Replication < 0 || s.Replication > math.MaxInt16 {
		p.addf("%s: replication %d: want at least 1 (or leave it out)", at, s.Replication)
	}
	if s.MinInsyncReplicas < 0 || s.MinInsyncReplicas > math.MaxInt16 {
		p.addf("%s: minInsyncReplicas %d: want at least 1 (or leave it out)", at, s.MinInsyncReplicas)
	} else if s.Replication > 0 && s.MinInsyncReplicas > s.Replication {
		p.addf("%s: minInsyncReplicas %d exceeds replication %d: no write could ever be acknowledged", at, s.MinInsyncReplicas, s.Replication)
	}
	if _, err := parseRetention(s.Retention); err != nil {
		p.addf("%s: %v", at, err)
	}
	if s.CleanupPolicy != "" && !slices.Contains(cleanupPolicies, normalPolicy(s.CleanupPolicy)) {
		p.addf("%s: cleanupPolicy %q: want delete, compact or compact,delete", at, s.CleanupPolicy)
	}
}
