package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// EffectGrace is how long a declared effect may be pending, or not yet recorded, after the
// event that causes it before the comparison calls it missing: a mail server that is slow or
// down for a moment delays an email without losing it.
const EffectGrace = time.Minute

// Effect is a side effect outside Kafka that a service recorded for an event (an email sent),
// as services serve it on GET /effects?correlationId=.
type Effect struct {
	// Service is the service that performs it, Effect its name as the catalog declares it
	// ("welcome email").
	Service string `json:"service"`
	Effect  string `json:"effect"`
	// EventID is the ce_id of the event that caused it.
	EventID       string `json:"eventId"`
	CorrelationID string `json:"correlationId"`
	// Status is pending, sent or done (it happened: an email is sent, a change is done), or
	// failed (given up).
	Status string     `json:"status"`
	At     time.Time  `json:"at"`               // when it was recorded (queued)
	DoneAt *time.Time `json:"doneAt,omitempty"` // when it happened, once it did
	Error  string     `json:"error,omitempty"`  // the last error, for a failed or retried effect
}

// Effect statuses.
const (
	EffectPending = "pending"
	EffectSent    = "sent"
	EffectDone    = "done"
	EffectFailed  = "failed"
)

// When is when the effect happened, or was recorded while it has not.
func (e Effect) When() time.Time {
	if e.DoneAt != nil {
		return *e.DoneAt
	}
	return e.At
}

// FetchEffects asks a service's API (base, e.g. "http://127.0.0.1:8083") for the effects it
// recorded for operation correlationID.
func FetchEffects(ctx context.Context, hc *http.Client, base, correlationID string) ([]Effect, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/effects?correlationId="+url.QueryEscape(correlationID), nil)
	if err != nil {
		return nil, fmt.Errorf("effects from %s: %w", base, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("effects from %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("effects from %s: %s", base, resp.Status)
	}
	var effs []Effect
	if err := json.NewDecoder(resp.Body).Decode(&effs); err != nil {
		return nil, fmt.Errorf("effects from %s: %w", base, err)
	}
	return effs, nil
}

// AttachEffects records that service was asked, at asOf, for the operation's effects, and puts
// each effect under the event that caused it; an effect whose event is not in the trace is
// kept in Unplaced. Once a service was asked, a declared effect of it that is not among its
// effects is missing (after EffectGrace).
func (t *Trace) AttachEffects(service string, effs []Effect, asOf time.Time) {
	if t.EffectsAsOf == nil {
		t.EffectsAsOf = map[string]time.Time{}
	}
	t.EffectsAsOf[service] = asOf.UTC()
	for _, e := range effs {
		if n, ok := t.Event(e.EventID); ok {
			n.Effects = append(n.Effects, e)
			slices.SortStableFunc(n.Effects, func(a, b Effect) int { return a.When().Compare(b.When()) })
		} else {
			t.Unplaced = append(t.Unplaced, e)
		}
	}
}

// effectOf returns the effect named effect of service recorded under n.
func effectOf(n *Node, service, effect string) (Effect, bool) {
	for _, e := range n.Effects {
		if e.Service == service && e.Effect == effect {
			return e, true
		}
	}
	return Effect{}, false
}
