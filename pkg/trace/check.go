package trace

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/catalog"
)

// Deviation is one way in which the observed operation differs from the catalog, in words.
type Deviation struct {
	// EventID is the ce_id of the event the deviation is about; empty when it is about the whole.
	EventID string `json:"eventId,omitempty"`
	Message string `json:"message"`
}

func (d Deviation) String() string { return d.Message }

// Match is a catalog chain that the observed operation follows: the chain's first event is a
// root of the trace and each later event of the chain was caused by the one before.
type Match struct {
	Chain catalog.Chain
	// Path holds the observed events of the chain's steps that emit, in chain order. When the
	// chain is not Complete it holds the steps observed before the chain stopped.
	Path     []*Node
	Complete bool
}

// Next returns the first step of the chain that was not observed: the effect that ends a
// complete chain (ok false when it ends in an event), or the step an incomplete chain stopped
// before.
func (m Match) Next() (catalog.Step, bool) {
	if len(m.Path) < len(m.Chain.Steps) {
		return m.Chain.Steps[len(m.Path)], true
	}
	return catalog.Step{}, false
}

// Comparison is a trace compared with the catalog.
type Comparison struct {
	// Matches are the catalog chains the operation followed to the end or, when it followed
	// none to the end, those it followed furthest (not Complete).
	Matches []Match
	// Deviations are in the order of the trace's events, then about the chains.
	Deviations []Deviation
}

// Complete returns the names of the chains followed to the end.
func (c Comparison) Complete() []string {
	var names []string
	for _, m := range c.Matches {
		if m.Complete {
			names = append(names, m.Chain.Name)
		}
	}
	return names
}

// Check compares the observed operation with the catalog and returns the deviations; none
// means the operation followed the catalog (see Compare for the chains it followed).
func (t *Trace) Check(cat *catalog.Catalog) []Deviation { return t.Compare(cat).Deviations }

// Compare compares the observed operation with the catalog:
//   - every event is in the catalog and was emitted by the service the catalog names (its
//     ce_source);
//   - every event caused by another was emitted by a service that the catalog says consumes
//     the cause, and every cause is in the trace;
//   - some catalog chain starts with the first event, and the events follow one or more
//     chains to their last event; an operation that stopped halfway says where and what the
//     catalog expects next;
//   - no record was parked on a dead-letter topic (unless its service handled it after all).
func (t *Trace) Compare(cat *catalog.Catalog) Comparison {
	var c Comparison
	add := func(n *Node, format string, args ...any) {
		d := Deviation{Message: fmt.Sprintf(format, args...)}
		if n != nil {
			d.EventID = n.ID
		}
		c.Deviations = append(c.Deviations, d)
	}
	var walk func(parent *Node, ns []*Node)
	walk = func(parent *Node, ns []*Node) {
		for _, n := range ns {
			t.checkNode(cat, parent, n, add)
			walk(n, n.Children)
		}
	}
	walk(nil, t.Roots)

	var starts []*Node
	for _, r := range t.Roots {
		if r.Parked == nil {
			starts = append(starts, r)
		}
	}
	if len(starts) > 1 {
		var ids []string
		for _, r := range starts {
			ids = append(ids, fmt.Sprintf("%s ce_id=%s", r.Type, r.ID))
		}
		add(nil, "the operation has %d first events (%s); an operation starts with one event and each later one names its cause", len(starts), strings.Join(ids, ", "))
	}

	var candidates []Match
	for _, ch := range cat.Chains {
		var emits []catalog.Step
		for _, st := range ch.Steps {
			if st.Emits != "" {
				emits = append(emits, st)
			}
		}
		if len(emits) == 0 {
			continue
		}
		for _, r := range starts {
			if r.Type == emits[0].Emits {
				path := follow(r, emits[1:])
				candidates = append(candidates, Match{Chain: ch, Path: path, Complete: len(path) == len(emits)})
			}
		}
	}
	if len(candidates) == 0 {
		for _, r := range starts {
			if _, ok := cat.Event(r.Type); ok {
				add(r, "no catalog chain starts with %s", r.Type)
			}
		}
		return c
	}
	for _, m := range candidates {
		if m.Complete {
			c.Matches = append(c.Matches, m)
		}
	}
	if len(c.Matches) == 0 {
		longest := 0
		for _, m := range candidates {
			longest = max(longest, len(m.Path))
		}
		for _, m := range candidates {
			if len(m.Path) == longest {
				c.Matches = append(c.Matches, m)
			}
		}
		stopped(c.Matches, add)
	}
	t.checkEffects(c.Matches, add)
	onPath := map[*Node]bool{}
	var names []string
	for _, m := range c.Matches {
		for _, n := range m.Path {
			onPath[n] = true
		}
		names = append(names, fmt.Sprintf("%q", m.Chain.Name))
	}
	for _, n := range t.Events() {
		if n.Parked == nil && !onPath[n] && !slices.Contains(starts, n) {
			add(n, "%s (by %s) is not a step of catalog chain %s", n.Type, by(n), strings.Join(names, " or "))
		}
	}
	return c
}

// checkNode adds the deviations of one node, given its parent (nil for a root).
func (t *Trace) checkNode(cat *catalog.Catalog, parent, n *Node, add func(*Node, string, ...any)) {
	if n.Parked != nil {
		if n.Parked.HandledLater {
			return
		}
		p := n.Parked
		svc := p.Group
		for _, s := range cat.Services {
			if s.Group != "" && (p.Group == s.Group || strings.HasSuffix(p.Group, "."+s.Group)) {
				svc = s.Name
			}
		}
		var how []string
		if p.Handler != "" {
			how = append(how, "handler "+p.Handler)
		}
		if p.Reason != "" && p.Reason != "handler" {
			how = append(how, "reason "+p.Reason)
		}
		if p.Class != "" {
			how = append(how, p.Class)
		}
		if p.Attempts > 0 {
			how = append(how, plural(p.Attempts, "attempt"))
		}
		detail := ""
		if len(how) > 0 {
			detail = " (" + strings.Join(how, ", ") + ")"
		}
		add(n, "%s parked %s%s: %s", svc, orUnknown(n.Type), detail, orUnknown(oneLine(p.Error)))
		return
	}
	ev, known := cat.Event(n.Type)
	switch {
	case n.Type == "":
		add(n, "the event ce_id=%s at %s/%d@%d has no type (no ce_type header and no decodable value)", n.ID, n.Topic, n.Partition, n.Offset)
	case !known:
		add(n, "%s is not in the event catalog", n.Type)
	case n.Source == "":
		add(n, "%s has no ce_source, the catalog says %s emits it", n.Type, ev.Producer)
	case n.Service() != ev.Producer:
		add(n, "%s was emitted by %s, the catalog says %s", n.Type, n.Source, ev.Producer)
	}
	if parent == nil {
		if n.CausationID != "" && n.CausationID != n.ID {
			add(n, "%s was caused by event %s, which is not in the trace", orUnknown(n.Type), n.CausationID)
		}
		return
	}
	// The service that reacted to the parent: the event's ce_source, or the catalog's producer.
	svcName := n.Service()
	if svcName == "" && known {
		svcName = ev.Producer
	}
	svc, ok := cat.Service(svcName)
	if !ok || parent.Type == "" {
		return // an unknown producer is reported above
	}
	if !slices.Contains(svc.Consumes, parent.Type) {
		add(n, "%s (by %s) was caused by %s, but the catalog does not have %s consume %s",
			orUnknown(n.Type), svc.Name, parent.Type, svc.Name, parent.Type)
	}
}

// follow returns the longest path from n down its children whose events are the types of
// steps in order, n first.
func follow(n *Node, steps []catalog.Step) []*Node {
	best := []*Node{n}
	if len(steps) == 0 {
		return best
	}
	for _, c := range n.Children {
		if c.Parked == nil && c.Type == steps[0].Emits {
			if p := append([]*Node{n}, follow(c, steps[1:])...); len(p) > len(best) {
				best = p
			}
		}
	}
	return best
}

// stopped adds a deviation for each event after which the operation stopped short of every
// chain it followed, naming what the catalog expects next.
func stopped(ms []Match, add func(*Node, string, ...any)) {
	var lasts []*Node
	next := map[*Node][]string{}
	for _, m := range ms {
		last := m.Path[len(m.Path)-1]
		if _, seen := next[last]; !seen {
			lasts = append(lasts, last)
		}
		st, _ := m.Next()
		next[last] = append(next[last], fmt.Sprintf("%s to emit %s (chain %q)", st.Service, st.Emits, m.Chain.Name))
	}
	for _, last := range lasts {
		add(last, "the operation stopped after %s: the catalog expects %s next; not in Kafka yet",
			last.Type, strings.Join(next[last], " or "))
	}
}

func by(n *Node) string {
	if n.Source == "" {
		return "an unknown source"
	}
	return n.Service()
}

func orUnknown(s string) string {
	if s == "" {
		return "an event of unknown type"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// checkEffects adds a deviation for each declared effect that ends a complete chain and that its
// service, asked for the operation's effects, has not done: it failed, or it is pending or not
// recorded at all EffectGrace after its cause.
func (t *Trace) checkEffects(ms []Match, add func(*Node, string, ...any)) {
	for _, m := range ms {
		st, ok := m.Next()
		if !m.Complete || !ok || st.Effect == "" {
			continue
		}
		asOf, asked := t.EffectsAsOf[st.Service]
		if !asked {
			continue // not observable: said so in the tree
		}
		last := m.Path[len(m.Path)-1]
		e, ok := effectOf(last, st.Service, st.Effect)
		switch {
		case !ok && asOf.Sub(last.When()) > EffectGrace:
			add(last, "the chain's effect %s never happened: %s has no record of it %s after %s", st.Effect, st.Service,
				asOf.Sub(last.When()).Round(time.Second), last.Type)
		case ok && e.Status == EffectFailed:
			add(last, "%s by %s failed: %s", st.Effect, st.Service, orUnknown(oneLine(e.Error)))
		case ok && e.Status == EffectPending && asOf.Sub(e.At) > EffectGrace:
			detail := ""
			if e.Error != "" {
				detail = " (last error: " + oneLine(e.Error) + ")"
			}
			add(last, "%s by %s still %s %s after it was recorded%s", st.Effect, st.Service, e.Status,
				asOf.Sub(e.At).Round(time.Second), detail)
		}
	}
}

// Status is an operation's outcome in a word.
type Status string

// Statuses of an operation.
const (
	// StatusComplete: it followed a catalog chain to its end, and its effect happened where
	// the service was asked, with no deviation.
	StatusComplete Status = "complete"
	// StatusParked: a consumer group parked one of its events and has not handled it since.
	StatusParked Status = "parked"
	// StatusDeviating: anything else the comparison objects to, a chain that stopped included.
	StatusDeviating Status = "deviating"
)

// Status returns the operation's outcome given its comparison with the catalog.
func (t *Trace) Status(c Comparison) Status {
	for _, n := range t.Events() {
		if n.Parked != nil && !n.Parked.HandledLater {
			return StatusParked
		}
	}
	if len(c.Complete()) > 0 && len(c.Deviations) == 0 {
		return StatusComplete
	}
	return StatusDeviating
}

// Settled reports whether more records cannot change the trace's verdict: it follows a chain to
// its end, or stopped at a parked record. A trace that is not settled may still be under way,
// or its later events lie outside the window read.
func (t *Trace) Settled(c Comparison) bool {
	return len(c.Complete()) > 0 || t.Status(c) == StatusParked
}

// Duration is the time from the operation's first event to its last event, parked record or
// effect.
func (t *Trace) Duration() time.Duration {
	r := t.Root()
	if r == nil {
		return 0
	}
	last := r.When()
	for _, n := range t.Events() {
		if n.When().After(last) {
			last = n.When()
		}
		for _, e := range n.Effects {
			if e.DoneAt != nil && e.DoneAt.After(last) {
				last = *e.DoneAt
			}
		}
	}
	return last.Sub(r.When())
}
