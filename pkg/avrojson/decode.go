package avrojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// errBinary: the Avro binary does not hold a value of the schema.
var errBinary = errors.New("invalid Avro binary")

// FromBinary returns the Avro JSON encoding of body, the Avro binary encoding of a value of
// schema. Record fields are written in schema order, map entries in the order of the binary.
// A string that is not valid UTF-8 is refused: JSON cannot carry it unchanged.
func FromBinary(schema avro.Schema, body []byte) ([]byte, error) {
	r := &binReader{Reader: avro.NewReader(bytes.NewReader(body), len(body)+1), items: len(body) + maxZeroWidthItems}
	var out bytes.Buffer
	if err := decode(r, schema, &out, ""); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%w: %w", errBinary, r.Error)
	}
	// One more byte must not be there: a body longer than its value is not that value.
	var extra [1]byte
	if r.Read(extra[:]); r.Error == nil {
		return nil, fmt.Errorf("%w: trailing bytes after the value", errBinary)
	}
	return out.Bytes(), nil
}

// maxZeroWidthItems bounds the array and map items that take no bytes (nulls, empty records)
// a body may hold beyond one item per byte: a block count costs a few bytes whatever its size,
// so without a bound a small body could make the decoder loop for ever.
const maxZeroWidthItems = 1 << 16

// binReader is an Avro reader with a budget of array and map items left to read. Every item
// that takes bytes uses at least one, so a body of n bytes holds at most n of those.
type binReader struct {
	*avro.Reader
	items int
}

func decode(r *binReader, s avro.Schema, out *bytes.Buffer, path string) error {
	if r.Error != nil {
		return fmt.Errorf("%w: %w", errBinary, r.Error)
	}
	s = deref(s)
	switch s := s.(type) {
	case *avro.RecordSchema:
		out.WriteByte('{')
		for i, f := range s.Fields() {
			if i > 0 {
				out.WriteByte(',')
			}
			writeString(out, f.Name())
			out.WriteByte(':')
			if err := decode(r, f.Type(), out, fieldPath(path, f.Name())); err != nil {
				return err
			}
		}
		out.WriteByte('}')
		return nil
	case *avro.EnumSchema:
		i := r.ReadInt()
		sym, ok := s.Symbol(int(i))
		if !ok {
			return fmt.Errorf("%w: %s: enum index %d out of range", errBinary, path, i)
		}
		writeString(out, sym)
		return nil
	case *avro.ArraySchema:
		out.WriteByte('[')
		n := 0
		err := blocks(r, path, func() error {
			if n > 0 {
				out.WriteByte(',')
			}
			n++
			return decode(r, s.Items(), out, fmt.Sprintf("%s[%d]", path, n-1))
		})
		out.WriteByte(']')
		return err
	case *avro.MapSchema:
		out.WriteByte('{')
		n := 0
		err := blocks(r, path, func() error {
			if n > 0 {
				out.WriteByte(',')
			}
			n++
			k := r.ReadString()
			if !utf8.ValidString(k) {
				return fmt.Errorf("%w: %s: a map key is not valid UTF-8", errBinary, path)
			}
			writeString(out, k)
			out.WriteByte(':')
			return decode(r, s.Values(), out, fmt.Sprintf("%s{%q}", path, k))
		})
		out.WriteByte('}')
		return err
	case *avro.FixedSchema:
		b := make([]byte, s.Size())
		r.Read(b)
		writeLatin1(out, b)
		return nil
	case *avro.UnionSchema:
		i := r.ReadLong()
		if i < 0 || i >= int64(len(s.Types())) {
			return fmt.Errorf("%w: %s: union index %d out of range", errBinary, path, i)
		}
		b := s.Types()[i]
		if b.Type() == avro.Null {
			out.WriteString("null")
			return nil
		}
		out.WriteByte('{')
		writeString(out, branchName(b))
		out.WriteByte(':')
		if err := decode(r, b, out, path); err != nil {
			return err
		}
		out.WriteByte('}')
		return nil
	}
	switch s.Type() {
	case avro.Null:
		out.WriteString("null")
	case avro.Boolean:
		out.WriteString(strconv.FormatBool(r.ReadBool()))
	case avro.Int:
		out.WriteString(strconv.FormatInt(int64(r.ReadInt()), 10))
	case avro.Long:
		out.WriteString(strconv.FormatInt(r.ReadLong(), 10))
	case avro.Float:
		writeFloat(out, float64(r.ReadFloat()), 32)
	case avro.Double:
		writeFloat(out, r.ReadDouble(), 64)
	case avro.Bytes:
		writeLatin1(out, r.ReadBytes())
	case avro.String:
		str := r.ReadString()
		if !utf8.ValidString(str) {
			return fmt.Errorf("%w: %s: the string is not valid UTF-8", errBinary, path)
		}
		writeString(out, str)
	default:
		return fmt.Errorf("%s: the schema's type %s is not supported", path, s.Type())
	}
	if r.Error != nil {
		return fmt.Errorf("%w: %s: %w", errBinary, path, r.Error)
	}
	return nil
}

// blocks reads the blocks of an array or map, calling item once per item.
func blocks(r *binReader, path string, item func() error) error {
	for {
		n, _ := r.ReadBlockHeader()
		if r.Error != nil {
			return fmt.Errorf("%w: %s: %w", errBinary, path, r.Error)
		}
		if n == 0 {
			return nil
		}
		if n < 0 || n > int64(r.items) {
			return fmt.Errorf("%w: %s: a block of %d items is more than the body can hold", errBinary, path, n)
		}
		r.items -= int(n)
		for range n {
			if err := item(); err != nil {
				return err
			}
			if r.Error != nil {
				return fmt.Errorf("%w: %s: %w", errBinary, path, r.Error)
			}
		}
	}
}

func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	out.Truncate(out.Len() - 1) // Encode's newline
}

func writeLatin1(out *bytes.Buffer, b []byte) {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	writeString(out, string(rs))
}

// writeFloat writes the shortest number that parses back to f, or the strings Avro's Java JSON
// encoder writes for values JSON numbers cannot hold.
func writeFloat(out *bytes.Buffer, f float64, bits int) {
	switch {
	case math.IsNaN(f):
		out.WriteString(`"NaN"`)
	case math.IsInf(f, 1):
		out.WriteString(`"Infinity"`)
	case math.IsInf(f, -1):
		out.WriteString(`"-Infinity"`)
	default:
		out.WriteString(strconv.FormatFloat(f, 'g', -1, bits))
	}
}

// reflectBytes returns the bytes of a byte array, as hamba/avro holds a fixed default; nil for
// anything else.
func reflectBytes(v any) []byte {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Array || rv.Type().Elem().Kind() != reflect.Uint8 {
		return nil
	}
	b := make([]byte, rv.Len())
	reflect.Copy(reflect.ValueOf(b), rv)
	return b
}
