package avrocompat_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

func parse(t *testing.T, s string) avro.Schema {
	t.Helper()
	sch, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return sch
}

// rec builds a record schema named R with the given fields (JSON).
func rec(fields ...string) string {
	return `{"type":"record","name":"R","namespace":"n","fields":[` + strings.Join(fields, ",") + `]}`
}

func TestCanRead(t *testing.T) {
	t.Parallel()
	enum := func(extra string, symbols ...string) string {
		return `{"type":"enum","name":"E","symbols":["` + strings.Join(symbols, `","`) + `"]` + extra + `}`
	}
	cases := []struct {
		name           string
		reader, writer string
		want           []avrocompat.Problem // rule, field and location only
	}{
		{name: "identical", reader: rec(`{"name":"a","type":"string"}`), writer: rec(`{"name":"a","type":"string"}`)},
		{name: "reader adds field with default", reader: rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string","default":"x"}`), writer: rec(`{"name":"a","type":"string"}`)},
		{name: "reader adds optional field", reader: rec(`{"name":"a","type":"string"}`, `{"name":"b","type":["null","string"],"default":null}`), writer: rec(`{"name":"a","type":"string"}`)},
		{name: "reader adds field without default", reader: rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string"}`), writer: rec(`{"name":"a","type":"string"}`),
			want: []avrocompat.Problem{{Rule: avrocompat.ReaderFieldMissingDefaultValue, Field: "b", Location: "/fields/1"}}},
		{name: "reader drops field", reader: rec(`{"name":"a","type":"string"}`), writer: rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string"}`)},
		{name: "field renamed with alias", reader: rec(`{"name":"b","type":"string","aliases":["a"]}`), writer: rec(`{"name":"a","type":"string"}`)},
		{name: "field renamed without alias", reader: rec(`{"name":"b","type":"string"}`), writer: rec(`{"name":"a","type":"string"}`),
			want: []avrocompat.Problem{{Rule: avrocompat.ReaderFieldMissingDefaultValue, Field: "b", Location: "/fields/0"}}},
		{name: "record renamed with alias", reader: `{"type":"record","name":"S","namespace":"n","aliases":["n.R"],"fields":[]}`, writer: rec()},
		{name: "record renamed without alias", reader: `{"type":"record","name":"S","namespace":"n","fields":[]}`, writer: rec(),
			want: []avrocompat.Problem{{Rule: avrocompat.NameMismatch, Location: "/name"}}},
		{name: "namespace changed", reader: `{"type":"record","name":"R","namespace":"m","fields":[]}`, writer: rec()},
		{name: "int to long", reader: rec(`{"name":"a","type":"long"}`), writer: rec(`{"name":"a","type":"int"}`)},
		{name: "int to float", reader: `"float"`, writer: `"int"`},
		{name: "int to double", reader: `"double"`, writer: `"int"`},
		{name: "long to float", reader: `"float"`, writer: `"long"`},
		{name: "long to double", reader: `"double"`, writer: `"long"`},
		{name: "float to double", reader: `"double"`, writer: `"float"`},
		{name: "string to bytes", reader: `"bytes"`, writer: `"string"`},
		{name: "bytes to string", reader: `"string"`, writer: `"bytes"`},
		{name: "long to int", reader: rec(`{"name":"a","type":"int"}`), writer: rec(`{"name":"a","type":"long"}`),
			want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Field: "a", Location: "/fields/0/type"}}},
		{name: "double to float", reader: `"float"`, writer: `"double"`, want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Location: "/"}}},
		{name: "string to int", reader: `"int"`, writer: `"string"`, want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Location: "/"}}},
		{name: "logical type ignored", reader: `{"type":"long","logicalType":"timestamp-micros"}`, writer: `{"type":"long","logicalType":"timestamp-millis"}`},
		{name: "enum symbol added", reader: enum("", "A", "B", "C"), writer: enum("", "A", "B")},
		{name: "enum symbol removed", reader: enum("", "A"), writer: enum("", "A", "B"),
			want: []avrocompat.Problem{{Rule: avrocompat.MissingEnumSymbols, Location: "/symbols"}}},
		{name: "enum symbol removed with reader default", reader: enum(`,"default":"A"`, "A"), writer: enum("", "A", "B")},
		{name: "enum renamed", reader: `{"type":"enum","name":"F","symbols":["A"]}`, writer: enum("", "A"),
			want: []avrocompat.Problem{{Rule: avrocompat.NameMismatch, Location: "/name"}}},
		{name: "fixed size", reader: `{"type":"fixed","name":"F","size":4}`, writer: `{"type":"fixed","name":"F","size":8}`,
			want: []avrocompat.Problem{{Rule: avrocompat.FixedSizeMismatch, Location: "/size"}}},
		{name: "union gains branch", reader: `["null","string","int"]`, writer: `["null","string"]`},
		{name: "union loses branch", reader: `["null","string"]`, writer: `["null","string","int"]`,
			want: []avrocompat.Problem{{Rule: avrocompat.MissingUnionBranch, Location: "/2"}}},
		{name: "union branch promoted", reader: `["null","long"]`, writer: `["null","int"]`},
		{name: "value becomes optional", reader: `["null","string"]`, writer: `"string"`},
		{name: "optional becomes required", reader: `"string"`, writer: `["null","string"]`,
			want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Location: "/"}}},
		{name: "reader union lacks writer type", reader: `["null","string"]`, writer: `"int"`,
			want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Location: "/"}}},
		{name: "array items promoted", reader: `{"type":"array","items":"long"}`, writer: `{"type":"array","items":"int"}`},
		{name: "map values narrowed", reader: `{"type":"map","values":"int"}`, writer: `{"type":"map","values":"long"}`,
			want: []avrocompat.Problem{{Rule: avrocompat.TypeMismatch, Location: "/values"}}},
		{name: "nested field", reader: rec(`{"name":"addr","type":{"type":"record","name":"A","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}}`),
			writer: rec(`{"name":"addr","type":{"type":"record","name":"A","fields":[{"name":"city","type":"string"}]}}`),
			want:   []avrocompat.Problem{{Rule: avrocompat.ReaderFieldMissingDefaultValue, Field: "addr.zip", Location: "/fields/0/type/fields/1"}}},
		{name: "recursive record", reader: `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]},{"name":"v","type":"long"}]}`,
			writer: `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]},{"name":"v","type":"int"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reader, writer := parse(t, tc.reader), parse(t, tc.writer)
			got := avrocompat.CanRead(reader, writer)
			var gotShort []avrocompat.Problem
			for _, p := range got {
				if p.Message == "" {
					t.Errorf("problem %+v has no message", p)
				}
				gotShort = append(gotShort, avrocompat.Problem{Rule: p.Rule, Field: p.Field, Location: p.Location})
			}
			if !slices.Equal(gotShort, tc.want) {
				t.Errorf("CanRead = %+v, want %+v", got, tc.want)
			}
			// hamba/avro's own checker, fresh so that no cached verdict leaks in, must agree.
			hamba := avro.NewSchemaCompatibility().Compatible(reader, writer)
			if (hamba == nil) != (len(tc.want) == 0) {
				t.Errorf("hamba/avro disagrees: %v", hamba)
			}
		})
	}
}

// TestHambaCacheIgnoresDefaults documents why the checker is not hamba/avro's: one
// SchemaCompatibility reuses the verdict for a reader that differs only in a default.
func TestHambaCacheIgnoresDefaults(t *testing.T) {
	t.Parallel()
	writer := parse(t, rec(`{"name":"a","type":"string"}`))
	withDefault := parse(t, rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string","default":"x"}`))
	without := parse(t, rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string"}`))
	if len(avrocompat.CanRead(withDefault, writer)) != 0 || len(avrocompat.CanRead(without, writer)) == 0 {
		t.Fatal("CanRead must accept the default and refuse its absence")
	}
	c := avro.NewSchemaCompatibility()
	_ = c.Compatible(withDefault, writer)
	if c.Compatible(without, writer) == nil {
		t.Log("hamba/avro reuses the verdict of the schema with a default (the reason CanRead exists)")
	}
}

func TestCheckLevels(t *testing.T) {
	t.Parallel()
	v1 := rec(`{"name":"a","type":"string"}`)
	v2 := rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string","default":"x"}`)
	noDefault := rec(`{"name":"a","type":"string"}`, `{"name":"b","type":"string"}`)
	dropA := rec(`{"name":"b","type":"string","default":"x"}`)
	cases := []struct {
		level   avrocompat.Level
		next    string
		earlier []string
		want    int // violations
	}{
		{avrocompat.None, noDefault, []string{v1}, 0},
		{avrocompat.Backward, v2, []string{v1}, 0},
		{avrocompat.Backward, noDefault, []string{v1}, 1},
		{avrocompat.Backward, noDefault, []string{v1, v2}, 0}, // the latest has b
		{avrocompat.BackwardTransitive, noDefault, []string{v1, v2}, 1},
		{avrocompat.Forward, noDefault, []string{v1}, 0}, // v1 ignores b
		{avrocompat.Forward, dropA, []string{v1}, 1},     // v1 needs a
		{avrocompat.Backward, dropA, []string{v1}, 0},
		{avrocompat.Full, dropA, []string{v1}, 1},
		{avrocompat.Full, v2, []string{v1}, 0},
		{avrocompat.FullTransitive, dropA, []string{v1, v2}, 2}, // v1 and v2 need a
		{avrocompat.ForwardTransitive, dropA, []string{v1, dropA}, 1},
		{avrocompat.Forward, dropA, []string{v1, dropA}, 0},
	}
	for _, tc := range cases {
		var earlier []avro.Schema
		for _, e := range tc.earlier {
			earlier = append(earlier, parse(t, e))
		}
		got := avrocompat.Check(tc.level, parse(t, tc.next), earlier)
		if len(got) != tc.want {
			t.Errorf("%s with %d earlier: %d violations %v, want %d", tc.level, len(tc.earlier), len(got), got, tc.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"none", "BACKWARD", "backward_transitive", "Forward", "FORWARD_TRANSITIVE", "full", "FULL_TRANSITIVE"} {
		l, err := avrocompat.ParseLevel(s)
		if err != nil || !strings.EqualFold(string(l), s) {
			t.Errorf("ParseLevel(%q) = %q, %v", s, l, err)
		}
	}
	if _, err := avrocompat.ParseLevel("SIDEWAYS"); err == nil {
		t.Error("ParseLevel(SIDEWAYS) succeeded")
	}
}
