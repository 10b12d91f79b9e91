package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// ServiceDescription is what a service registers in code: the runner and service packages build it
// from their real handler registrations, so the catalog is checked against the code, not against a
// second hand-written list.
type ServiceDescription struct {
	Name string
	// Group is the consumer group; "" if the service consumes nothing.
	Group    string
	Handlers []HandlerDescription
	// Emits lists the events emitted outside handlers, e.g. from an HTTP API.
	Emits []string
}

// HandlerDescription is one registered handler of a service.
type HandlerDescription struct {
	// Name is the stable handler name, unique within the service.
	Name string
	// Consumes is the name of the event the handler handles.
	Consumes string
	// Emits lists the events the handler may emit.
	Emits []string
	// Effects lists the handler's side effects outside Kafka, e.g. "welcome email".
	Effects []string
}

// CheckService checks what a service registers in code against its catalog entry: the consumer
// group, the consumed events, the produced events (by handlers and outside them) and the effects
// must match in both directions, and handler names must be unique and non-empty. It also checks
// each chain step of the service against the handler of the event before it: the chain says
// "on AccountCreated, user-service emits UserCreated", so some handler of AccountCreated must
// declare UserCreated. All problems are returned at once, joined; each wraps ErrInvalid.
func (c *Catalog) CheckService(d ServiceDescription) error {
	if d.Name == "" {
		return invalidf("service description: name is required")
	}
	at := fmt.Sprintf("service %q", d.Name)
	s, ok := c.Service(d.Name)
	if !ok {
		return invalidf("%s: registered in code but not in the catalog; add it to %s", at, FileName)
	}

	var p problems
	if d.Group != s.Group {
		p.addf("%s: code uses consumer group %s, catalog says %s", at, groupName(d.Group), groupName(s.Group))
	}

	var consumes, emits, effects uses
	seen := make(map[string]bool, len(d.Handlers))
	for i, h := range d.Handlers {
		src := fmt.Sprintf("handler %q", h.Name)
		switch {
		case h.Name == "":
			src = fmt.Sprintf("handler %d", i+1)
			p.addf("%s: %s (consumes %s) has no name", at, src, h.Consumes)
		case seen[h.Name]:
			p.addf("%s: handler name %q is registered twice; handler names must be unique", at, h.Name)
		}
		seen[h.Name] = true
		if h.Consumes == "" {
			p.addf("%s: %s consumes no event", at, src)
		} else {
			consumes.add(h.Consumes, src)
		}
		for _, e := range h.Emits {
			emits.add(e, src)
		}
		for _, fx := range h.Effects {
			effects.add(fx, src)
		}
	}
	for _, e := range d.Emits {
		emits.add(e, "outside handlers")
	}

	for _, e := range consumes.names {
		if !slices.Contains(s.Consumes, e) {
			p.addf("%s: code handles %s (%s), catalog does not list it in consumes", at, e, consumes.from(e))
		}
	}
	for _, e := range s.Consumes {
		if !consumes.has(e) {
			p.addf("%s: catalog says it consumes %s, no handler in code", at, e)
		}
	}
	for _, e := range emits.names {
		if !slices.Contains(s.Produces, e) {
			p.addf("%s: code emits %s (%s), catalog does not list it in produces", at, e, emits.from(e))
		}
	}
	for _, e := range s.Produces {
		if !emits.has(e) {
			p.addf("%s: catalog says it produces %s, nothing in code emits it", at, e)
		}
	}
	for _, fx := range effects.names {
		if !slices.Contains(s.Effects, fx) {
			p.addf("%s: code has effect %q (%s), catalog does not list it in effects", at, fx, effects.from(fx))
		}
	}
	for _, fx := range s.Effects {
		if !effects.has(fx) {
			p.addf("%s: catalog says it has effect %q, no handler in code declares it", at, fx)
		}
	}

	c.checkSteps(&p, d)
	return p.err()
}

// checkSteps checks the steps of d's service that react to an event against d's handlers of it.
func (c *Catalog) checkSteps(p *problems, d ServiceDescription) {
	for i, ch := range c.Chains {
		for j, st := range ch.Steps {
			if j == 0 || st.Service != d.Name || ch.Steps[j-1].Emits == "" {
				continue
			}
			in := ch.Steps[j-1].Emits
			var handlers []string
			found := false
			for _, h := range d.Handlers {
				if h.Consumes != in {
					continue
				}
				handlers = append(handlers, fmt.Sprintf("%q", h.Name))
				if (st.Emits != "" && slices.Contains(h.Emits, st.Emits)) ||
					(st.Effect != "" && slices.Contains(h.Effects, st.Effect)) {
					found = true
				}
			}
			if found || len(handlers) == 0 { // no handler at all is reported as a consumes mismatch
				continue
			}
			what := "emits " + st.Emits
			if st.Emits == "" {
				what = fmt.Sprintf("has effect %q", st.Effect)
			}
			p.addf("%s step %d: catalog says %s %s on %s, no handler of %s declares it (handlers %s)",
				label("chain", i, ch.Name), j+1, d.Name, what, in, in, strings.Join(handlers, ", "))
		}
	}
}

func groupName(g string) string {
	if g == "" {
		return "none"
	}
	return fmt.Sprintf("%q", g)
}

// uses records, for each event or effect named in code, where it was named, in first-seen order.
type uses struct {
	names []string
	by    map[string][]string
}

func (u *uses) add(name, source string) {
	if u.by == nil {
		u.by = make(map[string][]string)
	}
	if _, ok := u.by[name]; !ok {
		u.names = append(u.names, name)
	}
	u.by[name] = append(u.by[name], source)
}

func (u *uses) has(name string) bool {
	_, ok := u.by[name]
	return ok
}

func (u *uses) from(name string) string {
	return strings.Join(u.by[name], ", ")
}
