package kafkatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

// TestBrokersAnswer checks that the cluster the harness gives (whichever kind) takes a topic, a
// record and gives it back.
func TestBrokersAnswer(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Namespace(t) + ".probe"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic on %s cluster: %v", kafkatest.Kind(), err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopic(context.Background(), topic) })
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("got %v, want the one record", recs)
	}
}

func TestNamespaceIsUniqueAndValid(t *testing.T) {
	t.Parallel()
	a, b := kafkatest.Namespace(t), kafkatest.Namespace(t)
	if a == b {
		t.Fatalf("two namespaces of one test are equal: %s", a)
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			t.Fatalf("namespace %q has %q, not valid in a topic or CHOREO_NAMESPACE", a, c)
		}
	}
}

func TestImage(t *testing.T) {
	t.Setenv(kafkatest.ImageEnv, "")
	if got := kafkatest.Image(); got != kafkatest.DefaultImage {
		t.Errorf("Image() without %s = %q, want the default %q", kafkatest.ImageEnv, got, kafkatest.DefaultImage)
	}
	t.Setenv(kafkatest.ImageEnv, "localhost/choreo/kafka:4.1.0")
	if got := kafkatest.Image(); got != "localhost/choreo/kafka:4.1.0" {
		t.Errorf("Image() with %s set = %q, want that image", kafkatest.ImageEnv, got)
	}
}
