package avrojson_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/avrojson"
	"github.com/choreo-dev/choreo/pkg/event"
)

// goNames matches what would give a Go type away in a message meant for people writing JSON.
var goNames = regexp.MustCompile(`\b(int64|int32|float64|float32|time\.Time|\*?event\.|interface|struct|map\[|\[\]byte|Go )`)

func loadTypes(tb testing.TB) *event.TypeSet {
	tb.Helper()
	types, err := event.Load()
	if err != nil {
		tb.Fatal(err)
	}
	return types
}

// sampleJSON builds a valid Avro JSON value of s from the schema alone, so that every event
// type, and every field added to one later, is covered without a hand-written sample.
func sampleJSON(s avro.Schema, name string) any {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		switch ls.Logical().Type() {
		case avro.TimestampMillis:
			return json.Number("1767225600123")
		case avro.TimestampMicros:
			return json.Number("1767225600123456")
		}
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		m := map[string]any{}
		for _, f := range s.Fields() {
			m[f.Name()] = sampleJSON(f.Type(), f.Name())
		}
		return m
	case *avro.EnumSchema:
		return s.Symbols()[len(s.Symbols())-1]
	case *avro.ArraySchema:
		return []any{sampleJSON(s.Items(), name), sampleJSON(s.Items(), name)}
	case *avro.MapSchema:
		return map[string]any{"k": sampleJSON(s.Values(), name)}
	case *avro.UnionSchema:
		for _, b := range s.Types() {
			if b.Type() != avro.Null {
				key := string(b.Type())
				if n, ok := b.(avro.NamedSchema); ok {
					key = n.FullName()
				}
				return map[string]any{key: sampleJSON(b, name)}
			}
		}
		return nil
	case *avro.FixedSchema:
		return strings.Repeat("\u00ff", s.Size())
	}
	switch s.Type() {
	case avro.Boolean:
		return true
	case avro.Int:
		return json.Number("-7")
	case avro.Long:
		return json.Number("9007199254740993")
	case avro.Float, avro.Double:
		return json.Number("1.5")
	case avro.Bytes:
		return "\u0000\u00e9"
	case avro.String:
		return name + "-é-<value>"
	}
	return nil
}

// canonical re-encodes JSON with sorted object keys, to compare documents regardless of order.
func canonical(t *testing.T, b []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventsRoundTrip: for every event type, JSON parses into the generated Go type and is
// written back as the same JSON, and the Avro bytes of that JSON are the bytes the Go value
// marshals to.
func TestEventsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, ty := range loadTypes(t).Types() {
		t.Run(ty.Name, func(t *testing.T) {
			t.Parallel()
			in := mustJSON(t, sampleJSON(ty.Schema, ""))
			ev := ty.New()
			if err := avrojson.Unmarshal(ty.Schema, in, ev); err != nil {
				t.Fatalf("Unmarshal(%s): %v", in, err)
			}
			out, err := avrojson.Marshal(ty.Schema, ev)
			if err != nil {
				t.Fatal(err)
			}
			if canonical(t, out) != canonical(t, in) {
				t.Errorf("round trip changed the JSON:\n got %s\nwant %s", out, in)
			}
			body, err := avro.Marshal(ty.Schema, ev)
			if err != nil {
				t.Fatal(err)
			}
			direct, err := avrojson.ToBinary(ty.Schema, out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(direct, body) {
				t.Errorf("ToBinary(Marshal(ev)) = %x, avro.Marshal(ev) = %x", direct, body)
			}
		})
	}
}

// TestEventsFieldRules applies the rules to every field of every event type: a field left out
// is refused unless the schema has a default (then the default is written), a field of the
// wrong type, an unknown field and a field given twice are refused, each naming the field.
func TestEventsFieldRules(t *testing.T) {
	t.Parallel()
	for _, ty := range loadTypes(t).Types() {
		t.Run(ty.Name, func(t *testing.T) {
			t.Parallel()
			valid := sampleJSON(ty.Schema, "").(map[string]any)
			without := func(name string) map[string]any {
				m := map[string]any{}
				for k, v := range valid {
					if k != name {
						m[k] = v
					}
				}
				return m
			}
			for _, f := range ty.Schema.Fields() {
				t.Run("missing "+f.Name(), func(t *testing.T) {
					ev := ty.New()
					err := avrojson.Unmarshal(ty.Schema, mustJSON(t, without(f.Name())), ev)
					if f.HasDefault() {
						if err != nil {
							t.Fatalf("field with a default left out: %v", err)
						}
						return
					}
					wantFieldError(t, err, f.Name(), "missing", "no default", "want ")
				})
				t.Run("wrong type "+f.Name(), func(t *testing.T) {
					m := without(f.Name())
					m[f.Name()] = []any{true}
					err := avrojson.Unmarshal(ty.Schema, mustJSON(t, m), ty.New())
					wantFieldError(t, err, f.Name(), "got an array", "want ")
				})
				t.Run("twice "+f.Name(), func(t *testing.T) {
					js := mustJSON(t, valid)
					dup := fmt.Sprintf(`{%q:%s,%s`, f.Name(), mustJSON(t, valid[f.Name()]), js[1:])
					err := avrojson.Unmarshal(ty.Schema, []byte(dup), ty.New())
					wantFieldError(t, err, f.Name(), "twice")
				})
			}
			t.Run("unknown field", func(t *testing.T) {
				m := without("")
				m["isAdmin"] = true
				err := avrojson.Unmarshal(ty.Schema, mustJSON(t, m), ty.New())
				wantFieldError(t, err, "isAdmin", "no such field", ty.Schema.FullName())
			})
		})
	}
}

func wantFieldError(t *testing.T, err error, field string, mention ...string) {
	t.Helper()
	var je *avrojson.Error
	if !errors.As(err, &je) {
		t.Fatalf("error = %v, want an *avrojson.Error", err)
	}
	if je.Field != field {
		t.Errorf("error names field %q, want %q: %v", je.Field, field, err)
	}
	for _, s := range mention {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if goNames.MatchString(err.Error()) {
		t.Errorf("error %q names a Go type", err)
	}
}

// TestAccountCreated is the rules as a user meets them, with the messages they read.
func TestAccountCreated(t *testing.T) {
	t.Parallel()
	ty, err := loadTypes(t).ByName("AccountCreated")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC)
	const base = `"accountId":"a1","username":"jane","email":"jane@mail.com"`
	tests := []struct {
		name       string
		json       string
		wantAt     time.Time
		wantLocale string // "" for the schema's default, "en"
		wantErr    string // the whole message
	}{
		{name: "locale given", json: `{` + base + `,"createdAt":1767225600123,"locale":"de"}`, wantAt: at, wantLocale: "de"},
		{name: "millis as a number, Avro's encoding", json: `{` + base + `,"createdAt":1767225600123}`, wantAt: at},
		{name: "RFC 3339 string", json: `{` + base + `,"createdAt":"2026-01-01T00:00:00.123Z"}`, wantAt: at},
		{name: "RFC 3339 in another zone", json: `{` + base + `,"createdAt":"2026-01-01T01:00:00.123+01:00"}`, wantAt: at},
		{name: "negative millis", json: `{` + base + `,"createdAt":-1}`, wantAt: time.UnixMilli(-1).UTC()},
		{
			name:    "missing email",
			json:    `{"accountId":"a1","username":"jane","createdAt":1767225600123}`,
			wantErr: "email: missing, and the schema gives it no default; want a string",
		},
		{
			name:    "missing createdAt",
			json:    `{` + base + `}`,
			wantErr: "createdAt: missing, and the schema gives it no default; want a timestamp-millis: milliseconds since 1970-01-01T00:00:00Z as a whole number (e.g. 1767225600000), or an RFC 3339 string",
		},
		{
			name:    "unknown field",
			json:    `{` + base + `,"createdAt":0,"admin":true}`,
			wantErr: "admin: choreo.account.v1.AccountCreated has no such field (its fields: accountId, username, email, createdAt, locale)",
		},
		{
			name:    "number for a string",
			json:    `{"accountId":7,"username":"jane","email":"e","createdAt":0}`,
			wantErr: "accountId: got a number (7), want a string",
		},
		{
			name:    "null for a string",
			json:    `{"accountId":null,"username":"jane","email":"e","createdAt":0}`,
			wantErr: "accountId: got null, want a string",
		},
		{
			name:    "bad time",
			json:    `{` + base + `,"createdAt":"yesterday"}`,
			wantErr: `createdAt: got a string ("yesterday"), want a timestamp-millis: milliseconds since 1970-01-01T00:00:00Z as a whole number (e.g. 1767225600000), or an RFC 3339 string`,
		},
		{
			name:    "fractional millis",
			json:    `{` + base + `,"createdAt":1.5}`,
			wantErr: `createdAt: got a number (1.5), want a timestamp-millis: milliseconds since 1970-01-01T00:00:00Z as a whole number (e.g. 1767225600000), or an RFC 3339 string, within the years 1 to 9999`,
		},
		{
			name:    "millis past year 9999",
			json:    `{` + base + `,"createdAt":253402300800000}`,
			wantErr: `createdAt: got a number (253402300800000), want a timestamp-millis: milliseconds since 1970-01-01T00:00:00Z as a whole number (e.g. 1767225600000), or an RFC 3339 string, within the years 1 to 9999`,
		},
		{
			name:    "sub-millisecond string",
			json:    `{` + base + `,"createdAt":"2026-01-01T00:00:00.1234Z"}`,
			wantErr: `createdAt: got a string ("2026-01-01T00:00:00.1234Z"), which is more precise than timestamp-millis holds`,
		},
		{name: "not an object", json: `[]`, wantErr: "got an array, want an object with the fields of record choreo.account.v1.AccountCreated"},
		{name: "null", json: `null`, wantErr: "got null, want an object with the fields of record choreo.account.v1.AccountCreated"},
		{name: "not JSON", json: `{"accountId":`, wantErr: "not JSON: it ends too early"},
		{name: "nothing", json: ``, wantErr: "want one JSON value, got none"},
		{name: "two values", json: `{` + base + `,"createdAt":0} {}`, wantErr: "want one JSON value, found more after it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ev event.AccountCreated
			err := avrojson.Unmarshal(ty.Schema, []byte(tt.json), &ev)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v\nwant    %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantLocale := cmp.Or(tt.wantLocale, "en")
			if !ev.CreatedAt.Equal(tt.wantAt) || ev.AccountID != "a1" || ev.Email != "jane@mail.com" || ev.Locale != wantLocale {
				t.Errorf("got %+v, want createdAt %v, locale %s", ev, tt.wantAt, wantLocale)
			}
		})
	}
}

// richSchema has every Avro type, so the rules are checked beyond what today's events use.
const richSchema = `{
  "type": "record", "name": "Rich", "namespace": "test.v1",
  "fields": [
    {"name": "s", "type": "string"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "b", "type": "boolean"},
    {"name": "n", "type": "null"},
    {"name": "raw", "type": "bytes"},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "counts", "type": {"type": "map", "values": "long"}},
    {"name": "opt", "type": ["null", "string", "Color"]},
    {"name": "when", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "addr", "type": {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"},
      {"name": "zip", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "home", "type": ["null", "Address"], "default": null},
    {"name": "locale", "type": "string", "default": "en"},
    {"name": "level", "type": "int", "default": 3},
    {"name": "scores", "type": {"type": "array", "items": "double"}, "default": [1.5, 2]},
    {"name": "label", "type": {"type": "map", "values": "string"}, "default": {"b": "2", "a": "1"}},
    {"name": "kind", "type": "Color", "default": "GREEN"},
    {"name": "tag2", "type": "Hash", "default": "\u00ff\u0001"},
    {"name": "where", "type": "Address", "default": {"city": "Paris"}},
    {"name": "pick", "type": ["string", "null"], "default": "x"}
  ]
}`

const richValid = `{"s":"é\"<>","i":-2147483648,"l":9223372036854775807,"f":0.1,"d":-1e-300,"b":false,"n":null,` +
	`"raw":"\u0000ÿ","color":"GREEN","hash":"ab","tags":["x","y"],"counts":{"a":1,"b":-2},` +
	`"opt":{"test.v1.Color":"RED"},"when":{"long":1767225600000},"day":20454,"addr":{"city":"Oslo","zip":{"string":"0150"}},` +
	`"home":{"test.v1.Address":{"city":"Rome","zip":null}}}`

func TestRichSchema(t *testing.T) {
	t.Parallel()
	s := avro.MustParse(richSchema)
	body, err := avrojson.ToBinary(s, []byte(richValid))
	if err != nil {
		t.Fatal(err)
	}
	out, err := avrojson.FromBinary(s, body)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults are written out; everything else is as given.
	want := richValid[:len(richValid)-1] + `,"locale":"en","level":3,"scores":[1.5,2],"label":{"a":"1","b":"2"},` +
		`"kind":"GREEN","tag2":"ÿ\u0001","where":{"city":"Paris","zip":null},"pick":{"string":"x"}}`
	if canonical(t, out) != canonical(t, []byte(want)) {
		t.Errorf("FromBinary(ToBinary(x)):\n got %s\nwant %s", out, want)
	}
	again, err := avrojson.ToBinary(s, out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, body) {
		t.Errorf("the printed JSON encodes to %x, the original to %x", again, body)
	}
	// What hamba/avro decodes from the bytes is what was given.
	var generic map[string]any
	if err := avro.Unmarshal(s, body, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["locale"] != "en" || generic["level"] != 3 || generic["l"] != int64(9223372036854775807) {
		t.Errorf("decoded %v", generic)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); !reflect.DeepEqual(generic["when"], map[string]any{"long.timestamp-millis": want}) && !reflect.DeepEqual(generic["when"], want) {
		t.Errorf("when = %#v", generic["when"])
	}
}

func TestRichSchemaErrors(t *testing.T) {
	t.Parallel()
	s := avro.MustParse(richSchema)
	set := func(field, js string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(richValid), &m); err != nil {
			t.Fatal(err)
		}
		m[field] = json.RawMessage(js)
		return string(mustJSON(t, m))
	}
	tests := []struct {
		name, json, field, want string
	}{
		{"int out of range", set("i", "2147483648"), "i", "got a number (2147483648), want an int (a whole number from -2147483648 to 2147483647)"},
		{"long as a string", set("l", `"5"`), "l", `got a string ("5"), want a long (a whole number)`},
		{"long with a fraction", set("l", `5.0`), "l", `got a number (5.0), want a long (a whole number)`},
		{"float as a string", set("f", `"x"`), "f", `want a float (a number)`},
		{"boolean as a number", set("b", `1`), "b", "got a number (1), want a boolean (true or false)"},
		{"null as a string", set("n", `"null"`), "n", `got a string ("null"), want null`},
		{"bytes beyond U+00FF", set("raw", `"€"`), "raw", "want bytes (a string of code points U+0000 to U+00FF)"},
		{"unknown symbol", set("color", `"BLUE"`), "color", `got a string ("BLUE"), want one of the strings "RED", "GREEN"`},
		{"fixed too short", set("hash", `"a"`), "hash", "want a string of exactly 2 bytes"},
		{"array item", set("tags", `["x",1]`), "tags[1]", "got a number (1), want a string"},
		{"map value", set("counts", `{"a":"1"}`), `counts{"a"}`, `got a string ("1"), want a long`},
		{"map key twice", set("counts", `{"a":1,"a":2}`), `counts{"a"}`, "the key is given twice"},
		{"union bare value", set("opt", `"x"`), "opt", `got a string ("x"), want a union: null or {"string": string} or {"test.v1.Color": enum test.v1.Color}`},
		{"union unknown branch", set("opt", `{"long":1}`), "opt", `the union has no branch "long"`},
		{"union short name", set("opt", `{"Color":"RED"}`), "opt", `the union has no branch "Color"`},
		{"union two keys", set("opt", `{"string":"a","null":null}`), "opt", "got an object, want a union"},
		{"union branch value", set("when", `{"long":"soon"}`), "when", `got a string ("soon"), want a timestamp-millis`},
		{"union with null last", set("pick", `5`), "pick", `got a number (5), want a union: {"string": string} or null`},
		{"nested missing", set("addr", `{}`), "addr.city", "missing, and the schema gives it no default; want a string"},
		{"nested unknown", set("addr", `{"city":"x","street":"y"}`), "addr.street", "test.v1.Address has no such field (its fields: city, zip)"},
		{"date string", set("day", `"2026-13-01"`), "day", "want a date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := avrojson.ToBinary(s, []byte(tt.json))
			wantFieldError(t, err, tt.field, tt.want)
		})
	}
	t.Run("date as a string", func(t *testing.T) {
		body, err := avrojson.ToBinary(s, []byte(set("day", `"2026-01-01"`)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := avrojson.FromBinary(s, body)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"day":20454`) {
			t.Errorf("2026-01-01 printed as %s, want day 20454", out)
		}
	})
}

func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	_, err := avrojson.ToBinary(avro.MustParse(`"string"`), []byte("\"\xff\""))
	if err == nil || err.Error() != "not JSON: it is not valid UTF-8" {
		t.Errorf("error = %v, want the JSON refused as not UTF-8", err)
	}
}

// TestEmptyBody: a schema whose values take no bytes still round-trips.
func TestEmptyBody(t *testing.T) {
	t.Parallel()
	var v any = "x"
	if err := avrojson.Unmarshal(avro.MustParse(`"null"`), []byte(`null`), &v); err != nil || v != nil {
		t.Errorf("Unmarshal(null) = %v, %v", v, err)
	}
	out, err := avrojson.Marshal(avro.MustParse(`"null"`), nil)
	if err != nil || string(out) != "null" {
		t.Errorf("Marshal(nil) = %s, %v", out, err)
	}
}

// TestFromBinaryTrailingBytes: a body longer than its value is refused, not read in part.
func TestFromBinaryTrailingBytes(t *testing.T) {
	t.Parallel()
	s := avro.MustParse(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`)
	if out, err := avrojson.FromBinary(s, []byte{0x02}); err != nil || string(out) != `{"a":1}` {
		t.Fatalf("FromBinary(exact body) = %s, %v", out, err)
	}
	_, err := avrojson.FromBinary(s, []byte{0x02, 0x04})
	if err == nil || !strings.Contains(err.Error(), "trailing bytes") {
		t.Errorf("FromBinary(body with a byte extra) error = %v, want trailing bytes", err)
	}
}

// TestFromBinaryHugeBlock: a block count far beyond the body, of items that take no bytes,
// is refused instead of decoded for ever.
func TestFromBinaryHugeBlock(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	go func() {
		// 1<<60 nulls in one block (zigzag varint), then the end of the array.
		body := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00}
		_, err := avrojson.FromBinary(avro.MustParse(`{"type":"array","items":"null"}`), body)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "more than the body can hold") {
			t.Errorf("error = %v, want the block refused", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("FromBinary still decoding a huge block of nulls after a minute")
	}
	// A modest array of nulls (3 items, one block) still decodes.
	out, err := avrojson.FromBinary(avro.MustParse(`{"type":"array","items":"null"}`), []byte{0x06, 0x00})
	if err != nil || string(out) != `[null,null,null]` {
		t.Errorf("FromBinary(3 nulls) = %s, %v", out, err)
	}
}
