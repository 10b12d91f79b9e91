package trace_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/trace"
)

// TestEffects: the welcome email that ends the registration chain, as the notification service
// reports it, against the catalog's declaration: done, failed, pending or never recorded, each
// inside and beyond the grace period.
func TestEffects(t *testing.T) {
	t.Parallel()
	cat := loadCatalog(t)
	created := t0.Add(userCreated.at) // when UserCreated happened
	email := func(status string, at time.Duration, errText string) trace.Effect {
		e := trace.Effect{Service: "notification-service", Effect: "welcome email", EventID: "u1", CorrelationID: "a1",
			Status: status, At: created.Add(at), Error: errText}
		if status == trace.EffectSent {
			done := created.Add(at + 40*time.Millisecond)
			e.DoneAt = &done
		}
		return e
	}
	for _, tc := range []struct {
		name      string
		effects   []trace.Effect
		asked     bool
		asOf      time.Duration // after UserCreated
		status    trace.Status
		deviation string // in the only deviation; none when empty
		leaf      string
	}{
		{name: "not asked", asOf: time.Hour, status: trace.StatusComplete, leaf: "(effect: welcome email by notification-service — not an event, not observable in Kafka)"},
		{name: "sent", asked: true, effects: []trace.Effect{email("sent", 2*time.Millisecond, "")}, asOf: time.Hour,
			status: trace.StatusComplete, leaf: "(effect: welcome email by notification-service  SENT  (+45ms))"},
		{name: "failed", asked: true, effects: []trace.Effect{email("failed", time.Millisecond, "550 no such mailbox")}, asOf: time.Second,
			status: trace.StatusDeviating, deviation: "welcome email by notification-service failed: 550 no such mailbox", leaf: "FAILED"},
		{name: "pending within the grace", asked: true, effects: []trace.Effect{email("pending", time.Millisecond, "")}, asOf: trace.EffectGrace / 2,
			status: trace.StatusComplete, leaf: "PENDING"},
		{name: "pending too long", asked: true, effects: []trace.Effect{email("pending", time.Millisecond, "421 try later")}, asOf: 3 * trace.EffectGrace,
			status: trace.StatusDeviating, deviation: "welcome email by notification-service still pending 3m0s after it was recorded (last error: 421 try later)", leaf: "PENDING"},
		{name: "not recorded within the grace", asked: true, asOf: trace.EffectGrace / 2, status: trace.StatusComplete, leaf: "NOT RECORDED by notification-service"},
		{name: "never happened", asked: true, asOf: 2 * trace.EffectGrace, status: trace.StatusDeviating,
			deviation: "the chain's effect welcome email never happened: notification-service has no record of it 2m0s after UserCreated", leaf: "NOT RECORDED"},
		{name: "another operation's email does not count", asked: true, asOf: 2 * trace.EffectGrace,
			effects: []trace.Effect{func() trace.Effect { e := email("sent", 0, ""); e.EventID = "other"; return e }()},
			status:  trace.StatusDeviating, deviation: "never happened", leaf: "NOT RECORDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := build("a1", accountCreated, userCreated)
			if tc.asked {
				tr.AttachEffects("notification-service", tc.effects, created.Add(tc.asOf))
			}
			c := tr.Compare(cat)
			if got := tr.Status(c); got != tc.status {
				t.Errorf("status %s, want %s (deviations %v)", got, tc.status, c.Deviations)
			}
			switch {
			case tc.deviation == "" && len(c.Deviations) != 0:
				t.Errorf("deviations %v, want none", c.Deviations)
			case tc.deviation != "" && (len(c.Deviations) != 1 || !strings.Contains(c.Deviations[0].Message, tc.deviation) || c.Deviations[0].EventID != "u1"):
				t.Errorf("deviations %+v, want one about u1 saying %q", c.Deviations, tc.deviation)
			}
			var b bytes.Buffer
			if err := tr.WriteText(&b, c); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "   └─ ") || !strings.Contains(b.String(), tc.leaf) {
				t.Errorf("text lacks the effect leaf %q:\n%s", tc.leaf, b.String())
			}
		})
	}
}

// TestDuration: from the first event to the last thing that happened, an email included.
func TestDuration(t *testing.T) {
	t.Parallel()
	tr := build("a1", accountCreated, userCreated)
	if d := tr.Duration(); d != 3*time.Millisecond {
		t.Errorf("duration %s, want 3ms", d)
	}
	done := t0.Add(50 * time.Millisecond)
	tr.AttachEffects("notification-service", []trace.Effect{{Service: "notification-service", Effect: "welcome email", EventID: "u1",
		Status: trace.EffectSent, At: t0.Add(4 * time.Millisecond), DoneAt: &done}}, t0.Add(time.Second))
	if d := tr.Duration(); d != 50*time.Millisecond {
		t.Errorf("duration with the email %s, want 50ms", d)
	}
}
