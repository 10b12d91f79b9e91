package trace

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Verdict is a comparison with the catalog in the form tools read (`choreo trace -format json`,
// the explorer's API): the outcome, the chains followed and the deviations.
type Verdict struct {
	// Matches says whether the operation followed a catalog chain to its end without deviations.
	Matches bool `json:"matches"`
	// Status is the outcome in a word: complete, deviating or parked.
	Status     Status       `json:"status"`
	Chains     []ChainState `json:"chains"`
	Deviations []Deviation  `json:"deviations"`
	// Expected are the steps the catalog adds after the observed events: the effect that ends
	// each chain followed, or the step an operation stopped before.
	Expected []Expected `json:"expected"`
}

// ChainState is a catalog chain the operation followed, to its end or as far as it got.
type ChainState struct {
	Name     string   `json:"name"`
	Complete bool     `json:"complete"`
	Events   []string `json:"events"` // ce_ids of the chain's events, in chain order
	// Next is the step after the observed events: the effect of a complete chain, the missing
	// step of an incomplete one.
	Next string `json:"next,omitempty"`
}

// Expected is what the catalog expects after an observed event (After, a ce_id): the effect
// that ends a chain (Effect) or the event of the step an operation stopped before (Emits).
type Expected struct {
	After   string `json:"after"`
	Chain   string `json:"chain"`
	Service string `json:"service"`
	Effect  string `json:"effect,omitempty"`
	Emits   string `json:"emits,omitempty"`
	// Asked says whether Service was asked for the operation's effects (AttachEffects);
	// Observed is the effect it recorded, if any.
	Asked    bool    `json:"asked"`
	Observed *Effect `json:"observed,omitempty"`
}

// Verdict returns the trace's comparison c in the form tools read. Its slices are never nil.
func (t *Trace) Verdict(c Comparison) Verdict {
	v := Verdict{
		Status: t.Status(c), Chains: []ChainState{}, Deviations: slices.Clone(c.Deviations), Expected: []Expected{},
		Matches: len(c.Complete()) > 0 && len(c.Deviations) == 0,
	}
	if v.Deviations == nil {
		v.Deviations = []Deviation{}
	}
	for _, m := range c.Matches {
		ch := ChainState{Name: m.Chain.Name, Complete: m.Complete, Events: []string{}}
		for _, n := range m.Path {
			ch.Events = append(ch.Events, n.ID)
		}
		if st, ok := m.Next(); ok {
			ch.Next = st.Service + " emits " + st.Emits
			if st.Effect != "" {
				ch.Next = st.Service + " effect: " + st.Effect
			}
		}
		v.Chains = append(v.Chains, ch)
	}
	leaves := t.leaves(c)
	for _, n := range t.Events() {
		for _, l := range leaves[n] {
			v.Expected = append(v.Expected, Expected{After: n.ID, Chain: l.chain, Service: l.service,
				Effect: l.effect, Emits: l.emits, Asked: l.asked, Observed: l.observed})
		}
	}
	return v
}

// Summary is one operation in a line: what `choreo trace -recent` lists.
type Summary struct {
	CorrelationID string    `json:"correlationId"`
	First         string    `json:"first"` // the type of its first event
	Start         time.Time `json:"start"`
	DurationMS    float64   `json:"durationMs"`
	Events        int       `json:"events"` // events, parked records not counted
	Status        Status    `json:"status"`
	Chains        []string  `json:"chains"` // the chains followed to the end
	Deviations    []string  `json:"deviations"`
}

// Summary returns the trace in a line, given its comparison c. Its slices are never nil.
func (t *Trace) Summary(c Comparison) Summary {
	s := Summary{CorrelationID: t.CorrelationID, Status: t.Status(c), Chains: []string{}, Deviations: []string{},
		DurationMS: float64(t.Duration().Microseconds()) / 1000}
	if root := t.Root(); root != nil {
		s.First, s.Start = root.Type, root.When()
	}
	for _, n := range t.Events() {
		if n.Parked == nil {
			s.Events++
		}
	}
	s.Chains = append(s.Chains, c.Complete()...)
	for _, d := range c.Deviations {
		s.Deviations = append(s.Deviations, d.Message)
	}
	return s
}

// AskEffects asks each service of urls (service name -> base URL of its API) for the operation's
// effects (FetchEffects) and attaches them (AttachEffects), in service name order. A service that
// does not answer leaves its effects unobserved: its error is returned under its name, and the
// trace is still worth having.
func (t *Trace) AskEffects(ctx context.Context, hc *http.Client, urls map[string]string) map[string]error {
	errs := map[string]error{}
	for _, svc := range slices.Sorted(maps.Keys(urls)) {
		effs, err := FetchEffects(ctx, hc, urls[svc], t.CorrelationID)
		if err != nil {
			errs[svc] = err
			continue
		}
		t.AttachEffects(svc, effs, time.Now())
	}
	return errs
}
