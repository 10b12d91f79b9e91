package telemetry_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// TestInjectReplacesTheWholeTraceContext: a re-published record carries the headers of the
// original, tracestate included; injecting a new span context without a tracestate must not
// leave the old trace's tracestate beside the new traceparent.
func TestInjectReplacesTheWholeTraceContext(t *testing.T) {
	const (
		oldParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		oldState  = "vendor=old"
	)
	headers := func(rec *kgo.Record, key string) []string {
		var vs []string
		for _, h := range rec.Headers {
			if h.Key == key {
				vs = append(vs, string(h.Value))
			}
		}
		return vs
	}
	parked := func() *kgo.Record {
		return &kgo.Record{Headers: []kgo.RecordHeader{
			{Key: "ce_id", Value: []byte("1")},
			{Key: telemetry.HeaderTraceparent, Value: []byte(oldParent)},
			{Key: telemetry.HeaderTracestate, Value: []byte(oldState)},
		}}
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	wantParent := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"

	rec := parked()
	telemetry.Inject(trace.ContextWithSpanContext(context.Background(), sc), rec)
	if got := headers(rec, telemetry.HeaderTraceparent); len(got) != 1 || got[0] != wantParent {
		t.Errorf("traceparent headers %q, want only %q", got, wantParent)
	}
	if got := headers(rec, telemetry.HeaderTracestate); len(got) != 0 {
		t.Errorf("tracestate headers %q, want none: the new context has no tracestate", got)
	}
	if got := headers(rec, "ce_id"); len(got) != 1 {
		t.Errorf("ce_id headers %q, want the original one kept", got)
	}

	ts, err := trace.ParseTraceState("vendor=new")
	if err != nil {
		t.Fatal(err)
	}
	rec = parked()
	telemetry.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(ts)), rec)
	if got := headers(rec, telemetry.HeaderTracestate); len(got) != 1 || got[0] != "vendor=new" {
		t.Errorf("tracestate headers %q, want only the new context's", got)
	}

	// No span context: nothing to write, and the record keeps its own (consistent) pair.
	rec = parked()
	telemetry.Inject(context.Background(), rec)
	if p, s := headers(rec, telemetry.HeaderTraceparent), headers(rec, telemetry.HeaderTracestate); len(p) != 1 || p[0] != oldParent || len(s) != 1 || s[0] != oldState {
		t.Errorf("without a span context: traceparent %q, tracestate %q; want the original pair", p, s)
	}
}
