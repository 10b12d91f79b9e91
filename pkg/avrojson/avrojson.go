// Package avrojson reads and writes Avro's JSON encoding, as the Avro specification defines it
// ("JSON Encoding") and Confluent's console producer and consumer speak it: a record is an object
// with one member per field, a union value is null or an object with one member named for the
// branch ({"string": "x"}, {"choreo.v1.Address": {...}}), bytes and fixed are strings of the code
// points U+0000 to U+00FF, and a logical type is written as its underlying type, so a
// timestamp-millis is a number of milliseconds.
//
// Everything is driven by the schema: a field the schema adds later, with a default, needs no
// code here. Parsing is strict, because what it accepts is written to Kafka for good: a field
// that is missing is set to its default or refused, and an unknown field, a duplicated field,
// a wrong type or a number out of range is refused with an Error that names the field and what
// the schema expects there.
//
// Two conveniences go beyond the specification, for people typing events by hand: a
// timestamp-millis or timestamp-micros may be given as an RFC 3339 string, and a date as a string
// like 2026-01-02. Marshal never writes them, so what it writes parses back to the same bytes.
package avrojson

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Error is a value that does not fit the schema: which field and what was expected. Its
// message names Avro and JSON types only, never Go types, because it is shown to people who
// write JSON.
type Error struct {
	// Field is the path of the offending value, e.g. "createdAt", "items[2].name" or
	// "tags{\"a\"}"; empty for the top-level value.
	Field string
	// Problem says what is wrong and what the schema wants instead.
	Problem string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Marshal returns the Avro JSON encoding of v, which must be a value that avro.Marshal accepts
// for schema (a generated struct, say). The JSON is compact and lists record fields in schema
// order; Unmarshal of it yields a value that avro.Marshal writes as the very same bytes.
func Marshal(schema avro.Schema, v any) ([]byte, error) {
	body, err := avro.Marshal(schema, v)
	if err != nil {
		return nil, err
	}
	return FromBinary(schema, body)
}

// Unmarshal parses data, one JSON value in Avro's JSON encoding for schema, into v as
// avro.Unmarshal would decode its binary encoding. Errors about the JSON are *Error.
func Unmarshal(schema avro.Schema, data []byte, v any) error {
	body, err := ToBinary(schema, data)
	if err != nil {
		return err
	}
	r := avro.NewReader(bytes.NewReader(body), len(body)+1)
	r.ReadVal(schema, v)
	if r.Error != nil {
		return fmt.Errorf("read the encoded value back: %w", r.Error)
	}
	return nil
}

// describe says what a schema wants, in words for people who write JSON.
func describe(s avro.Schema) string {
	s = deref(s)
	if lt := logical(s); lt != "" {
		switch lt {
		case avro.TimestampMillis:
			return "a timestamp-millis: milliseconds since 1970-01-01T00:00:00Z as a whole number (e.g. 1767225600000), or an RFC 3339 string"
		case avro.TimestampMicros:
			return "a timestamp-micros: microseconds since 1970-01-01T00:00:00Z as a whole number, or an RFC 3339 string"
		case avro.Date:
			return "a date: days since 1970-01-01 as a whole number, or a string like 2026-01-02"
		}
		return fmt.Sprintf("%s (%s)", lt, describeBase(s))
	}
	return describeBase(s)
}

func describeBase(s avro.Schema) string {
	switch s := s.(type) {
	case *avro.RecordSchema:
		return "an object with the fields of record " + s.FullName()
	case *avro.EnumSchema:
		return "one of the strings " + strings.Join(quoteAll(s.Symbols()), ", ")
	case *avro.ArraySchema:
		return "an array of " + plural(s.Items())
	case *avro.MapSchema:
		return "an object whose values are " + plural(s.Values())
	case *avro.FixedSchema:
		return fmt.Sprintf("a string of exactly %d bytes (code points U+0000 to U+00FF)", s.Size())
	case *avro.UnionSchema:
		var alts []string
		for _, b := range s.Types() {
			if b.Type() == avro.Null {
				alts = append(alts, "null")
				continue
			}
			alts = append(alts, fmt.Sprintf("{%q: %s}", branchName(b), short(b)))
		}
		return "a union: " + strings.Join(alts, " or ")
	}
	switch s.Type() {
	case avro.Null:
		return "null"
	case avro.Boolean:
		return "a boolean (true or false)"
	case avro.Int:
		return "an int (a whole number from -2147483648 to 2147483647)"
	case avro.Long:
		return "a long (a whole number)"
	case avro.Float:
		return "a float (a number)"
	case avro.Double:
		return "a double (a number)"
	case avro.Bytes:
		return "bytes (a string of code points U+0000 to U+00FF)"
	case avro.String:
		return "a string"
	}
	return string(s.Type())
}

// short names a schema inside another description, without its explanation.
func short(s avro.Schema) string {
	s = deref(s)
	if lt := logical(s); lt != "" {
		return string(lt)
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	if a, ok := s.(*avro.ArraySchema); ok {
		return "array of " + short(a.Items())
	}
	if m, ok := s.(*avro.MapSchema); ok {
		return "map of " + short(m.Values())
	}
	return string(s.Type())
}

func plural(s avro.Schema) string { return short(s) + " values" }

// branchName is the name a union branch goes by in the JSON encoding: the full name of a named
// type, the type name otherwise (the underlying one for a logical type).
func branchName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func logical(s avro.Schema) avro.LogicalType {
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		return ls.Logical().Type()
	}
	return ""
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
