package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestHeaderEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hs   []kgo.RecordHeader
	}{
		{"none", nil},
		{"one", []kgo.RecordHeader{{Key: "ce_id", Value: []byte("abc")}}},
		{"empty value", []kgo.RecordHeader{{Key: "k", Value: []byte{}}}},
		{"empty key", []kgo.RecordHeader{{Key: "", Value: []byte("v")}}},
		{"binary value", []kgo.RecordHeader{{Key: "bin", Value: []byte{0, 0xff, 0x80, 0x7f, 0, 1}}}},
		{"binary key", []kgo.RecordHeader{{Key: "\x00\xff\x80", Value: []byte("v")}}},
		{"long value (multi-byte length)", []kgo.RecordHeader{{Key: "long", Value: bytes.Repeat([]byte{0x80}, 70000)}}},
		{"repeated keys keep their order", []kgo.RecordHeader{
			{Key: "k", Value: []byte("1")}, {Key: "other", Value: []byte{}}, {Key: "k", Value: []byte("2")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeHeaders(encodeHeaders(tc.hs))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(got) != len(tc.hs) {
				t.Fatalf("%d headers back, want %d", len(got), len(tc.hs))
			}
			for i, h := range tc.hs {
				if got[i].Key != h.Key || !bytes.Equal(got[i].Value, h.Value) {
					t.Errorf("header %d = %q:%x, want %q:%x", i, got[i].Key, got[i].Value, h.Key, h.Value)
				}
				if h.Value != nil && got[i].Value == nil {
					t.Errorf("header %d: empty value came back null", i)
				}
			}
		})
	}
}

func TestDecodeCorruptHeaders(t *testing.T) {
	t.Parallel()
	valid := encodeHeaders([]kgo.RecordHeader{{Key: "key", Value: []byte("value")}})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"key length past the end", []byte{10, 'a', 'b'}},
		{"key without a value", encodeHeaders([]kgo.RecordHeader{{Key: "k"}})[:2]},
		{"value length past the end", bytes.Clone(valid[:len(valid)-1])},
		{"truncated length varint", []byte{0x80}},
		{"length overflowing uint64", bytes.Repeat([]byte{0xff}, 11)},
		{"huge length", binary.AppendUvarint(nil, 1<<62)},
		{"trailing byte", append(bytes.Clone(valid), 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs, err := decodeHeaders(tc.b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode %x = %v, %v; want ErrCorrupt", tc.b, hs, err)
			}
			if !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error %q does not say what is wrong", err)
			}
		})
	}
}
