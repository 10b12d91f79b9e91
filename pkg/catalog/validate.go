package catalog

import (
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

// validate checks the catalog against itself; see Parse.
func (c *Catalog) validate() error {
	var p problems
	c.validateEvents(&p)
	c.validateServices(&p)
	c.validateChains(&p)
	c.validateTopics(&p)
	return p.err()
}

// label names entry i of a list in a message: by name when it has one, else by its position.
func label(kind string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s %d", kind, i+1)
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// required reports each empty field of an entry.
func required(p *problems, at string, fields ...string) {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			p.addf("%s: %s is required", at, fields[i])
		}
	}
}

// unique reports every name that was already used by an earlier entry of the same list.
func unique(p *problems, kind string, names []string) {
	first := make(map[string]int, len(names))
	for i, name := range names {
		if name == "" {
			continue
		}
		if j, ok := first[name]; ok {
			p.addf("%s %q is defined twice (entries %d and %d)", kind, name, j+1, i+1)
			continue
		}
		first[name] = i
	}
}

// uniqueList reports entries that appear twice in one list of an entry, e.g. consumes.
func uniqueList(p *problems, at, list string, items []string) {
	seen := make(map[string]bool, len(items))
	for _, item := range items {
		if item == "" {
			p.addf("%s: %s has an empty entry", at, list)
			continue
		}
		if seen[item] {
			p.addf("%s: %s lists %s twice", at, list, item)
		}
		seen[item] = true
	}
}

func (c *Catalog) validateEvents(p *problems) {
	names := make([]string, len(c.Events))
	byTopic := make(map[string]Event)
	for i, e := range c.Events {
		names[i] = e.Name
		at := label("event", i, e.Name)
		required(p, at, "name", e.Name, "topic", e.Topic, "key", e.Key, "schema", e.Schema,
			"producer", e.Producer, "description", e.Description)

		if e.Schema != "" && (!fs.ValidPath(e.Schema) || path.Ext(e.Schema) != ".avsc") {
			p.addf("%s: schema %q is not the path of a .avsc file in the schemas directory", at, e.Schema)
		}

		if e.Compatibility != "" {
			if _, err := avrocompat.ParseLevel(e.Compatibility); err != nil {
				p.addf("%s: compatibility: %v", at, err)
			}
		}

		if e.Producer != "" {
			s, ok := c.Service(e.Producer)
			switch {
			case !ok:
				p.addf("%s: producer %q is not a service in the catalog", at, e.Producer)
			case e.Name != "" && !slices.Contains(s.Produces, e.Name):
				p.addf("%s: producer %s does not list %s in produces", at, e.Producer, e.Name)
			}
		}

		if e.Topic != "" && e.Key != "" {
			if first, ok := byTopic[e.Topic]; !ok {
				byTopic[e.Topic] = e
			} else if first.Key != e.Key {
				p.addf("%s: key %s differs from key %s of %s on the same topic %s; "+
					"events of one topic must share the key to keep per-entity order",
					at, e.Key, first.Key, first.Name, e.Topic)
			}
		}
	}
	unique(p, "event", names)
}

func (c *Catalog) validateServices(p *problems) {
	names := make([]string, len(c.Services))
	groups := make(map[string]string)
	for i, s := range c.Services {
		names[i] = s.Name
		at := label("service", i, s.Name)
		required(p, at, "name", s.Name, "description", s.Description)

		uniqueList(p, at, "consumes", s.Consumes)
		for _, name := range s.Consumes {
			if _, ok := c.Event(name); name != "" && !ok {
				p.addf("%s: consumes %s, which is not an event in the catalog", at, name)
			}
		}

		uniqueList(p, at, "produces", s.Produces)
		for _, name := range s.Produces {
			e, ok := c.Event(name)
			switch {
			case name == "":
			case !ok:
				p.addf("%s: produces %s, which is not an event in the catalog", at, name)
			case e.Producer != s.Name:
				p.addf("%s: produces %s, but event %s names producer %q", at, name, name, e.Producer)
			}
		}

		uniqueList(p, at, "effects", s.Effects)

		switch {
		case len(s.Consumes) > 0 && s.Group == "":
			p.addf("%s: consumes events but has no consumer group", at)
		case len(s.Consumes) == 0 && s.Group != "":
			p.addf("%s: has consumer group %q but consumes nothing", at, s.Group)
		case s.Group != "":
			if other, ok := groups[s.Group]; ok {
				p.addf("%s: consumer group %q is already used by service %s; "+
					"services sharing a group would split each other's partitions", at, s.Group, other)
			} else {
				groups[s.Group] = s.Name
			}
		}
	}
	unique(p, "service", names)
}

func (c *Catalog) validateChains(p *problems) {
	names := make([]string, len(c.Chains))
	for i, ch := range c.Chains {
		names[i] = ch.Name
		at := label("chain", i, ch.Name)
		required(p, at, "name", ch.Name, "description", ch.Description, "trigger", ch.Trigger)
		if len(ch.Steps) == 0 {
			p.addf("%s: has no steps", at)
		}
		for j, st := range ch.Steps {
			c.validateStep(p, ch, j, fmt.Sprintf("%s step %d", at, j+1), st)
		}
	}
	unique(p, "chain", names)
}

func (c *Catalog) validateStep(p *problems, ch Chain, j int, at string, st Step) {
	switch {
	case st.Emits != "" && st.Effect != "":
		p.addf("%s: sets both emits and effect; a step does exactly one", at)
	case st.Emits == "" && st.Effect == "":
		p.addf("%s: sets neither emits nor effect", at)
	case st.Effect != "" && j < len(ch.Steps)-1:
		p.addf("%s: effect %q ends the chain, so it must be the last step", at, st.Effect)
	}

	if st.Service == "" {
		p.addf("%s: service is required", at)
		return
	}
	s, ok := c.Service(st.Service)
	if !ok {
		p.addf("%s: service %q is not in the catalog", at, st.Service)
		return
	}

	if st.Emits != "" && !slices.Contains(s.Produces, st.Emits) {
		p.addf("%s: %s does not produce %s", at, s.Name, st.Emits)
	}
	if st.Effect != "" && !slices.Contains(s.Effects, st.Effect) {
		p.addf("%s: %s has no effect %q", at, s.Name, st.Effect)
	}

	if j > 0 {
		prev := ch.Steps[j-1]
		if prev.Emits != "" && !slices.Contains(s.Consumes, prev.Emits) {
			p.addf("%s: %s does not consume %s, emitted by step %d", at, s.Name, prev.Emits, j)
		}
	}
}
