package codec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

var update = flag.Bool("update", false, "rewrite testdata/account_created.golden.bin")

const goldenFile = "testdata/account_created.golden.bin"

// env is one codec on a fresh in-memory schema registry.
type env struct {
	reg    *srfake.Registry
	client *sr.Client
	types  *event.TypeSet
	codec  *codec.Codec
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	reg := srfake.New()
	tb.Cleanup(reg.Close)
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		tb.Fatal(err)
	}
	types, err := event.Load()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := codec.New(context.Background(), client, types)
	if err != nil {
		tb.Fatalf("codec.New: %v", err)
	}
	return &env{reg: reg, client: client, types: types, codec: c}
}

func (e *env) typ(tb testing.TB, name string) *event.Type {
	tb.Helper()
	t, err := e.types.ByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// register registers schema under subject as someone else would and returns its ID.
func (e *env) register(tb testing.TB, subject string, s sr.Schema) int {
	tb.Helper()
	ss, err := e.client.CreateSchema(context.Background(), subject, s)
	if err != nil {
		tb.Fatalf("register %s: %v", subject, err)
	}
	return ss.ID
}

// parse parses an Avro schema into a private cache, so that a writer schema that shares a full
// name with a generated type does not replace it in hamba's default cache.
func parse(tb testing.TB, s string) avro.Schema {
	tb.Helper()
	schema, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		tb.Fatal(err)
	}
	return schema
}

// frame returns body in the Confluent wire format with schema ID id.
func frame(id int, body []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

// at is a time with sub-millisecond digits in a non-UTC zone; events carry it at millisecond
// precision in UTC.
var at = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.FixedZone("CET", 3600))

// samples has one event of every type, with every field set.
func samples() map[string]event.Event {
	return map[string]event.Event{
		"AccountCreated": &event.AccountCreated{AccountID: "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01", Username: "ada", Email: "ada@example.com", CreatedAt: at, Locale: "de"},
		"AccountDeleted": &event.AccountDeleted{AccountID: "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01", DeletedAt: at},
		"UserCreated": &event.UserCreated{
			UserID: "5d0b7c1e-8e3a-5b44-9d6f-3c2a1b0e9f88", AccountID: "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01",
			Username: "ada", Email: "ada@example.com", CreatedAt: at,
		},
		"UserDeleted": &event.UserDeleted{
			UserID: "5d0b7c1e-8e3a-5b44-9d6f-3c2a1b0e9f88", AccountID: "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01",
			Email: "ada@example.com", Username: "ada", DeletedAt: at,
		},
		"UserRegistrationRejected": &event.UserRegistrationRejected{
			AccountID: "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01", Username: "ada", Reason: `username "ada" is taken`, RejectedAt: at,
		},
	}
}

// asDecoded returns ev as it reads back: times at millisecond precision in UTC.
func asDecoded(ev event.Event) event.Event {
	v := reflect.ValueOf(ev).Elem()
	out := reflect.New(v.Type())
	out.Elem().Set(v)
	for i := range v.NumField() {
		if f := out.Elem().Field(i); f.Type() == reflect.TypeFor[time.Time]() {
			f.Set(reflect.ValueOf(f.Interface().(time.Time).Truncate(time.Millisecond).UTC()))
		}
	}
	return out.Interface().(event.Event)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	evs := samples()
	for _, typ := range e.types.Types() {
		t.Run(typ.Name, func(t *testing.T) {
			t.Parallel()
			ev, ok := evs[typ.Name]
			if !ok {
				t.Fatalf("no sample %s: add one to samples()", typ.Name)
			}
			data, err := e.codec.Marshal(ev)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, gotType, err := e.codec.Unmarshal(ctx, data)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if gotType != typ {
				t.Errorf("Unmarshal type = %v, want %s", gotType, typ.Name)
			}
			if want := asDecoded(ev); !reflect.DeepEqual(got, want) {
				t.Errorf("Unmarshal = %+v\nwant %+v", got, want)
			}

			// AppendMarshal appends the same bytes.
			prefix := []byte("prefix")
			appended, err := e.codec.AppendMarshal(bytes.Clone(prefix), ev)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if !bytes.Equal(appended, append(prefix, data...)) {
				t.Errorf("AppendMarshal = %x, want prefix then %x", appended, data)
			}
		})
	}
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ids := make(map[int]string)
	for name, ev := range samples() {
		t.Run(name, func(t *testing.T) {
			typ := e.typ(t, name)
			data, err := e.codec.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) < 5 || data[0] != 0 {
				t.Fatalf("Marshal = %x, want magic byte 0 and a 4-byte schema ID", data)
			}
			id := int(binary.BigEndian.Uint32(data[1:5]))
			ss, err := e.client.SchemaByVersion(ctx, typ.Subject(), -1)
			if err != nil {
				t.Fatalf("subject %s: %v", typ.Subject(), err)
			}
			if id != ss.ID {
				t.Errorf("schema ID in the frame = %d, registry has %d under %s", id, ss.ID, typ.Subject())
			}
			if got := e.codec.SchemaID(typ); got != id {
				t.Errorf("SchemaID = %d, frame has %d", got, id)
			}
			if prev, dup := ids[id]; dup {
				t.Errorf("%s and %s share schema ID %d", name, prev, id)
			}
			ids[id] = name
			// The registered schema is the event's schema.
			if rs := parse(t, ss.Schema.Schema); rs.Fingerprint() != typ.Schema.Fingerprint() {
				t.Errorf("registered schema %s, want %s", ss.Schema.Schema, typ.Schema)
			}
			// The body is plain Avro binary of the event's schema.
			body, err := avro.Marshal(typ.Schema, ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data[5:], body) {
				t.Errorf("body = %x, want %x", data[5:], body)
			}
		})
	}
	subjects, err := e.client.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subjects) != len(e.types.Types()) {
		t.Errorf("registry subjects = %v, want one per event type (topic-record-name strategy)", subjects)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ev := &event.AccountCreated{
		AccountID: "0b0f6a4e-3c2d-4e1f-9a8b-7c6d5e4f3a2b",
		Username:  "grace",
		Email:     "grace@example.com",
		CreatedAt: time.Date(2024, 12, 9, 10, 11, 12, 345_000_000, time.UTC),
		Locale:    "de",
	}
	got, err := e.codec.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/codec -update)", err)
	}
	if len(golden) < 5 || golden[0] != 0 {
		t.Fatalf("%s = %x, not Confluent-framed", goldenFile, golden)
	}
	// The schema ID depends on registration order, so the header is checked against the registry
	// and the body against the golden file.
	ss, err := e.client.SchemaByVersion(ctx, e.typ(t, "AccountCreated").Subject(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:5], frame(ss.ID, nil)) {
		t.Errorf("header = %x, want magic byte and ID %d", got[:5], ss.ID)
	}
	if !bytes.Equal(got[5:], golden[5:]) {
		t.Errorf("body = %x\ngolden %x\n(if the change is intended, run go test ./pkg/codec -update)", got[5:], golden[5:])
	}

	// What was written before still reads back, under whatever ID this registry gave the schema.
	old := bytes.Clone(golden)
	if err := new(sr.ConfluentHeader).UpdateID(old, uint32(ss.ID)); err != nil {
		t.Fatal(err)
	}
	dec, _, err := e.codec.Unmarshal(ctx, old)
	if err != nil {
		t.Fatalf("Unmarshal golden: %v", err)
	}
	if !reflect.DeepEqual(dec, ev) {
		t.Errorf("golden decodes to %+v, want %+v", dec, ev)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	good, err := e.codec.Marshal(samples()["AccountCreated"])
	if err != nil {
		t.Fatal(err)
	}
	id := e.codec.SchemaID(e.typ(t, "AccountCreated"))
	sentinels := []error{codec.ErrFraming, codec.ErrUnknownSchema, codec.ErrBody, codec.ErrRegistryUnavailable}

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"nil", nil, codec.ErrFraming},
		{"empty", []byte{}, codec.ErrFraming},
		{"magic byte only", []byte{0}, codec.ErrFraming},
		{"short header", good[:4], codec.ErrFraming},
		{"wrong magic byte", append([]byte{1}, good[1:]...), codec.ErrFraming},
		{"JSON value", []byte(`{"accountId":"x"}`), codec.ErrFraming},
		{"unknown schema ID", frame(9999, good[5:]), codec.ErrUnknownSchema},
		{"schema ID 0", frame(0, good[5:]), codec.ErrUnknownSchema},
		{"truncated body", good[:8], codec.ErrBody}, // cut inside accountId
		{"header without body", good[:5], codec.ErrBody},
		{"body cut inside a long", good[:len(good)-3], codec.ErrBody},
		{"string length beyond the body", frame(id, []byte{0x7e, 'a'}), codec.ErrBody},
		{"negative string length", frame(id, []byte{0x01, 'a', 'b'}), codec.ErrBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, typ, err := e.codec.Unmarshal(ctx, tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal(%x) = %v, %v, %v; want an error wrapping %v", tt.data, ev, typ, err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("error %v also wraps %v", err, s)
				}
			}
			if ev != nil || typ != nil {
				t.Errorf("Unmarshal returned %v, %v with an error", ev, typ)
			}
		})
	}
}

// The writer schemas of TestSchemaResolution: AccountCreated as other builds may write it.
const (
	// A newer producer added a field with a default.
	accountCreatedPlusReferrer = `{"type":"record","name":"AccountCreated","namespace":"choreo.account.v1","fields":[
		{"name":"accountId","type":"string"},
		{"name":"username","type":"string"},
		{"name":"email","type":"string"},
		{"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"referrer","type":"string","default":""}]}`
	// The same fields in another order: fields are matched by name, not position.
	accountCreatedReordered = `{"type":"record","name":"AccountCreated","namespace":"choreo.account.v1","fields":[
		{"name":"email","type":"string"},
		{"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"accountId","type":"string"},
		{"name":"username","type":"string"}]}`
	// An older producer without email, which the current schema requires (no default).
	accountCreatedNoEmail = `{"type":"record","name":"AccountCreated","namespace":"choreo.account.v1","fields":[
		{"name":"accountId","type":"string"},
		{"name":"username","type":"string"},
		{"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	// A record no build of choreo knows.
	orderPlaced = `{"type":"record","name":"OrderPlaced","namespace":"shop.v1","fields":[{"name":"orderId","type":"string"}]}`
	// The right name with an incompatible field type.
	accountCreatedLongID = `{"type":"record","name":"AccountCreated","namespace":"choreo.account.v1","fields":[
		{"name":"accountId","type":"long"},
		{"name":"username","type":"string"},
		{"name":"email","type":"string"},
		{"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
)

func TestSchemaResolution(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	createdAt := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	writerValue := map[string]any{
		"accountId": "acc-1", "username": "ada", "email": "ada@example.com",
		"createdAt": createdAt, "referrer": "grace", "orderId": "ord-1",
	}
	want := &event.AccountCreated{AccountID: "acc-1", Username: "ada", Email: "ada@example.com", CreatedAt: createdAt, Locale: "en"} // writers without locale read as its default
	subject := e.typ(t, "AccountCreated").Subject()

	tests := []struct {
		name    string
		subject string
		schema  sr.Schema
		want    event.Event // nil: an error wrapping wantErr
		wantErr error
	}{
		{name: "writer has an extra field with a default", subject: subject, schema: sr.Schema{Schema: accountCreatedPlusReferrer}, want: want},
		{name: "writer orders fields differently", subject: "other-" + subject, schema: sr.Schema{Schema: accountCreatedReordered}, want: want},
		{name: "writer lacks a required field", subject: "old-" + subject, schema: sr.Schema{Schema: accountCreatedNoEmail}, wantErr: codec.ErrUnknownSchema},
		{name: "writer field of another type", subject: "long-" + subject, schema: sr.Schema{Schema: accountCreatedLongID}, wantErr: codec.ErrUnknownSchema},
		{name: "unknown record name", subject: "orders-shop.v1.OrderPlaced", schema: sr.Schema{Schema: orderPlaced}, wantErr: codec.ErrUnknownSchema},
		{name: "not a record", subject: "strings-value", schema: sr.Schema{Schema: `"string"`}, wantErr: codec.ErrUnknownSchema},
		{name: "JSON schema", subject: "json-value", schema: sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON}, wantErr: codec.ErrUnknownSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := e.register(t, tt.subject, tt.schema)
			if id == e.codec.SchemaID(e.typ(t, "AccountCreated")) {
				t.Fatalf("the registry gave the writer schema the ID of the current schema, %d", id)
			}
			var body []byte
			if tt.schema.Type == sr.TypeAvro {
				var err error
				if body, err = avro.Marshal(parse(t, tt.schema.Schema), writerValue); err != nil && tt.want != nil {
					t.Fatal(err)
				}
			}
			data := frame(id, body)
			// Twice: once through the registry, once from the codec's cache of seen IDs.
			for range 2 {
				got, typ, err := e.codec.Unmarshal(ctx, data)
				if tt.want == nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Unmarshal = %v, %v; want an error wrapping %v", got, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				if typ.Name != "AccountCreated" {
					t.Errorf("type = %s, want AccountCreated", typ.Name)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Unmarshal = %+v, want %+v", got, tt.want)
				}
			}
		})
	}

	// The current schema still decodes as itself after the resolved ones were used.
	t.Run("current schema after resolution", func(t *testing.T) {
		t.Parallel()
		data, err := e.codec.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := e.codec.Unmarshal(ctx, data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Unmarshal = %+v, %v; want %+v", got, err, want)
		}
	})
}

func TestRegistryUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	typ := e.typ(t, "AccountCreated")
	ev := &event.AccountCreated{AccountID: "acc-1", Username: "ada", Email: "ada@example.com", CreatedAt: time.UnixMilli(1_700_000_000_000).UTC(), Locale: "en"}
	body, err := avro.Marshal(parse(t, accountCreatedPlusReferrer), map[string]any{
		"accountId": ev.AccountID, "username": ev.Username, "email": ev.Email, "createdAt": ev.CreatedAt, "referrer": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := frame(e.register(t, typ.Subject(), sr.Schema{Schema: accountCreatedPlusReferrer}), body)
	if _, _, err := e.codec.Unmarshal(ctx, seen); err != nil {
		t.Fatalf("Unmarshal with the registry up: %v", err)
	}
	unseen := frame(e.register(t, "other-"+typ.Subject(), sr.Schema{Schema: accountCreatedReordered}), nil)
	current, err := e.codec.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}

	e.reg.Close()

	_, _, err = e.codec.Unmarshal(ctx, unseen)
	if !errors.Is(err, codec.ErrRegistryUnavailable) {
		t.Fatalf("Unmarshal of an unseen ID with the registry down: %v, want an error wrapping ErrRegistryUnavailable", err)
	}
	if errors.Is(err, codec.ErrUnknownSchema) {
		t.Errorf("error %v also wraps ErrUnknownSchema: the consumer would park a record it can decode later", err)
	}
	// IDs the codec has seen need no registry.
	for name, data := range map[string][]byte{"registered by New": current, "seen before": seen} {
		got, _, err := e.codec.Unmarshal(ctx, data)
		if err != nil {
			t.Errorf("%s: Unmarshal with the registry down: %v", name, err)
		} else if !reflect.DeepEqual(got, ev) {
			t.Errorf("%s: Unmarshal = %+v, want %+v", name, got, ev)
		}
	}
}

func TestNewIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	again, err := codec.New(ctx, e.client, e.types)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range e.types.Types() {
		if a, b := e.codec.SchemaID(typ), again.SchemaID(typ); a != b {
			t.Errorf("%s: first codec writes ID %d, second %d", typ.Name, a, b)
		}
		versions, err := e.client.SubjectVersions(ctx, typ.Subject())
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) != 1 {
			t.Errorf("%s has versions %v, want one", typ.Subject(), versions)
		}
	}
	// What one writes, the other reads.
	data, err := e.codec.Marshal(samples()["UserDeleted"])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.Unmarshal(ctx, data); err != nil {
		t.Errorf("second codec cannot read the first's value: %v", err)
	}
}

func TestNewRegistryDown(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	url := reg.URL()
	reg.Close()
	client, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := codec.New(context.Background(), client, types); err == nil {
		t.Fatalf("New with the registry down = %v, nil; want an error", c)
	}
}

// TestConcurrentLookups decodes values of schema IDs the codec has not seen from many goroutines
// at once (run with -race).
func TestConcurrentLookups(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	subject := e.typ(t, "AccountCreated").Subject()
	want := &event.AccountCreated{AccountID: "acc-1", Username: "ada", Email: "ada@example.com", CreatedAt: time.UnixMilli(1_700_000_000_123).UTC(), Locale: "en"}
	var frames [][]byte
	for i, s := range []string{accountCreatedReordered, accountCreatedPlusReferrer} {
		body, err := avro.Marshal(parse(t, s), map[string]any{
			"accountId": want.AccountID, "username": want.Username, "email": want.Email,
			"createdAt": want.CreatedAt, "referrer": "",
		})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame(e.register(t, fmt.Sprint(i, "-", subject), sr.Schema{Schema: s}), body))
	}
	current, err := e.codec.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, current)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			got, _, err := e.codec.Unmarshal(ctx, frames[i%len(frames)])
			if err == nil && !reflect.DeepEqual(got, want) {
				err = errors.New("decoded another event")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// alien is an Event whose Go type the registry does not know.
type alien struct{}

var alienSchema = func() avro.Schema {
	s, err := avro.ParseWithCache(`{"type":"record","name":"Alien","namespace":"test.v1","fields":[]}`, "", &avro.SchemaCache{})
	if err != nil {
		panic(err)
	}
	return s
}()

func (alien) Schema() avro.Schema { return alienSchema }

func TestMarshalUnknownType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if data, err := e.codec.Marshal(alien{}); !errors.Is(err, event.ErrUnknown) {
		t.Errorf("Marshal(alien) = %x, %v; want an error wrapping event.ErrUnknown", data, err)
	}
	if rec, err := e.codec.Record(envelope.Envelope{}, alien{}); !errors.Is(err, event.ErrUnknown) {
		t.Errorf("Record(alien) = %v, %v; want an error wrapping event.ErrUnknown", rec, err)
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	env := envelope.Envelope{
		ID:            "3b8d5d0c-7f7e-4a51-8c37-2f0d7b1f8a10",
		Source:        "user-service",
		Time:          time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
		CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
		CausationID:   "c0ffee00-0000-4000-8000-000000000002",
	}
	tests := []struct {
		name, event, topic, key string
	}{
		{"AccountCreated", "AccountCreated", "accounts", "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01"},
		{"AccountDeleted", "AccountDeleted", "accounts", "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01"},
		// Keyed by account, not by its own userId.
		{"UserCreated", "UserCreated", "users", "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01"},
		{"UserDeleted", "UserDeleted", "users", "9a1f0c9e-2b51-4f1d-8f7e-1d3c5b7a9e01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := samples()[tt.event]
			rec, err := e.codec.Record(env, ev)
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if rec.Topic != tt.topic || string(rec.Key) != tt.key {
				t.Errorf("record on %s keyed %q, want %s keyed %q", rec.Topic, rec.Key, tt.topic, tt.key)
			}
			want := env
			want.Type = tt.event
			want.ContentType = envelope.ContentType
			hdr := map[string]string{}
			for _, h := range rec.Headers {
				hdr[h.Key] = string(h.Value)
			}
			for k, v := range map[string]string{
				"ce_specversion": "1.0", "ce_id": want.ID, "ce_type": tt.event, "ce_source": want.Source,
				"ce_time": "2025-03-14T15:09:26Z", "ce_correlationid": want.CorrelationID,
				"ce_causationid": want.CausationID, "content-type": "application/avro",
			} {
				if hdr[k] != v {
					t.Errorf("header %s = %q, want %q", k, hdr[k], v)
				}
			}
			dec, err := e.codec.DecodeRecord(ctx, rec)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if !reflect.DeepEqual(dec.Event, asDecoded(ev)) || dec.Type.Name != tt.event {
				t.Errorf("DecodeRecord = %s %+v, want %s %+v", dec.Type.Name, dec.Event, tt.event, asDecoded(ev))
			}
			if !dec.Envelope.Time.Equal(want.Time) {
				t.Errorf("envelope time %v, want %v", dec.Envelope.Time, want.Time)
			}
			dec.Envelope.Time, want.Time = time.Time{}, time.Time{}
			if dec.Envelope != want {
				t.Errorf("envelope = %+v\nwant %+v", dec.Envelope, want)
			}
		})
	}

	t.Run("envelope of another type", func(t *testing.T) {
		t.Parallel()
		rec, err := e.codec.Record(envelope.Envelope{ID: "x", Type: "AccountDeleted"}, samples()["AccountCreated"])
		if !errors.Is(err, codec.ErrTypeMismatch) {
			t.Errorf("Record = %v, %v; want an error wrapping ErrTypeMismatch", rec, err)
		}
	})
}

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ev := samples()["AccountCreated"]
	value, err := e.codec.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	produced := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	headerTime := time.Date(2025, 5, 6, 7, 8, 0, 0, time.UTC)
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

	tests := []struct {
		name     string
		rec      *kgo.Record
		want     envelope.Envelope // when wantErr is nil
		wantType string
		wantErr  error
	}{
		{
			name: "without headers",
			rec:  &kgo.Record{Topic: "accounts", Partition: 3, Offset: 42, Timestamp: produced, Value: value},
			want: envelope.Envelope{ID: envelope.RecordID("accounts", 3, 42), Type: "AccountCreated", Time: produced},
		},
		{
			name: "with headers",
			rec: &kgo.Record{Topic: "accounts", Partition: 3, Offset: 42, Timestamp: produced, Value: value, Headers: []kgo.RecordHeader{
				h("ce_specversion", "1.0"), h("ce_id", "id-1"), h("ce_type", "AccountCreated"), h("ce_source", "kcat"),
				h("ce_time", headerTime.Format(time.RFC3339)), h("ce_correlationid", "corr"), h("content-type", "application/avro"),
			}},
			want: envelope.Envelope{
				ID: "id-1", Type: "AccountCreated", Source: "kcat", Time: headerTime,
				CorrelationID: "corr", ContentType: "application/avro",
			},
		},
		{
			name:    "ce_type of another event",
			rec:     &kgo.Record{Topic: "accounts", Value: value, Headers: []kgo.RecordHeader{h("ce_type", "AccountDeleted")}},
			wantErr: codec.ErrTypeMismatch,
		},
		{
			name:    "ce_type that is no event",
			rec:     &kgo.Record{Topic: "accounts", Value: value, Headers: []kgo.RecordHeader{h("ce_type", "com.example.Thing")}},
			wantErr: codec.ErrTypeMismatch,
		},
		{
			name:    "wrong topic",
			rec:     &kgo.Record{Topic: "users", Value: value},
			wantErr: codec.ErrWrongTopic,
		},
		{
			name:    "wrong topic with matching ce_type",
			rec:     &kgo.Record{Topic: "accounts.dlq", Value: value, Headers: []kgo.RecordHeader{h("ce_type", "AccountCreated")}},
			wantErr: codec.ErrWrongTopic,
		},
		{name: "nil value (tombstone)", rec: &kgo.Record{Topic: "accounts", Key: []byte("acc")}, wantErr: codec.ErrEmptyValue},
		{name: "empty value", rec: &kgo.Record{Topic: "accounts", Value: []byte{}}, wantErr: codec.ErrEmptyValue},
		{name: "unframed value", rec: &kgo.Record{Topic: "accounts", Value: []byte("hello")}, wantErr: codec.ErrFraming},
		{name: "unknown schema", rec: &kgo.Record{Topic: "accounts", Value: frame(9999, value[5:])}, wantErr: codec.ErrUnknownSchema},
		{
			name:    "malformed headers",
			rec:     &kgo.Record{Topic: "accounts", Value: value, Headers: []kgo.RecordHeader{h("ce_id", "a"), h("ce_id", "b")}},
			wantErr: envelope.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.codec.DecodeRecord(ctx, tt.rec)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecodeRecord = %+v, %v; want an error wrapping %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if got.Type == nil || got.Type.Name != "AccountCreated" {
				t.Errorf("Type = %v, want AccountCreated", got.Type)
			}
			if !reflect.DeepEqual(got.Event, asDecoded(ev)) {
				t.Errorf("Event = %+v, want %+v", got.Event, asDecoded(ev))
			}
			if !got.Envelope.Time.Equal(tt.want.Time) {
				t.Errorf("envelope time = %v, want %v", got.Envelope.Time, tt.want.Time)
			}
			gotEnv, wantEnv := got.Envelope, tt.want
			gotEnv.Time, wantEnv.Time = time.Time{}, time.Time{}
			if gotEnv != wantEnv {
				t.Errorf("envelope = %+v\nwant %+v", gotEnv, wantEnv)
			}
		})
	}
}
