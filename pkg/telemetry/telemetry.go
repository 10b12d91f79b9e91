// Package telemetry is choreo's tracing: an OpenTelemetry tracer provider configured by the
// standard OTEL_* environment variables (OTLP over HTTP; off when no endpoint is set), W3C trace
// context carried in Kafka record headers and in outbox rows, the messaging attributes of the
// current semantic conventions, and a log handler that stamps records with trace_id and span_id.
//
// A nil *Tracer is tracing turned off: every method is then a no-op that allocates nothing, so
// the record path pays one nil check per record.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ErrConfig is wrapped by errors about OTEL_* settings choreo cannot honour.
var ErrConfig = errors.New("invalid telemetry configuration")

// Attribute keys choreo sets, besides the messaging ones of the semantic conventions.
const (
	// AttrHandler is the choreo handler that processed a record.
	AttrHandler = attribute.Key("choreo.handler")
	// AttrOutcome is what became of a consumed record: handled, duplicate, parked, ignored,
	// retried or rolled_back.
	AttrOutcome = attribute.Key("choreo.outcome")
	// AttrDuplicate marks the processing of a record the inbox had seen: no effect.
	AttrDuplicate = attribute.Key("choreo.duplicate")
	// AttrEventType is the record's ce_type.
	AttrEventType = attribute.Key("choreo.event.type")
	// AttrEmailKind is the kind of email delivered (welcome, farewell).
	AttrEmailKind = attribute.Key("choreo.email.kind")
	// AttrEmailMessageID is the email's Message-ID, its idempotency key.
	AttrEmailMessageID = attribute.Key("choreo.email.message_id")
	// AttrEmailTransport is how the email left: smtp or file.
	AttrEmailTransport = attribute.Key("choreo.email.transport")
)

// Enabled reports whether getenv configures trace export: an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), OTEL_TRACES_EXPORTER is not
// "none" and OTEL_SDK_DISABLED is not "true".
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Provider returns the tracer provider of service as getenv configures it, and the function
// that flushes and stops it. Without an endpoint (see Enabled) it returns a nil provider and a
// no-op shutdown: tracing is off. Spans are batched and exported with OTLP over HTTP
// (http/protobuf, the only protocol supported); OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, OTEL_TRACES_SAMPLER and OTEL_RESOURCE_ATTRIBUTES apply as the OpenTelemetry SDK
// defines them, and OTEL_SERVICE_NAME overrides service.
func Provider(ctx context.Context, service string, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return nil, noop, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := getenv(k); v != "" && v != "http/protobuf" {
			return nil, noop, fmt.Errorf("%s=%q: only http/protobuf is supported: %w", k, v, ErrConfig)
		}
	}
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		// The signal-less endpoint is a base URL: the traces path is appended (OTLP spec).
		endpoint = strings.TrimSuffix(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/") + "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, noop, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %s: %w", endpoint, err)
	}
	name := service
	if v := getenv("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	// Later sources win: OTEL_RESOURCE_ATTRIBUTES may add attributes, the service name stays.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithFromEnv(),
		resource.WithAttributes(semconv.ServiceName(name)))
	if err != nil {
		return nil, noop, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
