package service_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/service"
)

// TestOpenProvisionsTopicsFromCatalog: the topics get schemas/catalog.yaml's settings (replication
// and min ISR capped on a single broker; two live brokers refuse replication 3), TOPIC_PARTITIONS overrides the partitions, and
// an existing topic that would weaken a guarantee stops the start with ErrDrift.
func TestOpenProvisionsTopicsFromCatalog(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	brokers := kafkatest.Brokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, mutate func(*service.Config)) (*service.Service, string, error) {
		cfg := service.DefaultConfig("127.0.0.1:0")
		cfg.DataDir, cfg.Brokers, cfg.RegistryURL = t.TempDir(), brokers, reg.URL()
		cfg.Namespace = kafkatest.Namespace(t)
		t.Cleanup(func() {
			_, _ = adm.DeleteTopics(context.Background(), cfg.Scoped("accounts"), cfg.Scoped("users"))
		})
		if mutate != nil {
			mutate(&cfg)
		}
		s, err := service.Open(ctx, "topics-test", cfg, nil)
		if err == nil {
			t.Cleanup(s.Close)
		}
		return s, cfg.Namespace, err
	}
	configOf := func(t *testing.T, topic, key string) string {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		v, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value
			}
		}
		return ""
	}

	t.Run("catalog settings", func(t *testing.T) {
		_, ns, err := open(t, nil)
		if len(bs) == 2 {
			if !errors.Is(err, kafka.ErrTooFewBrokers) {
				t.Fatalf("replication 3 on 2 live brokers: %v, want ErrTooFewBrokers", err)
			}
			t.Skip("the suite's cluster has 2 brokers: the catalog's replication 3 is refused")
		}
		if err != nil {
			t.Fatal(err)
		}
		rf, isr := 3, 2
		if len(bs) == 1 {
			rf, isr = 1, 1
		}
		for topic, retention := range map[string]string{"accounts": "2592000000", "users": "604800000"} {
			name := ns + "." + topic
			tds, err := adm.ListTopics(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			td := tds[name]
			if len(td.Partitions) != 6 {
				t.Errorf("%s: %d partitions, want the catalog's 6", name, len(td.Partitions))
			}
			for _, p := range td.Partitions {
				if len(p.Replicas) != rf {
					t.Errorf("%s/%d: replicas %v, want %d (%d live brokers)", name, p.Partition, p.Replicas, rf, len(bs))
				}
			}
			for key, want := range map[string]string{"retention.ms": retention, "min.insync.replicas": strconv.Itoa(isr), "cleanup.policy": "delete"} {
				if got := configOf(t, name, key); got != want {
					t.Errorf("%s: %s = %q, want %q", name, key, got, want)
				}
			}
		}
	})

	t.Run("TOPIC_PARTITIONS overrides", func(t *testing.T) {
		_, ns, err := open(t, func(c *service.Config) { c.Partitions = 3 })
		if err != nil {
			t.Fatal(err)
		}
		tds, err := adm.ListTopics(ctx, ns+".accounts")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tds[ns+".accounts"].Partitions); n != 3 {
			t.Errorf("%d partitions, want TOPIC_PARTITIONS=3", n)
		}
	})

	t.Run("a compacted accounts topic is refused", func(t *testing.T) {
		_, _, err := open(t, func(c *service.Config) {
			compact := "compact"
			if _, err := adm.CreateTopic(ctx, 6, 1, map[string]*string{"cleanup.policy": &compact}, c.Scoped("accounts")); err != nil {
				t.Fatal(err)
			}
		})
		if !errors.Is(err, kafka.ErrDrift) || !strings.Contains(err.Error(), "cleanup.policy is compact, declared delete") ||
			!strings.Contains(err.Error(), "KAFKA_BROKERS") {
			t.Fatalf("Open = %v; want ErrDrift about cleanup.policy, naming KAFKA_BROKERS", err)
		}
	})
}
