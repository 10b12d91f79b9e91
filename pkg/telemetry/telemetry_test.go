package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

func TestProviderFromEnvironment(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr error
	}{
		{"unset is off", nil, false, nil},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, nil},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, nil},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false, nil},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false, nil},
		{"grpc refused", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, telemetry.ErrConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tp, shutdown, err := telemetry.Provider(context.Background(), "svc", func(k string) string { return c.env[k] })
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			defer shutdown(context.Background())
			if (tp != nil) != c.on {
				t.Errorf("provider %v, want on=%v", tp, c.on)
			}
			if (telemetry.NewTracer(tp) != nil) != c.on {
				t.Errorf("tracer on=%v, want %v", telemetry.NewTracer(tp) != nil, c.on)
			}
		})
	}
}

// Off, a tracer's spans do nothing and nothing is written into records.
func TestNilTracerIsOff(t *testing.T) {
	t.Parallel()
	var tr *telemetry.Tracer
	rec := &kgo.Record{Topic: "t"}
	span := tr.StartSend(context.Background(), rec)
	telemetry.EndSend(span, rec, nil)
	if len(rec.Headers) != 0 || span.IsRecording() {
		t.Errorf("off tracer wrote headers %v, recording %v", rec.Headers, span.IsRecording())
	}
	if tp, _ := telemetry.Traceparent(context.Background()); tp != "" {
		t.Errorf("traceparent without a span: %q", tp)
	}
}

func TestLogsCarryTraceAndSpanIDs(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	ctx, span := telemetry.NewTracer(tp).Start(context.Background(), "op", 0)
	defer span.End()
	var b bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewTextHandler(&b, nil))).With("service", "s")
	log.InfoContext(ctx, "inside")
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	sc := span.SpanContext()
	if !strings.Contains(lines[0], "trace_id="+sc.TraceID().String()) || !strings.Contains(lines[0], "span_id="+sc.SpanID().String()) {
		t.Errorf("log in a span: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("log outside a span: %s", lines[1])
	}
}

// The trace context survives a round trip through the strings an outbox row stores.
func TestTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	ctx, span := telemetry.NewTracer(tp).Start(context.Background(), "op", 0)
	defer span.End()
	parent, state := telemetry.Traceparent(ctx)
	rec := &kgo.Record{Topic: "t", Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("stale")}}}
	send := telemetry.NewTracer(tp).StartSend(telemetry.WithTraceparent(context.Background(), parent, state), rec)
	defer send.End()
	if n := len(rec.Headers); n != 1 {
		t.Fatalf("headers %v: want the stale traceparent replaced", rec.Headers)
	}
	got := telemetry.FromRecord(context.Background(), rec)
	if sc := send.SpanContext(); !strings.Contains(string(rec.Headers[0].Value), sc.SpanID().String()) ||
		sc.TraceID() != span.SpanContext().TraceID() || got == nil {
		t.Errorf("record traceparent %s; send span %v of trace %v", rec.Headers[0].Value, sc.SpanID(), span.SpanContext().TraceID())
	}
}
