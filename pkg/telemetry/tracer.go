package telemetry

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of choreo's spans.
const ScopeName = "github.com/choreo-dev/choreo"

// Header names of the W3C trace context in Kafka records (and HTTP).
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Tracer starts choreo's spans for one service. A nil *Tracer is tracing off.
type Tracer struct {
	t trace.Tracer
}

// NewTracer returns the tracer of tp, or nil (off) when tp is nil.
func NewTracer(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(ScopeName)}
}

var (
	propagator = propagation.TraceContext{}
	noopSpan   = noop.Span{}
)

// Start starts a span named name as a child of ctx's span. Off, it returns ctx and a span that
// does nothing.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noopSpan
	}
	return t.t.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// End ends span, recording err (if any) as its status.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Headers is a propagation carrier over Kafka record headers; Set replaces a header already
// there, so a record re-published (from the outbox, the dead-letter topic) carries one
// traceparent, the newest.
type Headers struct{ Record *kgo.Record }

// Get returns the value of header key, "" when absent.
func (h Headers) Get(key string) string {
	for _, hd := range h.Record.Headers {
		if hd.Key == key {
			return string(hd.Value)
		}
	}
	return ""
}

// Set sets header key to value.
func (h Headers) Set(key, value string) {
	for i, hd := range h.Record.Headers {
		if hd.Key == key {
			h.Record.Headers[i].Value = []byte(value)
			return
		}
	}
	h.Record.Headers = append(h.Record.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys returns the header names.
func (h Headers) Keys() []string {
	ks := make([]string, len(h.Record.Headers))
	for i, hd := range h.Record.Headers {
		ks[i] = hd.Key
	}
	return ks
}

// FromRecord returns ctx carrying the remote span context of rec's traceparent header, ctx
// itself when rec has none.
func FromRecord(ctx context.Context, rec *kgo.Record) context.Context {
	return propagator.Extract(ctx, Headers{rec})
}

// Inject writes ctx's span context into rec's traceparent and tracestate headers. When ctx has
// a valid span context, the record's existing traceparent and tracestate are removed first: a
// re-published record (outbox, dead-letter park) copies the original headers, and the propagator
// writes tracestate only when the new context has one, so a stale tracestate of another trace
// would otherwise stay beside the new traceparent. Without one, rec is left as it is.
func Inject(ctx context.Context, rec *kgo.Record) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	rec.Headers = slices.DeleteFunc(rec.Headers, func(h kgo.RecordHeader) bool {
		return h.Key == HeaderTraceparent || h.Key == HeaderTracestate
	})
	propagator.Inject(ctx, Headers{rec})
}

// Traceparent returns the W3C traceparent and tracestate of ctx's span, "" when it has no valid
// span: what an outbox row stores so that the record it publishes continues the trace.
func Traceparent(ctx context.Context) (traceparent, tracestate string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c[HeaderTraceparent], c[HeaderTracestate]
}

// WithTraceparent returns ctx carrying the remote span context traceparent and tracestate
// describe; ctx itself when traceparent is empty or malformed.
func WithTraceparent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{HeaderTraceparent: traceparent, HeaderTracestate: tracestate})
}

// MessageAttrs returns the semantic-convention attributes of rec for the messaging operation op
// ("send" or "process"): system, destination, key, and message and conversation IDs from the
// CloudEvents headers ce_id and ce_correlationid. Partition and offset are added once known
// (see Delivered).
func MessageAttrs(rec *kgo.Record, op attribute.KeyValue) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 10)
	kvs = append(kvs, semconv.MessagingSystemKafka, op, semconv.MessagingOperationName(op.Value.AsString()),
		semconv.MessagingDestinationName(rec.Topic))
	if len(rec.Key) > 0 {
		kvs = append(kvs, semconv.MessagingKafkaMessageKey(string(rec.Key)))
	}
	for _, h := range rec.Headers {
		switch h.Key {
		case "ce_id":
			kvs = append(kvs, semconv.MessagingMessageID(string(h.Value)))
		case "ce_correlationid":
			kvs = append(kvs, semconv.MessagingMessageConversationID(string(h.Value)))
		case "ce_type":
			kvs = append(kvs, AttrEventType.String(string(h.Value)))
		}
	}
	return kvs
}

// Position returns the partition and offset attributes of rec.
func Position(rec *kgo.Record) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))),
		semconv.MessagingKafkaOffset(int(rec.Offset)),
	}
}

// StartSend starts the producer span of rec, a child of ctx's span, and writes its context into
// rec's headers so that the consumer's span continues the trace. End it with EndSend once the
// broker has answered.
func (t *Tracer) StartSend(ctx context.Context, rec *kgo.Record) trace.Span {
	if t == nil {
		return noopSpan
	}
	ctx, span := t.t.Start(ctx, "send "+rec.Topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(MessageAttrs(rec, semconv.MessagingOperationTypeSend)...))
	Inject(ctx, rec)
	return span
}

// EndSend ends a span of StartSend with the broker's answer: the record's position, or err.
func EndSend(span trace.Span, rec *kgo.Record, err error) {
	if err == nil && span.IsRecording() {
		span.SetAttributes(Position(rec)...)
	}
	End(span, err)
}

// StartProcess starts the consumer span of rec processed by group: a child of the producer span
// whose context rec's headers carry.
func (t *Tracer) StartProcess(ctx context.Context, rec *kgo.Record, group string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noopSpan
	}
	kvs := append(MessageAttrs(rec, semconv.MessagingOperationTypeProcess), Position(rec)...)
	kvs = append(kvs, semconv.MessagingConsumerGroupName(group))
	kvs = append(kvs, attrs...)
	return t.t.Start(FromRecord(ctx, rec), "process "+rec.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(kvs...))
}
