package codec_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// decodeSentinels are the errors DecodeRecord documents: every error it returns wraps one.
var decodeSentinels = []error{
	codec.ErrFraming, codec.ErrUnknownSchema, codec.ErrBody, codec.ErrRegistryUnavailable,
	codec.ErrEmptyValue, codec.ErrTypeMismatch, codec.ErrWrongTopic, envelope.ErrMalformed,
}

// parseHeaders turns a fuzzed blob into record headers: one header per line, "key=value"
// (split at the first '='); a line without '=' is a header with a null value. Empty lines are
// skipped, so "k=v\n" and "k=v" are the same one header.
func parseHeaders(blob string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for line := range strings.SplitSeq(blob, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		h := kgo.RecordHeader{Key: k}
		if ok {
			h.Value = []byte(v)
		}
		hs = append(hs, h)
	}
	return hs
}

// headerBlob is the inverse of parseHeaders for headers without newlines.
func headerBlob(hs []kgo.RecordHeader) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Key)
		if h.Value != nil {
			b.WriteByte('=')
			b.Write(h.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Schema IDs pinned in the fuzzer's registry, so that the seed corpus in
// testdata/fuzz/FuzzDecodeRecord keeps meaning the same schemas when event types are added (a
// type not listed here gets the next free ID).
var (
	fuzzEventIDs = map[string]int{
		"AccountCreated": 1, "AccountDeleted": 2, "UserCreated": 3, "UserDeleted": 4, "UserRegistrationRejected": 5,
	}
	// Writer schemas other producers might have registered, so that fuzzed schema IDs reach the
	// codec's resolution paths: evolution, an unknown record, a non-record, a non-Avro type.
	fuzzWriterSchemas = []struct {
		id      int
		subject string // "" for the AccountCreated subject, as its next version
		schema  sr.Schema
	}{
		{101, "", sr.Schema{Schema: accountCreatedPlusReferrer}},
		{102, "other-accounts", sr.Schema{Schema: accountCreatedReordered}},
		{103, "old-accounts", sr.Schema{Schema: accountCreatedNoEmail}},
		{104, "orders-shop.v1.OrderPlaced", sr.Schema{Schema: orderPlaced}},
		{105, "strings-value", sr.Schema{Schema: `"string"`}},
		{106, "json-value", sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON}},
	}
)

// newFuzzEnv is newEnv on a registry holding the schemas at the IDs above.
func newFuzzEnv(tb testing.TB) *env {
	tb.Helper()
	types, err := event.Load()
	if err != nil {
		tb.Fatal(err)
	}
	reg := srfake.New()
	tb.Cleanup(reg.Close)
	for _, t := range types.Types() {
		if id, ok := fuzzEventIDs[t.Name]; ok {
			text := t.Text // what the codec registers
			if text == "" {
				text = t.Schema.String()
			}
			reg.SeedSchema(t.Subject(), 1, id, sr.Schema{Schema: text, Type: sr.TypeAvro})
		}
	}
	acc, err := types.ByName("AccountCreated")
	if err != nil {
		tb.Fatal(err)
	}
	for _, w := range fuzzWriterSchemas {
		subject, version := w.subject, 1
		if subject == "" {
			subject, version = acc.Subject(), 2
		}
		reg.SeedSchema(subject, version, w.id, w.schema)
	}
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := codec.New(context.Background(), client, types)
	if err != nil {
		tb.Fatalf("codec.New: %v", err)
	}
	for _, t := range types.Types() {
		if id, ok := fuzzEventIDs[t.Name]; ok && c.SchemaID(t) != id {
			tb.Fatalf("%s has schema ID %d, pinned %d: the seed corpus no longer means what it says", t.Name, c.SchemaID(t), id)
		}
	}
	return &env{reg: reg, client: client, types: types, codec: c}
}

// FuzzDecodeRecord feeds DecodeRecord arbitrary values, header sets and topics. It must never
// panic; every error must wrap one of the documented sentinels; and whatever decodes must
// survive a Marshal/Unmarshal round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	e := newFuzzEnv(f)
	ctx := context.Background()

	env := envelope.Envelope{
		ID: "4c1d5c8e-0d57-4d8e-9b6a-3f1e2d4c5b6a", Source: "/fuzz", Time: at,
		CorrelationID: "4c1d5c8e-0d57-4d8e-9b6a-3f1e2d4c5b6a", CausationID: "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b",
	}
	for name, ev := range samples() {
		rec, err := e.codec.Record(env, ev)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		hs := headerBlob(rec.Headers)
		f.Add(rec.Value, hs, rec.Topic)                           // valid, every header
		f.Add(rec.Value, "", rec.Topic)                           // valid, no headers (kcat without -H)
		f.Add(rec.Value[:len(rec.Value)-1], hs, rec.Topic)        // truncated inside the timestamp
		f.Add(rec.Value[:5], hs, rec.Topic)                       // framing only
		f.Add(append([]byte{1}, rec.Value[1:]...), hs, rec.Topic) // wrong magic byte
		f.Add(frame(9999, rec.Value[5:]), hs, rec.Topic)          // unknown schema ID
		f.Add(rec.Value, hs, "elsewhere")                         // wrong topic
		f.Add(rec.Value, hs+"ce_id=other\n", rec.Topic)           // ce_id twice, different values
	}
	acc, err := e.codec.Marshal(samples()["AccountCreated"])
	if err != nil {
		f.Fatal(err)
	}
	for _, w := range fuzzWriterSchemas {
		f.Add(frame(w.id, acc[5:]), "", "accounts") // the current body framed with another writer's ID
	}
	f.Add([]byte(nil), "", "accounts")                                  // tombstone
	f.Add([]byte{}, "ce_time=yesterday\n", "accounts")                  // bad headers before the empty value
	f.Add(acc, "ce_type=UserCreated\n", "accounts")                     // type mismatch
	f.Add(acc, "ce_specversion=0.3\n", "accounts")                      // unsupported spec version
	f.Add(acc, "ce_id="+strings.Repeat("x", 257)+"\n", "accounts")      // ce_id over 256 bytes
	f.Add(acc, "ce_id\nce_type\ncontent-type=text/plain\n", "accounts") // null header values

	f.Fuzz(func(t *testing.T, value []byte, headers, topic string) {
		rec := &kgo.Record{
			Topic: topic, Partition: 2, Offset: 42, Key: []byte("k"), Value: value,
			Headers: parseHeaders(headers), Timestamp: time.UnixMilli(1_700_000_000_000),
		}
		d, err := e.codec.DecodeRecord(ctx, rec)
		if err != nil {
			if !wrapsOneOf(err, decodeSentinels) {
				t.Fatalf("DecodeRecord error %q (%T) wraps none of the documented sentinels", err, err)
			}
			if d.Event != nil || d.Type != nil {
				t.Fatalf("DecodeRecord returned %+v with error %v", d, err)
			}
			return
		}

		if d.Event == nil || d.Type == nil {
			t.Fatalf("DecodeRecord succeeded with event %v, type %v", d.Event, d.Type)
		}
		if got, err := e.types.Of(d.Event); err != nil || got.Name != d.Type.Name {
			t.Fatalf("decoded %T but Type %s (%v)", d.Event, d.Type.Name, err)
		}
		if d.Envelope.Type != d.Type.Name {
			t.Errorf("envelope type %q, event %s", d.Envelope.Type, d.Type.Name)
		}
		if d.Envelope.ID == "" {
			t.Error("decoded envelope has no ID")
		}
		if d.Type.Topic != topic {
			t.Errorf("%s decoded from topic %q, its topic is %q", d.Type.Name, topic, d.Type.Topic)
		}

		again, err := e.codec.Marshal(d.Event)
		if err != nil {
			t.Fatalf("Marshal of the decoded %s %+v: %v", d.Type.Name, d.Event, err)
		}
		ev, typ, err := e.codec.Unmarshal(ctx, again)
		if err != nil {
			t.Fatalf("Unmarshal of the re-encoded %s %x: %v", d.Type.Name, again, err)
		}
		if typ != d.Type {
			t.Errorf("re-encoded %s reads back as %s", d.Type.Name, typ.Name)
		}
		if !reflect.DeepEqual(ev, d.Event) {
			t.Errorf("round trip changed the event:\n got %#v\nwant %#v", ev, d.Event)
		}
	})
}

func wrapsOneOf(err error, targets []error) bool {
	for _, s := range targets {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
