package avrojson

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// Timestamps are accepted within the years 1 to 9999, the range RFC 3339 can write and every
// common date type holds, so that no tool reading the event meets a date it cannot represent.
const (
	minMillis = -62135596800000 // 0001-01-01T00:00:00Z
	maxMillis = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// ToBinary parses data, one JSON value in Avro's JSON encoding for schema, and returns its Avro
// binary encoding. Errors about the JSON are *Error.
func ToBinary(schema avro.Schema, data []byte) ([]byte, error) {
	v, err := parse(data)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := avro.NewWriter(&buf, 256)
	if err := encode(w, schema, v, ""); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mismatch(path string, s avro.Schema, v value) error {
	return &Error{Field: path, Problem: fmt.Sprintf("got %s, want %s", v.what(), describe(s))}
}

func encode(w *avro.Writer, s avro.Schema, v value, path string) error {
	s = deref(s)
	switch lt := logical(s); lt {
	case avro.TimestampMillis, avro.TimestampMicros:
		return encodeTimestamp(w, s, lt, v, path)
	case avro.Date:
		if v.kind == kString {
			d, err := time.Parse(time.DateOnly, v.s)
			if err != nil {
				return mismatch(path, s, v)
			}
			w.WriteInt(int32(d.Unix() / 86400))
			return nil
		}
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		return encodeRecord(w, s, v, path)
	case *avro.EnumSchema:
		if v.kind != kString {
			return mismatch(path, s, v)
		}
		i := slices.Index(s.Symbols(), v.s)
		if i < 0 {
			return mismatch(path, s, v)
		}
		w.WriteInt(int32(i))
		return nil
	case *avro.ArraySchema:
		if v.kind != kArray {
			return mismatch(path, s, v)
		}
		if len(v.arr) > 0 {
			w.WriteLong(int64(len(v.arr)))
			for i, item := range v.arr {
				if err := encode(w, s.Items(), item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		w.WriteLong(0)
		return nil
	case *avro.MapSchema:
		if v.kind != kObject {
			return mismatch(path, s, v)
		}
		seen := make(map[string]bool, len(v.obj))
		if len(v.obj) > 0 {
			w.WriteLong(int64(len(v.obj)))
			for _, m := range v.obj {
				at := fmt.Sprintf("%s{%q}", path, m.key)
				if seen[m.key] {
					return &Error{Field: at, Problem: "the key is given twice"}
				}
				seen[m.key] = true
				w.WriteString(m.key)
				if err := encode(w, s.Values(), m.val, at); err != nil {
					return err
				}
			}
		}
		w.WriteLong(0)
		return nil
	case *avro.FixedSchema:
		b, ok := latin1(v)
		if !ok || len(b) != s.Size() {
			return mismatch(path, s, v)
		}
		_, _ = w.Write(b)
		return nil
	case *avro.UnionSchema:
		return encodeUnion(w, s, v, path)
	}
	switch s.Type() {
	case avro.Null:
		if v.kind != kNull {
			return mismatch(path, s, v)
		}
	case avro.Boolean:
		if v.kind != kBool {
			return mismatch(path, s, v)
		}
		w.WriteBool(v.b)
	case avro.Int:
		i, err := whole(v, 32)
		if err != nil {
			return mismatch(path, s, v)
		}
		w.WriteInt(int32(i))
	case avro.Long:
		i, err := whole(v, 64)
		if err != nil {
			return mismatch(path, s, v)
		}
		w.WriteLong(i)
	case avro.Float:
		f, ok := float(v, 32)
		if !ok {
			return mismatch(path, s, v)
		}
		w.WriteFloat(float32(f))
	case avro.Double:
		f, ok := float(v, 64)
		if !ok {
			return mismatch(path, s, v)
		}
		w.WriteDouble(f)
	case avro.Bytes:
		b, ok := latin1(v)
		if !ok {
			return mismatch(path, s, v)
		}
		w.WriteBytes(b)
	case avro.String:
		if v.kind != kString {
			return mismatch(path, s, v)
		}
		w.WriteString(v.s)
	default:
		return &Error{Field: path, Problem: fmt.Sprintf("the schema's type %s is not supported", s.Type())}
	}
	return nil
}

func encodeRecord(w *avro.Writer, s *avro.RecordSchema, v value, path string) error {
	if v.kind != kObject {
		return mismatch(path, s, v)
	}
	given := make(map[string]value, len(v.obj))
	for _, m := range v.obj {
		if _, dup := given[m.key]; dup {
			return &Error{Field: fieldPath(path, m.key), Problem: "the field is given twice"}
		}
		given[m.key] = m.val
	}
	names := make([]string, 0, len(s.Fields()))
	for _, f := range s.Fields() {
		names = append(names, f.Name())
	}
	for _, m := range v.obj {
		if !slices.Contains(names, m.key) {
			return &Error{Field: fieldPath(path, m.key), Problem: fmt.Sprintf(
				"%s has no such field (its fields: %s)", s.FullName(), strings.Join(names, ", "))}
		}
	}
	for _, f := range s.Fields() {
		at := fieldPath(path, f.Name())
		fv, ok := given[f.Name()]
		if !ok {
			if !f.HasDefault() {
				return &Error{Field: at, Problem: fmt.Sprintf("missing, and the schema gives it no default; want %s", describe(f.Type()))}
			}
			if err := encodeDefault(w, f.Type(), f.Default(), at); err != nil {
				return err
			}
			continue
		}
		if err := encode(w, f.Type(), fv, at); err != nil {
			return err
		}
	}
	return nil
}

func encodeUnion(w *avro.Writer, s *avro.UnionSchema, v value, path string) error {
	if v.kind == kNull {
		for i, b := range s.Types() {
			if b.Type() == avro.Null {
				w.WriteLong(int64(i))
				return nil
			}
		}
		return mismatch(path, s, v)
	}
	if v.kind != kObject || len(v.obj) != 1 {
		return mismatch(path, s, v)
	}
	m := v.obj[0]
	for i, b := range s.Types() {
		if b.Type() != avro.Null && branchName(b) == m.key {
			w.WriteLong(int64(i))
			return encode(w, b, m.val, path)
		}
	}
	return &Error{Field: path, Problem: fmt.Sprintf("the union has no branch %q; want %s", m.key, describe(s))}
}

func encodeTimestamp(w *avro.Writer, s avro.Schema, lt avro.LogicalType, v value, path string) error {
	scale := int64(1)
	if lt == avro.TimestampMicros {
		scale = 1000
	}
	var n int64
	switch v.kind {
	case kNumber:
		i, err := whole(v, 64)
		if err != nil || i < minMillis*scale || i > maxMillis*scale+scale-1 {
			return &Error{Field: path, Problem: fmt.Sprintf("got %s, want %s, within the years 1 to 9999", v.what(), describe(s))}
		}
		n = i
	case kString:
		t, err := time.Parse(time.RFC3339Nano, v.s)
		if err != nil {
			return mismatch(path, s, v)
		}
		unit := time.Millisecond
		if lt == avro.TimestampMicros {
			unit = time.Microsecond
		}
		if t.Truncate(unit) != t {
			return &Error{Field: path, Problem: fmt.Sprintf("got %s, which is more precise than %s holds", v.what(), lt)}
		}
		if lt == avro.TimestampMicros {
			n = t.UnixMicro()
		} else {
			n = t.UnixMilli()
		}
		if t.Year() < 1 || t.Year() > 9999 {
			return mismatch(path, s, v)
		}
	default:
		return mismatch(path, s, v)
	}
	w.WriteLong(n)
	return nil
}

// whole parses a JSON number that is a whole number within bits.
func whole(v value, bits int) (int64, error) {
	if v.kind != kNumber {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(v.s, 10, bits)
}

// float parses a JSON number, or the strings "NaN", "Infinity" and "-Infinity" that Avro's Java
// JSON encoder writes for values JSON numbers cannot hold.
func float(v value, bits int) (float64, bool) {
	switch v.kind {
	case kNumber:
		f, err := strconv.ParseFloat(v.s, bits)
		return f, err == nil
	case kString:
		switch v.s {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

// latin1 turns a JSON string of code points U+0000 to U+00FF into the bytes they stand for.
func latin1(v value) ([]byte, bool) {
	if v.kind != kString {
		return nil, false
	}
	b := make([]byte, 0, len(v.s))
	for _, r := range v.s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// encodeDefault writes a field's default, as hamba/avro parsed it from the schema: a union's
// default is a value of its first branch.
func encodeDefault(w *avro.Writer, s avro.Schema, def any, path string) error {
	s = deref(s)
	bad := func() error {
		return &Error{Field: path, Problem: fmt.Sprintf("the schema's default %v is not %s", def, describe(s))}
	}
	switch s := s.(type) {
	case *avro.UnionSchema:
		w.WriteLong(0)
		return encodeDefault(w, s.Types()[0], def, path)
	case *avro.RecordSchema:
		m, ok := def.(map[string]any)
		if !ok {
			return bad()
		}
		for _, f := range s.Fields() {
			fd, ok := m[f.Name()]
			if !ok {
				if !f.HasDefault() {
					return bad()
				}
				fd = f.Default()
			}
			if err := encodeDefault(w, f.Type(), fd, fieldPath(path, f.Name())); err != nil {
				return err
			}
		}
		return nil
	case *avro.EnumSchema:
		sym, _ := def.(string)
		i := slices.Index(s.Symbols(), sym)
		if i < 0 {
			return bad()
		}
		w.WriteInt(int32(i))
		return nil
	case *avro.ArraySchema:
		items, ok := def.([]any)
		if !ok {
			return bad()
		}
		if len(items) > 0 {
			w.WriteLong(int64(len(items)))
			for i, it := range items {
				if err := encodeDefault(w, s.Items(), it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		w.WriteLong(0)
		return nil
	case *avro.MapSchema:
		m, ok := def.(map[string]any)
		if !ok {
			return bad()
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 0 {
			w.WriteLong(int64(len(keys)))
			for _, k := range keys {
				w.WriteString(k)
				if err := encodeDefault(w, s.Values(), m[k], fmt.Sprintf("%s{%q}", path, k)); err != nil {
					return err
				}
			}
		}
		w.WriteLong(0)
		return nil
	case *avro.FixedSchema:
		b, ok := fixedBytes(def)
		if !ok || len(b) != s.Size() {
			return bad()
		}
		_, _ = w.Write(b)
		return nil
	}
	switch s.Type() {
	case avro.Null:
		// Nothing to write; hamba/avro holds a null default inside a record default as a
		// value of its own rather than nil.
	case avro.Boolean:
		b, ok := def.(bool)
		if !ok {
			return bad()
		}
		w.WriteBool(b)
	case avro.Int:
		i, ok := def.(int)
		if !ok {
			return bad()
		}
		w.WriteInt(int32(i))
	case avro.Long:
		i, ok := def.(int64)
		if !ok {
			return bad()
		}
		w.WriteLong(i)
	case avro.Float:
		f, ok := def.(float32)
		if !ok {
			return bad()
		}
		w.WriteFloat(f)
	case avro.Double:
		f, ok := def.(float64)
		if !ok {
			return bad()
		}
		w.WriteDouble(f)
	case avro.Bytes:
		b, ok := def.([]byte)
		if !ok {
			return bad()
		}
		w.WriteBytes(b)
	case avro.String:
		str, ok := def.(string)
		if !ok {
			return bad()
		}
		w.WriteString(str)
	default:
		return bad()
	}
	return nil
}

// fixedBytes returns the bytes of a fixed default, which hamba/avro holds as a byte array.
func fixedBytes(def any) ([]byte, bool) {
	switch d := def.(type) {
	case []byte:
		return d, true
	case string:
		return latin1(value{kind: kString, s: d})
	}
	rv := reflectBytes(def)
	return rv, rv != nil
}
