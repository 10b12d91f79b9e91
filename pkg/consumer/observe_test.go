package consumer_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// Observers and spans see each record's outcome once it is final: a batch rolled back by a
// failing handler reports nothing as handled, and each event ends up with exactly one span whose
// outcome is handled, agreeing with Stats.
func TestObserversAndSpansFollowOutcomes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var (
		mu  sync.Mutex
		obs = map[consumer.Outcome]int{}
	)
	var tries atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", failFirst(2, "flaky", &tries))},
		consumer.Retry(consumer.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond}),
		consumer.Tracing(telemetry.NewTracer(tp)),
		consumer.Observe(func(o consumer.Observation) {
			mu.Lock()
			defer mu.Unlock()
			obs[o.Outcome]++
			if o.Outcome == consumer.OutcomeHandled && (o.Handler != "create" || o.Took <= 0 || o.EventTime.IsZero() || o.ChainTime.IsZero()) {
				t.Errorf("observation %+v", o)
			}
		}))
	h.produce(t,
		h.accountCreated(t, 0, "id-1", "acc-1", "first"),
		h.accountCreated(t, 0, "id-2", "acc-1", "flaky"),
		h.accountCreated(t, 0, "id-3", "acc-1", "third"))
	st := n.waitStats(t, "3 handled", func(s consumer.Stats) bool { return s.Handled == 3 })
	mu.Lock()
	if obs[consumer.OutcomeHandled] != 3 || obs[consumer.OutcomeRetried] != int(st.Retried) || st.Retried != 2 {
		t.Errorf("observed %v, stats %+v: want 3 handled and the 2 retries", obs, st)
	}
	mu.Unlock()
	handled := map[string]int{}
	for _, s := range rec.Ended() {
		var id, outcome string
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "messaging.message.id":
				id = kv.Value.AsString()
			case telemetry.AttrOutcome:
				outcome = kv.Value.AsString()
			}
		}
		if !strings.HasPrefix(s.Name(), "process ") || !strings.HasSuffix(s.Name(), "accounts") || id == "" || outcome == "" {
			t.Errorf("span %q id %q outcome %q", s.Name(), id, outcome)
		}
		if outcome == "handled" {
			handled[id]++
		}
	}
	for _, id := range []string{"id-1", "id-2", "id-3"} {
		if handled[id] != 1 {
			t.Errorf("%s has %d handled spans, want 1 (all: %v)", id, handled[id], handled)
		}
	}
}
