// Package avrocompat decides whether Avro schemas can read each other's data, by the schema
// resolution rules of the Avro specification, and applies the compatibility levels of Confluent
// Schema Registry (BACKWARD, FORWARD, FULL, their _TRANSITIVE forms, NONE) to a schema's history.
//
// hamba/avro's SchemaCompatibility answers the same question (and the tests check that both agree)
// but reports neither where in the schema a problem lies nor which rule it breaks, and caches its
// verdicts by the canonical fingerprint, which leaves out defaults and aliases: a verdict for one
// schema is reused for another that differs only in a default. Each Problem here names the field
// (as a dotted path), the location (a JSON pointer into the reading schema) and Avro's name for
// the rule, so a refusal can say exactly what to change.
package avrocompat

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Rule names the resolution rule a pair of schemas breaks; the names are those of Avro's Java
// SchemaCompatibility, which Confluent Schema Registry reports.
type Rule string

// The rules of Avro schema resolution.
const (
	// NameMismatch: named types (record, enum, fixed) whose names differ and no alias of the
	// reader's matches the writer's full name.
	NameMismatch Rule = "NAME_MISMATCH"
	// FixedSizeMismatch: fixed types of different sizes.
	FixedSizeMismatch Rule = "FIXED_SIZE_MISMATCH"
	// MissingEnumSymbols: the writer has enum symbols the reader lacks, and the reader's enum
	// has no default symbol.
	MissingEnumSymbols Rule = "MISSING_ENUM_SYMBOLS"
	// ReaderFieldMissingDefaultValue: a reader field with no default is not in the writer (by
	// name or by one of the reader field's aliases).
	ReaderFieldMissingDefaultValue Rule = "READER_FIELD_MISSING_DEFAULT_VALUE"
	// TypeMismatch: types that neither match nor promote (int to long, float or double; long
	// to float or double; float to double; string to bytes and back).
	TypeMismatch Rule = "TYPE_MISMATCH"
	// MissingUnionBranch: a branch of the writer's union that no branch of the reader can read.
	MissingUnionBranch Rule = "MISSING_UNION_BRANCH"
)

// Problem is one reason why a reader schema cannot read what a writer schema wrote.
type Problem struct {
	Rule Rule
	// Field is the dotted path of the field concerned (e.g. "address.city"), or "" for the
	// top-level type.
	Field string
	// Location is a JSON pointer into the reader schema, as Avro reports it (e.g. "/fields/2/type").
	Location string
	// Message says what is wrong in words.
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.Rule, p.Message)
	}
	return fmt.Sprintf("field %s: %s: %s", p.Field, p.Rule, p.Message)
}

// CanRead returns every reason why data written with writer cannot be read with reader; none if
// it can. It implements the schema resolution rules of the Avro specification; logical types
// are ignored, as the specification resolves by the underlying type.
func CanRead(reader, writer avro.Schema) []Problem {
	c := checker{seen: make(map[pairKey]bool)}
	c.check(reader, writer, "", nil)
	return c.problems
}

type pairKey struct{ reader, writer avro.Schema }

type checker struct {
	seen     map[pairKey]bool // named pairs being checked further up the stack: recursive types end there
	problems []Problem
}

func (c *checker) add(rule Rule, field string, loc []string, format string, args ...any) {
	c.problems = append(c.problems, Problem{
		Rule: rule, Field: field, Location: "/" + strings.Join(loc, "/"), Message: fmt.Sprintf(format, args...),
	})
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// ok reports whether reader can read writer, without recording problems.
func (c *checker) ok(reader, writer avro.Schema) bool {
	sub := checker{seen: c.seen}
	sub.check(reader, writer, "", nil)
	return len(sub.problems) == 0
}

func (c *checker) check(reader, writer avro.Schema, field string, loc []string) {
	reader, writer = deref(reader), deref(writer)
	if rn, ok := reader.(avro.NamedSchema); ok {
		if wn, ok := writer.(avro.NamedSchema); ok {
			k := pairKey{rn, wn}
			if c.seen[k] {
				return // being checked further up: a recursive type
			}
			c.seen[k] = true
			defer delete(c.seen, k)
		}
	}

	if writer.Type() == avro.Union && reader.Type() != avro.Union {
		// Every branch the writer may have chosen must be readable.
		for i, w := range writer.(*avro.UnionSchema).Types() {
			if !c.ok(reader, w) {
				c.add(TypeMismatch, field, loc, "reader type %s cannot read writer union branch %d (%s)", typeName(reader), i, typeName(w))
			}
		}
		return
	}
	if reader.Type() != writer.Type() {
		if reader.Type() == avro.Union {
			for _, r := range reader.(*avro.UnionSchema).Types() {
				if c.ok(r, writer) {
					return
				}
			}
			c.add(TypeMismatch, field, loc, "reader union lacks writer type %s", typeName(writer))
			return
		}
		if !promotes(writer.Type(), reader.Type()) {
			c.add(TypeMismatch, field, loc, "reader type %s cannot read writer type %s", typeName(reader), typeName(writer))
		}
		return
	}

	switch r := reader.(type) {
	case *avro.ArraySchema:
		c.check(r.Items(), writer.(*avro.ArraySchema).Items(), field, append(loc, "items"))
	case *avro.MapSchema:
		c.check(r.Values(), writer.(*avro.MapSchema).Values(), field, append(loc, "values"))
	case *avro.FixedSchema:
		w := writer.(*avro.FixedSchema)
		if c.sameName(r, w, field, loc) && r.Size() != w.Size() {
			c.add(FixedSizeMismatch, field, append(loc, "size"), "expected size %d, found %d", r.Size(), w.Size())
		}
	case *avro.EnumSchema:
		w := writer.(*avro.EnumSchema)
		if !c.sameName(r, w, field, loc) {
			return
		}
		var missing []string
		for _, s := range w.Symbols() {
			if !slices.Contains(r.Symbols(), s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 && !r.HasDefault() {
			c.add(MissingEnumSymbols, field, append(loc, "symbols"), "reader enum %s lacks symbols %s and has no default", r.FullName(), strings.Join(missing, ", "))
		}
	case *avro.RecordSchema:
		w := writer.(*avro.RecordSchema)
		if !c.sameName(r, w, field, loc) {
			return
		}
		for i, rf := range r.Fields() {
			path := rf.Name()
			if field != "" {
				path = field + "." + rf.Name()
			}
			floc := append(slices.Clip(loc), "fields", strconv.Itoa(i))
			wf := writerField(w, rf)
			if wf == nil {
				if !rf.HasDefault() {
					c.add(ReaderFieldMissingDefaultValue, path, floc,
						"the reader's field %s has no default value and the writer has no such field", rf.Name())
				}
				continue
			}
			c.check(rf.Type(), wf.Type(), path, append(floc, "type"))
		}
	case *avro.UnionSchema:
		for i, wb := range writer.(*avro.UnionSchema).Types() {
			if !c.ok(r, wb) {
				c.add(MissingUnionBranch, field, append(slices.Clip(loc), strconv.Itoa(i)), "reader union lacks writer type %s", typeName(wb))
			}
		}
	}
}

// sameName checks the names of two named types of the same kind and records a mismatch.
func (c *checker) sameName(r, w avro.NamedSchema, field string, loc []string) bool {
	if r.Name() == w.Name() || slices.Contains(r.Aliases(), w.FullName()) {
		return true
	}
	c.add(NameMismatch, field, append(slices.Clip(loc), "name"), "expected %s, found %s", w.FullName(), r.FullName())
	return false
}

// writerField finds the writer's field for a reader field: by name, else by one of the reader
// field's aliases.
func writerField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, f := range w.Fields() {
		if f.Name() == rf.Name() {
			return f
		}
	}
	for _, f := range w.Fields() {
		if slices.Contains(rf.Aliases(), f.Name()) {
			return f
		}
	}
	return nil
}

func promotes(writer, reader avro.Type) bool {
	switch writer {
	case avro.Int:
		return reader == avro.Long || reader == avro.Float || reader == avro.Double
	case avro.Long:
		return reader == avro.Float || reader == avro.Double
	case avro.Float:
		return reader == avro.Double
	case avro.String:
		return reader == avro.Bytes
	case avro.Bytes:
		return reader == avro.String
	}
	return false
}

func typeName(s avro.Schema) string {
	if n, ok := deref(s).(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	return string(s.Type())
}
