package kafka_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kafka.ClientOpts(brokers, "test", kgo.MetadataMinAge(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func ptr(s string) *string { return &s }

// config returns a topic's described config value, "" if absent.
func config(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value
			}
		}
	}
	return ""
}

func TestEnsureTopics(t *testing.T) {
	t.Parallel()
	ns := kafkatest.Namespace(t)
	adm := admin(t, kafkatest.Brokers(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := kafka.Topic{Name: ns + ".a", Partitions: 3, ReplicationFactor: 1}, kafka.Topic{Name: ns + ".b", Partitions: 2, ReplicationFactor: 1}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), a.Name, b.Name) })

	rep, err := kafka.EnsureTopics(ctx, adm, a, b)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(rep.Created) != 2 || len(rep.Warnings) != 0 || len(rep.Capped) != 0 {
		t.Errorf("create: report %+v, want both created and nothing else", rep)
	}
	tds, err := adm.ListTopics(ctx, a.Name, b.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []kafka.Topic{a, b} {
		if got := len(tds[want.Name].Partitions); got != int(want.Partitions) {
			t.Errorf("%s has %d partitions, want %d", want.Name, got, want.Partitions)
		}
	}
	// Again: the topics exist, nothing changes, nothing to report.
	if rep, err := kafka.EnsureTopics(ctx, adm, a, b); err != nil || len(rep.Created)+len(rep.Warnings)+len(rep.Capped) != 0 {
		t.Fatalf("second run: %+v, %v; want an empty report", rep, err)
	}
	// Configured with more partitions than the topic has: a clear error, and the topic is left alone.
	more := a
	more.Partitions = 6
	_, err = kafka.EnsureTopics(ctx, adm, more)
	if !errors.Is(err, kafka.ErrPartitions) || !errors.Is(err, kafka.ErrDrift) || !strings.Contains(err.Error(), a.Name) {
		t.Fatalf("fewer partitions than configured: %v, want ErrPartitions and ErrDrift naming %s", err, a.Name)
	}
	// Fewer configured than the topic has is only a warning: keys stay where they are.
	fewer := a
	fewer.Partitions = 1
	rep, err = kafka.EnsureTopics(ctx, adm, fewer)
	if err != nil {
		t.Fatalf("more partitions than configured: %v", err)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Setting != "partitions" || rep.Warnings[0].Have != "3" || rep.Warnings[0].Want != "1" {
		t.Errorf("more partitions than configured: warnings %+v, want one about partitions 3 vs 1", rep.Warnings)
	}
}

// TestEnsureTopicsCapsAndDrift runs on whatever broker the suite has (kfake, one real broker or a
// cluster): replication and min ISR are capped on a single broker only (two brokers refuse the
// topic, see TestEnsureTopicsRefusesTooFewLiveBrokers), and config drift is reported by severity.
func TestEnsureTopicsCapsAndDrift(t *testing.T) {
	t.Parallel()
	ns := kafkatest.Namespace(t)
	adm := admin(t, kafkatest.Brokers(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := kafka.Topic{Name: ns + ".c", Partitions: 2, ReplicationFactor: 3, Configs: map[string]*string{
		kafka.ConfigMinInsyncReplicas: ptr("2"), kafka.ConfigRetentionMs: ptr("3600000"), kafka.ConfigCleanupPolicy: ptr("delete"),
	}}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), c.Name) })
	rep, err := kafka.EnsureTopics(ctx, adm, c)
	if rep.Brokers == 2 {
		if !errors.Is(err, kafka.ErrTooFewBrokers) {
			t.Fatalf("replication 3 on 2 brokers: %v, want ErrTooFewBrokers", err)
		}
		t.Skip("the suite's cluster has 2 brokers: the topic is refused, nothing more to compare")
	}
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	wantRF, wantISR := min(3, rep.Brokers), min(2, rep.Brokers)
	if capped := rep.Brokers == 1; capped != (len(rep.Capped) == 1) {
		t.Errorf("%d broker(s): capped %q", rep.Brokers, rep.Capped)
	}
	tds, err := adm.ListTopics(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tds[c.Name].Partitions {
		if len(p.Replicas) != wantRF {
			t.Errorf("partition %d has replicas %v, want %d (3 capped at %d brokers)", p.Partition, p.Replicas, wantRF, rep.Brokers)
		}
	}
	if got := config(t, adm, c.Name, kafka.ConfigMinInsyncReplicas); got != strconv.Itoa(wantISR) {
		t.Errorf("min.insync.replicas = %q, want %d", got, wantISR)
	}
	if got := config(t, adm, c.Name, kafka.ConfigRetentionMs); got != "3600000" {
		t.Errorf("retention.ms = %q, want 3600000", got)
	}
	// The same declaration again: no drift (the cap applies to the comparison too).
	if rep, err := kafka.EnsureTopics(ctx, adm, c); err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("same declaration: %+v, %v", rep.Warnings, err)
	}

	for _, tc := range []struct {
		name    string
		configs map[string]string
		weaker  bool
		setting string
	}{
		{"longer retention is a warning", map[string]string{kafka.ConfigRetentionMs: "7200000"}, false, kafka.ConfigRetentionMs},
		{"compaction is an error", map[string]string{kafka.ConfigCleanupPolicy: "compact"}, true, kafka.ConfigCleanupPolicy},
		{"the same policy is no drift", map[string]string{kafka.ConfigCleanupPolicy: "delete"}, false, ""},
		{"lower min ISR declared is a warning", map[string]string{kafka.ConfigMinInsyncReplicas: "1"}, false, kafka.ConfigMinInsyncReplicas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := c
			d.Configs = map[string]*string{}
			for k, v := range tc.configs {
				d.Configs[k] = ptr(v)
			}
			rep, err := kafka.EnsureTopics(ctx, adm, d)
			if tc.setting == kafka.ConfigMinInsyncReplicas && wantISR == 1 {
				if err != nil || len(rep.Warnings) != 0 {
					t.Fatalf("min ISR 1 on one broker is what the topic has: %+v, %v", rep.Warnings, err)
				}
				return
			}
			switch {
			case tc.setting == "":
				if err != nil || len(rep.Warnings) != 0 {
					t.Fatalf("want no drift, got %+v, %v", rep.Warnings, err)
				}
			case tc.weaker:
				if !errors.Is(err, kafka.ErrDrift) || !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), c.Name) {
					t.Fatalf("want ErrDrift naming %s and %s, got %v", c.Name, tc.setting, err)
				}
			default:
				if err != nil || len(rep.Warnings) != 1 || rep.Warnings[0].Setting != tc.setting || rep.Warnings[0].Weaker {
					t.Fatalf("want one warning about %s, got %+v, %v", tc.setting, rep.Warnings, err)
				}
			}
		})
	}
	// A higher min ISR than the topic has is an error; with the broker's replication (-1)
	// nothing is capped, so this holds on one broker too.
	d := c
	d.ReplicationFactor = -1
	d.Configs = map[string]*string{kafka.ConfigMinInsyncReplicas: ptr(strconv.Itoa(wantISR + 1))}
	if _, err := kafka.EnsureTopics(ctx, adm, d); !errors.Is(err, kafka.ErrDrift) || !strings.Contains(err.Error(), "min.insync.replicas is "+strconv.Itoa(wantISR)) {
		t.Fatalf("min ISR raised: %v, want ErrDrift about min.insync.replicas", err)
	}
}

// TestEnsureTopicsRefusesTooFewLiveBrokers: the broker list holds only live brokers, so two of
// them may be a three-broker cluster with one down. A topic declared with replication 3 is then
// not created with 2 (the next start would find it weaker and fail with ErrDrift) but refused
// with an error that says what to do; once three brokers are live it is created with 3.
func TestEnsureTopicsRefusesTooFewLiveBrokers(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	adm := admin(t, fake.ListenAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	declared := kafka.Topic{Name: "wide", Partitions: 2, ReplicationFactor: 3, Configs: map[string]*string{kafka.ConfigMinInsyncReplicas: ptr("2")}}
	rep, err := kafka.EnsureTopics(ctx, adm, declared)
	if !errors.Is(err, kafka.ErrTooFewBrokers) || !strings.Contains(err.Error(), "topic wide wants replication factor 3 but only 2 brokers are live") {
		t.Fatalf("replication 3 on 2 live brokers: %v, want ErrTooFewBrokers naming the topic", err)
	}
	if rep.Brokers != 2 || len(rep.Created) != 0 || len(rep.Capped) != 0 {
		t.Fatalf("report %+v: want 2 brokers, nothing created or capped", rep)
	}
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tds.Has("wide") {
		t.Fatalf("topic created despite the error: %+v", tds["wide"])
	}
	// A declaration that fits the live brokers is created as declared.
	declared.ReplicationFactor = 2
	if rep, err := kafka.EnsureTopics(ctx, adm, declared); err != nil || len(rep.Created) != 1 || len(rep.Capped) != 0 {
		t.Fatalf("replication 2 on 2 brokers: %+v, %v", rep, err)
	}
}

// TestEnsureTopicsReplicationDrift needs brokers to replicate onto: a three-broker kfake.
func TestEnsureTopicsReplicationDrift(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	adm := admin(t, fake.ListenAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "thin"); err != nil {
		t.Fatal(err)
	}
	declared := kafka.Topic{Name: "thin", Partitions: 2, ReplicationFactor: 3, Configs: map[string]*string{kafka.ConfigMinInsyncReplicas: ptr("1")}}
	_, err = kafka.EnsureTopics(ctx, adm, declared)
	if !errors.Is(err, kafka.ErrDrift) || !strings.Contains(err.Error(), "replication factor is 1, declared 3") {
		t.Fatalf("RF 1 topic declared RF 3: %v, want ErrDrift about the replication factor", err)
	}
	// A new topic gets all three replicas and no cap.
	declared.Name = "thick"
	rep, err := kafka.EnsureTopics(ctx, adm, declared)
	if err != nil || rep.Brokers != 3 || len(rep.Capped) != 0 {
		t.Fatalf("create on 3 brokers: %+v, %v", rep, err)
	}
	// Declared lower than it is: a warning.
	declared.ReplicationFactor = 2
	rep, err = kafka.EnsureTopics(ctx, adm, declared)
	if err != nil || len(rep.Warnings) != 1 || rep.Warnings[0].Setting != "replication factor" {
		t.Fatalf("RF 3 topic declared RF 2: %+v, %v; want one warning", rep.Warnings, err)
	}
}

// TestClientOptsWaitForAllInSyncReplicas: min.insync.replicas only protects writes whose
// producer waits for every in-sync replica; franz-go's idempotent producer requires acks=all, so
// both must stay on.
func TestClientOptsWaitForAllInSyncReplicas(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(kafka.ClientOpts([]string{"127.0.0.1:1"}, "test")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if acks, ok := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); !ok || acks != kgo.AllISRAcks() {
		t.Errorf("RequiredAcks = %v, want AllISRAcks", cl.OptValue(kgo.RequiredAcks))
	}
	if off, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); off {
		t.Error("idempotent writes are disabled")
	}
}
