package confluent_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// deserializer is Confluent's Avro deserializer at its default settings: it asks the registry
// for GET /schemas/ids/{id}?subject=<topic>-value (TopicNameStrategy) and decodes with the
// writer's schema.
func deserializer(t *testing.T, url string) *avrov2.Deserializer {
	t.Helper()
	client, err := schemaregistry.NewClient(schemaregistry.NewConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	d, err := avrov2.NewDeserializer(client, serde.ValueSerde, avrov2.NewDeserializerConfig())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// serializer is Confluent's Avro serializer at its default settings: it registers the value's
// schema under <topic>-value (auto.register.schemas=true) and writes the Confluent framing.
func serializer(t *testing.T, url string) *avrov2.Serializer {
	t.Helper()
	client, err := schemaregistry.NewClient(schemaregistry.NewConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	s, err := avrov2.NewSerializer(client, serde.ValueSerde, avrov2.NewSerializerConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// consumeAll reads every record of topics from the start until none arrives for a while, or
// until want records are read.
func consumeAll(t *testing.T, brokers []string, want int, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	for len(recs) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestConfluentDeserializerReadsEveryChoreoEvent runs the choreo stack (the embedded broker, or
// KAFKA_BROKERS; its embedded registry), drives every chain so that every event type is
// written, and decodes every record of the topics with Confluent's deserializer.
func TestConfluentDeserializerReadsEveryChoreoEvent(t *testing.T) {
	s := stacktest.Start(t)
	accounts := stacktest.URL(s, "account-service", "/accounts")
	register := func(username string) string {
		var out struct {
			AccountID string `json:"accountId"`
		}
		body := fmt.Sprintf(`{"username":%q,"email":"%s@mail.com"}`, username, username)
		code, err := stacktest.DoJSON(http.MethodPost, accounts, body, &out)
		if err != nil || code != http.StatusCreated {
			t.Fatalf("register %s: %d %v", username, code, err)
		}
		return out.AccountID
	}
	ada := register("ada")
	stacktest.Eventually(t, 60*time.Second, func() error {
		ns, err := stacktest.Notifications(s, ada)
		if err != nil || len(ns) == 0 {
			return fmt.Errorf("no welcome email yet (%v)", err)
		}
		return nil
	})
	register("ada") // the username is taken: UserRegistrationRejected
	if code, err := stacktest.DoJSON(http.MethodDelete, accounts+"/"+ada, "", nil); err != nil || code/100 != 2 {
		t.Fatalf("delete: %d %v", code, err)
	}

	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, typ := range types.Types() {
		if topic := stacktest.Topic(t, s, typ.Name); !slices.Contains(topics, topic) {
			topics = append(topics, topic)
		}
	}
	want := len(types.Types()) + 1 // two AccountCreated
	d := deserializer(t, s.RegistryURL())
	seen := map[string]bool{}
	stacktest.Eventually(t, 90*time.Second, func() error {
		recs := consumeAll(t, s.Brokers(), want, topics...)
		for _, r := range recs {
			var got map[string]any
			if err := d.DeserializeInto(r.Topic, r.Value, &got); err != nil {
				t.Fatalf("Confluent's deserializer cannot read %s %s/%d@%d: %v", header(r, envelope.HeaderType), r.Topic, r.Partition, r.Offset, err)
			}
			if got["accountId"] != string(r.Key) {
				t.Errorf("%s: accountId %v, record key %s", header(r, envelope.HeaderType), got["accountId"], r.Key)
			}
			seen[header(r, envelope.HeaderType)] = true
		}
		for _, typ := range types.Types() {
			if !seen[typ.Name] {
				return fmt.Errorf("no %s decoded yet (seen %v)", typ.Name, seen)
			}
		}
		return nil
	})
}

// TestChoreoProcessesConfluentSerializedEvent: an AccountCreated written by Confluent's
// serializer (schema auto-registered under <topic>-value, no CloudEvents headers) becomes a
// user and a welcome email.
func TestChoreoProcessesConfluentSerializedEvent(t *testing.T) {
	s := stacktest.Start(t)
	topic := stacktest.Topic(t, s, "AccountCreated")
	accountID := "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
	value, err := serializer(t, s.RegistryURL()).Serialize(topic, &event.AccountCreated{
		AccountID: accountID, Username: "grace", Email: "grace@mail.com", CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	})
	if err != nil {
		t.Fatalf("Confluent's serializer: %v", err)
	}
	stacktest.Produce(t, s, &kgo.Record{Topic: topic, Key: []byte(accountID), Value: value})
	stacktest.Eventually(t, 60*time.Second, func() error {
		ns, err := stacktest.Notifications(s, accountID)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Kind == "welcome" && n.To == "grace@mail.com" {
				return nil
			}
		}
		return fmt.Errorf("no welcome email to grace yet: %+v", ns)
	})
}

// TestRegistryProcess runs `choreo registry` as its own process, as make up and CI's smoke test
// do, and has Confluent's serde read what choreo's codec wrote, and choreo read what
// Confluent's serializer wrote, through it.
func TestRegistryProcess(t *testing.T) {
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "choreo")
	build := exec.Command("go", "build", "-o", bin, "./cmd/choreo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build choreo: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "registry", "-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("registry did not start: %v", err)
	}
	url, _, ok := strings.Cut(strings.TrimPrefix(line, "schema registry listening on "), " ")
	if !ok || !strings.HasPrefix(url, "http://") {
		t.Fatalf("unexpected first line %q", line)
	}

	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(ctx, cl, types)
	if err != nil {
		t.Fatal(err)
	}
	d := deserializer(t, url)
	for name, ev := range samples() {
		typ, err := types.ByName(name)
		if err != nil {
			t.Fatal(err)
		}
		value, err := c.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := d.DeserializeInto(typ.Topic, value, &got); err != nil {
			t.Errorf("%s: Confluent's deserializer: %v", name, err)
			continue
		}
		if got["accountId"] != typ.KeyOf(ev) {
			t.Errorf("%s: decoded %v", name, got)
		}
	}

	value, err := serializer(t, url).Serialize("accounts", &event.AccountCreated{AccountID: "a-1", Username: "u", Email: "u@mail.com", CreatedAt: time.UnixMilli(1700000000000).UTC()})
	if err != nil {
		t.Fatalf("Confluent's serializer: %v", err)
	}
	ev, typ, err := c.Unmarshal(ctx, value)
	if err != nil {
		t.Fatalf("choreo cannot read what Confluent's serializer wrote: %v", err)
	}
	if ac, ok := ev.(*event.AccountCreated); typ.Name != "AccountCreated" || !ok || ac.AccountID != "a-1" {
		t.Errorf("decoded %s %+v", typ.Name, ev)
	}
}

func samples() map[string]event.Event {
	at := time.UnixMilli(1700000000000).UTC()
	return map[string]event.Event{
		"AccountCreated":           &event.AccountCreated{AccountID: "a-1", Username: "ada", Email: "ada@mail.com", CreatedAt: at},
		"AccountDeleted":           &event.AccountDeleted{AccountID: "a-1", DeletedAt: at},
		"UserCreated":              &event.UserCreated{UserID: "u-1", AccountID: "a-1", Username: "ada", Email: "ada@mail.com", CreatedAt: at},
		"UserDeleted":              &event.UserDeleted{UserID: "u-1", AccountID: "a-1", Username: "ada", Email: "ada@mail.com", DeletedAt: at},
		"UserRegistrationRejected": &event.UserRegistrationRejected{AccountID: "a-1", Username: "ada", Reason: "taken", RejectedAt: at},
	}
}
