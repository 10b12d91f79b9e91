package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

func TestEnsureTopics(t *testing.T) {
	t.Parallel()
	ns := kafkatest.Namespace(t)
	cl, err := kgo.NewClient(kafka.ClientOpts(kafkatest.Brokers(t), "test")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := kafka.Topic{Name: ns + ".a", Partitions: 3, ReplicationFactor: 1}, kafka.Topic{Name: ns + ".b", Partitions: 2, ReplicationFactor: 1}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), a.Name, b.Name) })

	if err := kafka.EnsureTopics(ctx, adm, a, b); err != nil {
		t.Fatalf("create: %v", err)
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
	// Again: the topics exist, nothing changes, no error.
	if err := kafka.EnsureTopics(ctx, adm, a, b); err != nil {
		t.Fatalf("second run: %v", err)
	}
	// Configured with more partitions than the topic has: a clear error, and the topic is left alone.
	more := a
	more.Partitions = 6
	err = kafka.EnsureTopics(ctx, adm, more)
	if !errors.Is(err, kafka.ErrPartitions) || !strings.Contains(err.Error(), a.Name) {
		t.Fatalf("fewer partitions than configured: %v, want ErrPartitions naming %s", err, a.Name)
	}
	// Fewer configured than the topic has is fine: keys stay where they are.
	fewer := a
	fewer.Partitions = 1
	if err := kafka.EnsureTopics(ctx, adm, fewer); err != nil {
		t.Fatalf("more partitions than configured: %v", err)
	}
}
