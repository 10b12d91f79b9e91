package envelope_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
)

// The envelope is written for every event emitted and read for every record consumed.

func benchEnvelope() envelope.Envelope {
	start := time.Date(2026, 3, 14, 15, 9, 26, 535_897_932, time.UTC)
	return envelope.Envelope{
		ID: "0b0f6a4e-3c2d-4e1f-9a8b-7c6d5e4f3a2b", Type: "UserCreated", Source: "/user-service", Time: start.Add(time.Millisecond),
		CorrelationID: "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", CausationID: "9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9", ChainTime: start,
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	env := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		_ = env.AppendHeaders(make([]kgo.RecordHeader, 0, 9))
	}
}

func BenchmarkFromHeaders(b *testing.B) {
	hs := benchEnvelope().AppendHeaders(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.FromHeaders(hs); err != nil {
			b.Fatal(err)
		}
	}
}
