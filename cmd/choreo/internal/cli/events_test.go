package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

// requiredJSON is the JSON of an event of type t with every field the schema has no default
// for, and none of the others: the least a user must type, built from the schema so that a
// field added later is covered too.
func requiredJSON(t *testing.T, ty *event.Type, n int) string {
	t.Helper()
	m := map[string]any{}
	for _, f := range ty.Schema.Fields() {
		if f.HasDefault() {
			continue
		}
		s := f.Type()
		if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil && ls.Logical().Type() == avro.TimestampMillis {
			m[f.Name()] = 1767225600000 + int64(n)
			continue
		}
		switch s.Type() {
		case avro.String:
			m[f.Name()] = fmt.Sprintf("%s-%d-é", f.Name(), n)
		case avro.Long, avro.Int:
			m[f.Name()] = n
		case avro.Boolean:
			m[f.Name()] = true
		default:
			t.Fatalf("%s.%s: no sample for a required %s field; extend requiredJSON", ty.Name, f.Name(), s.Type())
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPublishTailEncode: every event type is published from JSON with `choreo publish`, printed
// by `choreo tail`, and what tail prints is taken back by `choreo encode` to the very bytes of
// the record in Kafka.
func TestPublishTailEncode(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	ns := kafkatest.Namespace(t)
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	nsTypes := types.WithNamespace(ns)

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var topics []kafka.Topic
	seen := map[string]bool{}
	for _, ty := range nsTypes.Types() {
		if !seen[ty.Topic] {
			seen[ty.Topic] = true
			topics = append(topics, kafka.Topic{Name: ty.Topic, Partitions: 2, ReplicationFactor: -1})
		}
	}
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), topics...); err != nil {
		t.Fatal(err)
	}

	published := map[string]string{} // ce_id -> the JSON published
	for i, ty := range types.Types() {
		js := requiredJSON(t, ty, i)
		id := fmt.Sprintf("%s-id-%d", ns, i)
		r := run(t, "publish", "-namespace", ns, "-brokers", brokers, "-registry", reg.URL(), "-id", id, ty.Name, js)
		if r.code != 0 {
			t.Fatalf("publish %s %s: exit status %d\nstderr:\n%s", ty.Name, js, r.code, r.stderr.String())
		}
		published[id] = js
	}

	// The records as they are in Kafka, by ce_id.
	values := map[string][]byte{}
	var names []string
	for _, tp := range topics {
		names = append(names, tp.Name)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for len(values) < len(published) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d published records: %v", len(values), len(published), ctx.Err())
		}
		fs.EachRecord(func(rec *kgo.Record) {
			for _, h := range rec.Headers {
				if h.Key == "ce_id" {
					values[string(h.Value)] = rec.Value
				}
			}
		})
	}

	printed := 0
	for _, tp := range topics {
		r := run(t, "tail", "-namespace", ns, "-brokers", brokers, "-registry", reg.URL(), "-idle", "5s", tp.Name)
		if r.code != 0 {
			t.Fatalf("tail %s: exit status %d\nstderr:\n%s", tp.Name, r.code, r.stderr.String())
		}
		for line := range strings.Lines(r.stdout.String()) {
			var l struct {
				Type, ID, Error string
				Event           json.RawMessage
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("tail line %q: %v", line, err)
			}
			if l.Error != "" || published[l.ID] == "" {
				t.Errorf("tail printed %s", line)
				continue
			}
			printed++
			if !sameJSON(t, l.Event, published[l.ID]) {
				t.Errorf("%s: tail printed %s, published %s", l.Type, l.Event, published[l.ID])
			}
			enc := run(t, "encode", "-registry", reg.URL(), l.Type, string(l.Event))
			if enc.code != 0 {
				t.Errorf("encode %s %s: exit status %d\nstderr:\n%s", l.Type, l.Event, enc.code, enc.stderr.String())
				continue
			}
			if !bytes.Equal(enc.stdout.Bytes(), values[l.ID]) {
				t.Errorf("%s: encode of what tail printed is %x, the record in Kafka %x", l.Type, enc.stdout.Bytes(), values[l.ID])
			}
		}
	}
	if printed != len(published) {
		t.Errorf("tail printed %d events, %d were published", printed, len(published))
	}
}

// sameJSON says whether got holds every member of want with the same value; got may hold
// more: the fields the schema gave defaults.
func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	for k, v := range w {
		if fmt.Sprint(g[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}
