package catalog

import (
	"slices"
)

// flow is the causal graph of the catalog as its chains declare it: an edge from event E to event
// F when, in some chain, the service that consumes E emits F; and an edge from E to an effect when
// the reaction to E is that effect. A service's consumes and produces lists alone would connect
// every event it consumes to every event it produces (account-service consumes
// UserRegistrationRejected and produces AccountCreated, but never emits one in reaction to the
// other); the chains say which reaction emits what, and CheckService holds them to the handlers.
type flow struct {
	next    map[string][]string // event -> events emitted in reaction to it, in first-seen order
	effects map[string][]Effect // event -> effects caused in reaction to it
	emitted map[string][]int    // event -> indexes of the chains with a step that emits it
	serves  map[string][]int    // service -> indexes of the chains with a step by it
}

// Effect is a side effect outside Kafka and the service that causes it.
type Effect struct {
	Service string `json:"service"`
	Effect  string `json:"effect"`
}

func (c *Catalog) flow() *flow {
	f := &flow{
		next:    make(map[string][]string),
		effects: make(map[string][]Effect),
		emitted: make(map[string][]int),
		serves:  make(map[string][]int),
	}
	for i, ch := range c.Chains {
		for j, st := range ch.Steps {
			addIndex(f.serves, st.Service, i)
			if st.Emits != "" {
				addIndex(f.emitted, st.Emits, i)
			}
			if j == 0 {
				continue
			}
			prev := ch.Steps[j-1].Emits
			switch {
			case prev == "":
			case st.Emits != "":
				if !slices.Contains(f.next[prev], st.Emits) {
					f.next[prev] = append(f.next[prev], st.Emits)
				}
			case st.Effect != "":
				fx := Effect{Service: st.Service, Effect: st.Effect}
				if !slices.Contains(f.effects[prev], fx) {
					f.effects[prev] = append(f.effects[prev], fx)
				}
			}
		}
	}
	return f
}

func addIndex(m map[string][]int, key string, i int) {
	if l := m[key]; len(l) == 0 || l[len(l)-1] != i {
		m[key] = append(l, i)
	}
}

// downstream returns every event reachable from the events in from (excluded), and the effects
// caused along the way.
func (f *flow) downstream(from []string) (map[string]bool, []Effect) {
	seen := make(map[string]bool, len(from))
	for _, e := range from {
		seen[e] = true
	}
	queue := slices.Clone(from)
	var effects []Effect
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, fx := range f.effects[e] {
			if !slices.Contains(effects, fx) {
				effects = append(effects, fx)
			}
		}
		for _, n := range f.next[e] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for _, e := range from {
		delete(seen, e)
	}
	return seen, effects
}

// cycles returns each cycle of the event graph once, as the path of events from its first event
// (in catalog order) back to it. Every strongly connected component with more than one event, or
// with an event that causes itself, holds at least one cycle; one per component is reported, as
// breaking it is the fix either way.
func (f *flow) cycles(events []Event) [][]string {
	order := make(map[string]int, len(events))
	for i, e := range events {
		order[e.Name] = i
	}
	var out [][]string
	for _, comp := range f.components(events) {
		slices.SortFunc(comp, func(a, b string) int { return order[a] - order[b] })
		start := comp[0]
		if len(comp) == 1 && !slices.Contains(f.next[start], start) {
			continue
		}
		out = append(out, f.pathBack(start, comp))
	}
	return out
}

// components returns the strongly connected components of the event graph (Tarjan's algorithm),
// visiting events in catalog order so that the result is deterministic.
func (f *flow) components(events []Event) [][]string {
	index := make(map[string]int)
	low := make(map[string]int)
	onStack := make(map[string]bool)
	var stack []string
	var comps [][]string
	var visit func(v string)
	visit = func(v string) {
		index[v] = len(index)
		low[v] = index[v]
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range f.next[v] {
			if _, ok := index[w]; !ok {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		comps = append(comps, comp)
	}
	for _, e := range events {
		if _, ok := index[e.Name]; !ok {
			visit(e.Name)
		}
	}
	return comps
}

// pathBack returns a shortest path start → ... → start within the component comp.
func (f *flow) pathBack(start string, comp []string) []string {
	prev := map[string]string{}
	queue := []string{start}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, n := range f.next[e] {
			if !slices.Contains(comp, n) {
				continue
			}
			if n == start {
				path := []string{start}
				for at := e; at != start; at = prev[at] {
					path = append(path, at)
				}
				path = append(path, start)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, ok := prev[n]; !ok {
				prev[n] = e
				queue = append(queue, n)
			}
		}
	}
	return []string{start, start} // unreachable for a component with a cycle through start
}
