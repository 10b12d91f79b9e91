package catalog

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrNotFound is returned (wrapped) by Impact for a name that is neither an event nor a service.
var ErrNotFound = errors.New("not in the catalog")

// Impact is what depends on an event or a service: the question to answer before changing or
// removing it.
type Impact struct {
	// Subject is the event or service asked about; Kind is "event" or "service".
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
	// Events are the subject's events: the event itself, or every event the service produces.
	Events []string `json:"events"`
	// Consumers are the services that consume Events, in catalog order.
	Consumers []string `json:"consumers"`
	// Downstream are the events published, transitively, in reaction to Events, as the chains
	// declare the reactions; in catalog order, Events excluded.
	Downstream []string `json:"downstream"`
	// Services are the services that react to Events or Downstream: every service a change can
	// reach. In catalog order.
	Services []string `json:"services"`
	// Chains are the chains that pass through the subject (a step emits the event, or a step is
	// the service's), in catalog order, with what each ends in.
	Chains []ChainEnd `json:"chains"`
	// Effects are the effects at the ends of Chains and those caused downstream, sorted.
	Effects []Effect `json:"effects"`
}

// ChainEnd is a chain and the last step it ends in: an effect, or an event (a chain may stop at
// an event that only other chains react to).
type ChainEnd struct {
	Chain   string `json:"chain"`
	Service string `json:"service"`
	Effect  string `json:"effect,omitempty"`
	Event   string `json:"event,omitempty"`
}

// Impact returns what depends on the event or service called name. An event is looked up first;
// event and service names do not collide in practice (PascalCase and kebab-case). It returns an
// error wrapping ErrNotFound if the catalog has neither.
func (c *Catalog) Impact(name string) (Impact, error) {
	f := c.flow()
	im := Impact{Subject: name}
	var through []int
	if _, ok := c.Event(name); ok {
		im.Kind = "event"
		im.Events = []string{name}
		through = f.emitted[name]
	} else if s, ok := c.Service(name); ok {
		im.Kind = "service"
		im.Events = slices.Clone(s.Produces)
		through = f.serves[name]
	} else {
		return Impact{}, fmt.Errorf("%q: %w: no event or service has that name", name, ErrNotFound)
	}
	if im.Events == nil {
		im.Events = []string{}
	}

	down, effects := f.downstream(im.Events)
	reached := make(map[string]bool, len(down)+len(im.Events))
	for _, e := range im.Events {
		reached[e] = true
	}
	for _, e := range c.Events {
		if down[e.Name] {
			im.Downstream = append(im.Downstream, e.Name)
			reached[e.Name] = true
		}
	}
	for _, s := range c.Services {
		if slices.ContainsFunc(s.Consumes, func(e string) bool { return slices.Contains(im.Events, e) }) {
			im.Consumers = append(im.Consumers, s.Name)
		}
		if slices.ContainsFunc(s.Consumes, func(e string) bool { return reached[e] }) {
			im.Services = append(im.Services, s.Name)
		}
	}

	for _, i := range through {
		ch := c.Chains[i]
		last := ch.Steps[len(ch.Steps)-1]
		im.Chains = append(im.Chains, ChainEnd{Chain: ch.Name, Service: last.Service, Effect: last.Effect, Event: last.Emits})
		if last.Effect != "" {
			fx := Effect{Service: last.Service, Effect: last.Effect}
			if !slices.Contains(effects, fx) {
				effects = append(effects, fx)
			}
		}
	}
	slices.SortFunc(effects, func(a, b Effect) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Effect, b.Effect))
	})
	im.Effects = effects
	for _, l := range []*[]string{&im.Consumers, &im.Downstream, &im.Services} {
		if *l == nil {
			*l = []string{}
		}
	}
	if im.Chains == nil {
		im.Chains = []ChainEnd{}
	}
	if im.Effects == nil {
		im.Effects = []Effect{}
	}
	return im, nil
}

// WriteText writes the impact for a reader: one section per list, each with its count, so that
// "nothing" is visible as 0 rather than as a missing line.
func (im Impact) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "impact of %s %s\n", im.Kind, im.Subject)
	if im.Kind == "service" {
		section(&b, "produces", im.Events)
	}
	section(&b, "consumers", im.Consumers)
	section(&b, "downstream events", im.Downstream)
	section(&b, "services reached", im.Services)
	chains := make([]string, len(im.Chains))
	for i, ch := range im.Chains {
		end := "effect " + ch.Effect
		if ch.Effect == "" {
			end = "emits " + ch.Event
		}
		chains[i] = fmt.Sprintf("%s → %s %s", ch.Chain, ch.Service, end)
	}
	section(&b, "chains", chains)
	effects := make([]string, len(im.Effects))
	for i, fx := range im.Effects {
		effects[i] = fx.Service + ": " + fx.Effect
	}
	section(&b, "effects", effects)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write impact: %w", err)
	}
	return nil
}

func section(b *bytes.Buffer, title string, items []string) {
	fmt.Fprintf(b, "%s (%d):", title, len(items))
	if len(items) == 0 {
		b.WriteString(" none\n")
		return
	}
	b.WriteString("\n  " + strings.Join(items, "\n  ") + "\n")
}
