package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/dlq"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// tracedStack starts a stack whose services record their spans in memory, each with its own
// service.name.
func tracedStack(t *testing.T) (*stack.Stack, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	cfg := stacktest.Config(t)
	providers := map[string]trace.TracerProvider{}
	for _, name := range stack.Services() {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(name))))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		providers[name] = tp
	}
	cfg.TracerProvider = func(name string) trace.TracerProvider { return providers[name] }
	return stacktest.StartConfig(t, cfg), rec
}

type span struct{ sdktrace.ReadOnlySpan }

func (s span) service() string {
	v, _ := s.Resource().Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func (s span) attr(k attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

func (s span) String() string {
	return fmt.Sprintf("%s %q (%s, parent %s)", s.service(), s.Name(), s.SpanContext().SpanID(), s.Parent().SpanID())
}

func header(r *kgo.Record, key string) string { return telemetry.Headers{Record: r}.Get(key) }

// spansOf returns the ended spans of trace id.
func spansOf(rec *tracetest.SpanRecorder, id trace.TraceID) []span {
	var out []span
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, span{s})
		}
	}
	return out
}

// find returns the spans of service named name among ss.
func find(ss []span, service, name string) []span {
	var out []span
	for _, s := range ss {
		if s.service() == service && s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// TestOneRegistrationIsOneTrace: POST /accounts, the AccountCreated it publishes, the User
// Service's handler, the UserCreated it emits, the Notification Service's handler and the email
// delivery are one trace, each span the child of the one before, with the messaging attributes
// of the semantic conventions. Redelivering the AccountCreated adds a span marked duplicate and
// no second UserCreated or email.
func TestOneRegistrationIsOneTrace(t *testing.T) {
	t.Parallel()
	s, rec := tracedStack(t)
	var created struct{ AccountID string }
	if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"traced","email":"traced@mail.com"}`, &created); code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	accounts, users := stacktest.Topic(t, s, "AccountCreated"), stacktest.Topic(t, s, "UserCreated")
	userGroup := s.ServiceConfig("user-service").Scoped("user-service")
	notifGroup := s.ServiceConfig("notification-service").Scoped("notification-service")

	// The chain, each step the only span of its kind in the trace and the child of the one before.
	steps := []struct {
		service, name string
		kind          trace.SpanKind
		attrs         map[attribute.Key]string
	}{
		{"account-service", "send " + accounts, trace.SpanKindProducer, map[attribute.Key]string{
			"messaging.system": "kafka", "messaging.operation.type": "send", "messaging.destination.name": accounts,
			"messaging.kafka.message.key": created.AccountID}},
		{"user-service", "process " + accounts, trace.SpanKindConsumer, map[attribute.Key]string{
			"messaging.system": "kafka", "messaging.operation.type": "process", "messaging.destination.name": accounts,
			"messaging.consumer.group.name": userGroup, "messaging.kafka.message.key": created.AccountID,
			telemetry.AttrHandler: "create-user", telemetry.AttrOutcome: "handled"}},
		{"user-service", "send " + users, trace.SpanKindProducer, map[attribute.Key]string{"messaging.destination.name": users}},
		{"notification-service", "process " + users, trace.SpanKindConsumer, map[attribute.Key]string{
			"messaging.consumer.group.name": notifGroup, telemetry.AttrHandler: "send-welcome-email", telemetry.AttrOutcome: "handled"}},
		{"notification-service", "send welcome email", trace.SpanKindClient, map[attribute.Key]string{
			telemetry.AttrEmailKind: "welcome", telemetry.AttrEmailTransport: "file"}},
	}
	var root span
	// A producer span ends in its record's acknowledgement callback, which may run after the next
	// service has already consumed the record: wait for every step's span, not only the last.
	stacktest.Eventually(t, 30*time.Second, func() error {
		for _, sp := range rec.Ended() {
			if s := (span{sp}); s.service() == "account-service" && s.Name() == "POST /accounts" {
				root = s
			}
		}
		if root.ReadOnlySpan == nil {
			return fmt.Errorf("no POST /accounts span")
		}
		ss := spansOf(rec, root.SpanContext().TraceID())
		for _, st := range steps {
			if len(find(ss, st.service, st.name)) == 0 {
				return fmt.Errorf("no span %s %q in the trace yet: %v", st.service, st.name, ss)
			}
		}
		return nil
	})
	if root.Parent().IsValid() || root.SpanKind() != trace.SpanKindServer || root.attr("http.response.status_code") != "201" {
		t.Errorf("root %v: kind %v, status %s", root, root.SpanKind(), root.attr("http.response.status_code"))
	}
	ss := spansOf(rec, root.SpanContext().TraceID())
	parent := root
	var sendAccounts, processAccounts span
	for i, st := range steps {
		got := find(ss, st.service, st.name)
		if len(got) != 1 {
			t.Fatalf("step %d: %d spans %s %q in the trace, want 1; trace: %v", i, len(got), st.service, st.name, ss)
		}
		sp := got[0]
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("step %d: %v is not the child of %v", i, sp, parent)
		}
		if sp.SpanKind() != st.kind {
			t.Errorf("step %d: %v is of kind %v, want %v", i, sp, sp.SpanKind(), st.kind)
		}
		for k, v := range st.attrs {
			if got := sp.attr(k); got != v {
				t.Errorf("step %d: %v has %s=%q, want %q", i, sp, k, got, v)
			}
		}
		switch i {
		case 0:
			sendAccounts = sp
		case 1:
			processAccounts = sp
		}
		parent = sp
	}
	// The message and conversation IDs are the event's ce_id and ce_correlationid; the producer
	// span knows where the record landed, and the consumer span read it from there.
	id, corr := sendAccounts.attr("messaging.message.id"), sendAccounts.attr("messaging.message.conversation_id")
	if id == "" || corr != id {
		t.Errorf("AccountCreated: message.id %q, conversation_id %q; want the ce_id, which starts the conversation", id, corr)
	}
	for _, k := range []attribute.Key{"messaging.message.id", "messaging.message.conversation_id", "messaging.destination.partition.id", "messaging.kafka.offset"} {
		if a, b := sendAccounts.attr(k), processAccounts.attr(k); a == "" || a != b {
			t.Errorf("%s: producer %q, consumer %q", k, a, b)
		}
	}
	if got := find(ss, "user-service", "send "+users)[0].attr("messaging.message.conversation_id"); got != corr {
		t.Errorf("UserCreated conversation_id %q, want %q", got, corr)
	}

	// Redelivery: the AccountCreated record, as the relay published it (traceparent included),
	// arrives again.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.ConsumeTopics(accounts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var published *kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for published == nil && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if header(r, envelope.HeaderID) == id {
				published = r
			}
		})
	}
	if published == nil {
		t.Fatalf("AccountCreated %s not found on %s", id, accounts)
	}
	if tp := header(published, "traceparent"); !strings.Contains(tp, sendAccounts.SpanContext().SpanID().String()) {
		t.Errorf("published traceparent %q, want the producer span %s", tp, sendAccounts.SpanContext().SpanID())
	}
	stacktest.Produce(t, s, &kgo.Record{Topic: published.Topic, Key: published.Key, Value: published.Value, Headers: published.Headers})
	var dup span
	stacktest.Eventually(t, 30*time.Second, func() error {
		for _, sp := range find(spansOf(rec, root.SpanContext().TraceID()), "user-service", "process "+accounts) {
			if sp.attr(telemetry.AttrDuplicate) == "true" {
				dup = sp
				return nil
			}
		}
		return fmt.Errorf("no duplicate span yet")
	})
	if dup.attr(telemetry.AttrOutcome) != "duplicate" || dup.Parent().SpanID() != sendAccounts.SpanContext().SpanID() {
		t.Errorf("duplicate span %v: outcome %q, want duplicate, child of %v", dup, dup.attr(telemetry.AttrOutcome), sendAccounts)
	}
	// Whatever the duplicate's transaction wrote to the outbox is published once Flush returns.
	fctx, fcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer fcancel()
	if err := s.Service("user-service").Relay.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	ss = spansOf(rec, root.SpanContext().TraceID())
	if n := len(find(ss, "user-service", "send "+users)); n != 1 {
		t.Errorf("%d UserCreated sends in the trace after the redelivery, want 1", n)
	}
	if n := len(find(ss, "notification-service", "send welcome email")); n != 1 {
		t.Errorf("%d email deliveries in the trace after the redelivery, want 1", n)
	}
}

// TestTraceSurvivesDeadLetterAndReplay: a record that cannot be decoded is parked with its trace
// context; the dead-letter record continues the trace, and replaying it keeps it.
func TestTraceSurvivesDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	s, rec := tracedStack(t)
	accounts := stacktest.Topic(t, s, "AccountCreated")
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	stacktest.Produce(t, s, &kgo.Record{Topic: accounts, Key: []byte("acc-garbage"), Value: []byte("not avro"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-" + spanID + "-01")}}})
	userGroup := s.ServiceConfig("user-service").Scoped("user-service")
	parked := readDeadLetters(t, s, "user-service", "user-service").wait(t, "acc-garbage")[0]
	tid, _ := trace.TraceIDFromHex(traceID)
	var process, send span
	stacktest.Eventually(t, 20*time.Second, func() error {
		ss := spansOf(rec, tid)
		p, d := find(ss, "user-service", "process "+accounts), find(ss, "user-service", "send "+deadletter.Topic(userGroup))
		if len(p) != 1 || len(d) != 1 {
			return fmt.Errorf("spans of the trace: %v", ss)
		}
		process, send = p[0], d[0]
		return nil
	})
	if process.Parent().SpanID().String() != spanID || process.attr(telemetry.AttrOutcome) != "parked" {
		t.Errorf("process span %v, outcome %q: want the child of %s, parked", process, process.attr(telemetry.AttrOutcome), spanID)
	}
	if send.Parent().SpanID() != process.SpanContext().SpanID() {
		t.Errorf("dead-letter send %v is not the child of %v", send, process)
	}
	tp := header(parked, "traceparent")
	if !strings.HasPrefix(tp, "00-"+traceID+"-"+send.SpanContext().SpanID().String()) {
		t.Errorf("parked record's traceparent %q, want trace %s from span %s", tp, traceID, send.SpanContext().SpanID())
	}
	replay, err := dlq.Parse(parked).ReplayRecord()
	if err != nil {
		t.Fatal(err)
	}
	if got := header(replay, "traceparent"); got != tp {
		t.Errorf("replayed record's traceparent %q, want %q", got, tp)
	}
}
