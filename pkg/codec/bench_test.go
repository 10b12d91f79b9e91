package codec_test

import (
	"context"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/event"
)

// The Bare benchmarks do what the codec does minus framing and type lookup: hamba/avro alone with
// the same schema. The difference is the codec's overhead.

func benchEvent() *event.AccountCreated {
	return &event.AccountCreated{
		AccountID: "0b0f6a4e-3c2d-4e1f-9a8b-7c6d5e4f3a2b",
		Username:  "grace",
		Email:     "grace@example.com",
		CreatedAt: time.Date(2024, 12, 9, 10, 11, 12, 345_000_000, time.UTC),
	}
}

func BenchmarkMarshal(b *testing.B) {
	e := newEnv(b)
	ev := benchEvent()
	b.Run("AccountCreated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.codec.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBareAvroMarshal(b *testing.B) {
	ev := benchEvent()
	schema := ev.Schema()
	b.Run("AccountCreated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := avro.Marshal(schema, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshal(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	data, err := e.codec.Marshal(benchEvent())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("AccountCreated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := e.codec.Unmarshal(ctx, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBareAvroUnmarshal(b *testing.B) {
	ev := benchEvent()
	schema := ev.Schema()
	body, err := avro.Marshal(schema, ev)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("AccountCreated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// A new value each time, as the codec returns a new event.
			var out event.AccountCreated
			if err := avro.Unmarshal(schema, body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
