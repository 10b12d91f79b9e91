package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// Severity says whether a Finding makes the catalog wrong or only incomplete.
type Severity string

const (
	// SeverityWarning marks a catalog that is consistent but says less than it should: an event no
	// documented operation uses, or one the catalog shows no way to publish.
	SeverityWarning Severity = "warning"
	// SeverityError marks a flow that cannot work as described: an operation that never ends, or a
	// handler that waits for an event nothing can publish.
	SeverityError Severity = "error"
)

// FindingKind names what Analyze found, so that tools can filter on it.
type FindingKind string

const (
	// Cycle: an event causes, through the reactions the chains declare, another instance of
	// itself. In choreography no one holds the state of the whole operation, so nothing stops the
	// loop: every pass publishes the events again and repeats their effects. A saga's compensation
	// is not a cycle: it returns to a service (the Account Service marks its account rejected) but
	// with a new event, so the flow ends. Only event cycles are reported, never service cycles.
	Cycle FindingKind = "cycle"
	// Unreachable: the event's producer is never started. It neither starts a chain (reacting to
	// something outside Kafka) nor consumes any event that can be published, and it consumes
	// something (a service that consumes nothing can only act on outside input, so it counts as
	// started). Either a chain is missing from the catalog or the event is dead.
	Unreachable FindingKind = "unreachable"
	// Unused: no chain emits the event, so no documented operation explains why it exists.
	Unused FindingKind = "unused"
	// Starved: a service consumes an event that nothing can publish (it is Unreachable), so its
	// handler can never run: usually a renamed event or a removed producer.
	Starved FindingKind = "starved"
)

// Finding is one problem of the catalog's flow as a whole, found by Analyze.
type Finding struct {
	Severity Severity    `json:"severity"`
	Kind     FindingKind `json:"kind"`
	// Subject is the event (Cycle: the cycle's first event; Unreachable, Unused) or the service
	// (Starved) the finding is about.
	Subject string `json:"subject"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s", f.Severity, f.Message)
}

// Analyze checks the flow of the catalog as a whole, beyond what Parse checks entry by entry:
// cycles among the events, events that cannot be published or that no chain uses, and services
// that consume what nothing publishes. Errors come first, then warnings; within a severity, the
// order follows the catalog. Analyze expects a catalog that Parse accepts.
func (c *Catalog) Analyze() []Finding {
	f := c.flow()
	var out []Finding
	for _, cyc := range f.cycles(c.Events) {
		out = append(out, Finding{SeverityError, Cycle, cyc[0], fmt.Sprintf(
			"events %s form a cycle: each reaction publishes the next and nothing ends the operation; "+
				"end it with a new event or an effect instead", strings.Join(cyc, " → "))})
	}

	published := c.publishable()
	for _, s := range c.Services {
		for _, e := range s.Consumes {
			if !published[e] {
				out = append(out, Finding{SeverityError, Starved, s.Name, fmt.Sprintf(
					"service %s consumes %s, which nothing can publish (see the warning on %s)", s.Name, e, e)})
			}
		}
	}
	for _, e := range c.Events {
		if !published[e.Name] {
			out = append(out, Finding{SeverityWarning, Unreachable, e.Name, fmt.Sprintf(
				"event %s is unreachable: its producer %s starts no chain and consumes nothing that can be published",
				e.Name, e.Producer)})
		}
	}
	for _, e := range c.Events {
		if len(f.emitted[e.Name]) == 0 {
			out = append(out, Finding{SeverityWarning, Unused, e.Name, fmt.Sprintf(
				"event %s is used by no chain; add the operation that publishes it to chains", e.Name)})
		}
	}
	return out
}

// publishable returns the events that can be published: those of the services started from
// outside Kafka (a chain's first step, or a service that consumes nothing), then, repeatedly,
// those of the services that consume a publishable event.
func (c *Catalog) publishable() map[string]bool {
	started := make(map[string]bool)
	var queue []string
	start := func(name string) {
		if !started[name] {
			started[name] = true
			queue = append(queue, name)
		}
	}
	for _, ch := range c.Chains {
		if len(ch.Steps) > 0 {
			start(ch.Steps[0].Service)
		}
	}
	for _, s := range c.Services {
		if len(s.Consumes) == 0 {
			start(s.Name)
		}
	}
	published := make(map[string]bool)
	for len(queue) > 0 {
		s, _ := c.Service(queue[0])
		queue = queue[1:]
		for _, e := range s.Produces {
			if published[e] {
				continue
			}
			published[e] = true
			for _, consumer := range c.Services {
				if slices.Contains(consumer.Consumes, e) {
					start(consumer.Name)
				}
			}
		}
	}
	return published
}

// HasErrors reports whether any finding is a SeverityError.
func HasErrors(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity == SeverityError })
}
