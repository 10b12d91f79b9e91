package avrojson_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/avrojson"
	"github.com/choreo-dev/choreo/pkg/codec"
)

// FuzzEncodeEvent is `choreo encode` without the command line: JSON for an event type, parsed
// into the event and written in the Confluent wire format. Whatever the JSON, it must not panic;
// JSON it refuses gets an *avrojson.Error; and a record it writes must be one the codec's own
// decoder reads back to the same event, whose JSON (what `choreo tail` prints) encodes to the
// very same bytes. The seed corpus, in code and in testdata/fuzz/FuzzEncodeEvent, runs with
// every `go test`; `make fuzz` explores further.
func FuzzEncodeEvent(f *testing.F) {
	types := loadTypes(f)
	reg := srfake.New()
	f.Cleanup(reg.Close)
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		f.Fatal(err)
	}
	c, err := codec.New(context.Background(), client, types)
	if err != nil {
		f.Fatal(err)
	}
	for _, ty := range types.Types() {
		valid := mustJSON(f, sampleJSON(ty.Schema, ""))
		f.Add(ty.Name, valid)
		f.Add(ty.Name, valid[:len(valid)/2])
		f.Add(ty.Name, []byte(`{}`))
	}
	f.Add("AccountCreated", []byte(`{"accountId":"a","username":"u","email":"e","createdAt":-62135596800000}`))
	f.Add("AccountCreated", []byte(`{"accountId":"a","username":"u","email":"e","createdAt":"9999-12-31T23:59:59.999Z"}`))
	f.Add("AccountDeleted", []byte(`{"accountId":"\ud800","deletedAt":1e3}`))

	f.Fuzz(func(t *testing.T, name string, js []byte) {
		ty, err := types.ByName(name)
		if err != nil {
			return
		}
		ev := ty.New()
		if err := avrojson.Unmarshal(ty.Schema, js, ev); err != nil {
			var je *avrojson.Error
			if !errors.As(err, &je) {
				t.Fatalf("Unmarshal(%q) error %v is not an *avrojson.Error", js, err)
			}
			return
		}
		rec, err := c.Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal of %+v, parsed from %q: %v", ev, js, err)
		}
		got, gotType, err := c.Unmarshal(context.Background(), rec)
		if err != nil {
			t.Fatalf("the codec rejects the record %x it wrote for %q: %v", rec, js, err)
		}
		if gotType != ty || !reflect.DeepEqual(got, ev) {
			t.Fatalf("the record decodes as %s %+v, want %s %+v", gotType.Name, got, ty.Name, ev)
		}
		printed, err := avrojson.Marshal(ty.Schema, got)
		if err != nil {
			t.Fatalf("Marshal to JSON of %+v: %v", got, err)
		}
		again := ty.New()
		if err := avrojson.Unmarshal(ty.Schema, printed, again); err != nil {
			t.Fatalf("the printed JSON %s does not parse: %v", printed, err)
		}
		rec2, err := c.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec2, rec) {
			t.Fatalf("printed %s encodes to %x, the record was %x", printed, rec2, rec)
		}
	})
}

// FuzzToBinary checks the conversion itself on a schema with every Avro type: it never panics,
// refuses with an *avrojson.Error, and what it accepts prints as JSON that converts back to the
// same bytes, bytes that hamba/avro decodes.
func FuzzToBinary(f *testing.F) {
	s := avro.MustParse(richSchema)
	f.Add([]byte(richValid))
	f.Add([]byte(`{"s":"x"}`))
	f.Add([]byte(`[1,2,{"a":null}]`))
	f.Fuzz(func(t *testing.T, js []byte) {
		body, err := avrojson.ToBinary(s, js)
		if err != nil {
			var je *avrojson.Error
			if !errors.As(err, &je) {
				t.Fatalf("ToBinary(%q) error %v is not an *avrojson.Error", js, err)
			}
			return
		}
		var generic any
		if err := avro.Unmarshal(s, body, &generic); err != nil {
			t.Fatalf("hamba/avro rejects %x, written for %q: %v", body, js, err)
		}
		printed, err := avrojson.FromBinary(s, body)
		if err != nil {
			t.Fatalf("FromBinary(%x): %v", body, err)
		}
		again, err := avrojson.ToBinary(s, printed)
		if err != nil {
			t.Fatalf("the printed JSON %s does not parse: %v", printed, err)
		}
		if !bytes.Equal(again, body) {
			t.Fatalf("printed %s encodes to %x, the original %q to %x", printed, again, js, body)
		}
	})
}
