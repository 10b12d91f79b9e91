package explorer

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/trace"
)

// catalogJSON is the catalog as GET /api/catalog serves it, in the catalog's order.
type catalogJSON struct {
	Events   []eventJSON   `json:"events"`
	Services []serviceJSON `json:"services"`
	Chains   []chainJSON   `json:"chains"`
}

type eventJSON struct {
	Name          string   `json:"name"`
	Topic         string   `json:"topic"`
	Key           string   `json:"key"`
	Producer      string   `json:"producer"`
	Description   string   `json:"description"`
	Compatibility string   `json:"compatibility"`
	Consumers     []string `json:"consumers"`
}

type serviceJSON struct {
	Name        string   `json:"name"`
	Group       string   `json:"group,omitempty"`
	Description string   `json:"description"`
	Consumes    []string `json:"consumes"`
	Produces    []string `json:"produces"`
	Effects     []string `json:"effects"`
}

type chainJSON struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Trigger     string     `json:"trigger"`
	Steps       []stepJSON `json:"steps"`
}

type stepJSON struct {
	Service string `json:"service"`
	Emits   string `json:"emits,omitempty"`
	Effect  string `json:"effect,omitempty"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func eventView(cat *catalog.Catalog, e catalog.Event) eventJSON {
	return eventJSON{Name: e.Name, Topic: e.Topic, Key: e.Key, Producer: e.Producer, Description: e.Description,
		Compatibility: string(e.Level()), Consumers: nonNil(cat.Consumers(e.Name))}
}

func serviceView(s catalog.Service) serviceJSON {
	return serviceJSON{Name: s.Name, Group: s.Group, Description: s.Description,
		Consumes: nonNil(s.Consumes), Produces: nonNil(s.Produces), Effects: nonNil(s.Effects)}
}

func chainView(ch catalog.Chain) chainJSON {
	c := chainJSON{Name: ch.Name, Description: ch.Description, Trigger: ch.Trigger, Steps: []stepJSON{}}
	for _, st := range ch.Steps {
		c.Steps = append(c.Steps, stepJSON(st))
	}
	return c
}

func catalogView(cat *catalog.Catalog) catalogJSON {
	v := catalogJSON{Events: []eventJSON{}, Services: []serviceJSON{}, Chains: []chainJSON{}}
	for _, e := range cat.Events {
		v.Events = append(v.Events, eventView(cat, e))
	}
	for _, s := range cat.Services {
		v.Services = append(v.Services, serviceView(s))
	}
	for _, ch := range cat.Chains {
		v.Chains = append(v.Chains, chainView(ch))
	}
	return v
}

func (e *Explorer) serveCatalog(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(e.catJSON)
}

// eventDetail is an event as GET /api/events/{name} serves it.
type eventDetail struct {
	eventJSON
	// Schema is the event's Avro schema; absent when the explorer was given no schemas.
	Schema json.RawMessage `json:"schema,omitempty"`
	Impact catalog.Impact  `json:"impact"`
}

func (e *Explorer) serveEvent(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ev, ok := e.cat.Event(name)
	if !ok {
		writeError(w, http.StatusNotFound, "event %q is not in the catalog", name)
		return
	}
	im, err := e.cat.Impact(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "impact of %s: %v", name, err)
		return
	}
	d := eventDetail{eventJSON: eventView(e.cat, ev), Impact: im}
	if e.schemas != nil && ev.Schema != "" {
		b, err := fs.ReadFile(e.schemas, ev.Schema)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "schema of %s: %v", name, err)
			return
		}
		if json.Valid(b) {
			d.Schema = b
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// serviceDetail is a service as GET /api/services/{name} serves it.
type serviceDetail struct {
	serviceJSON
	Impact catalog.Impact `json:"impact"`
}

func (e *Explorer) serveService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s, ok := e.cat.Service(name)
	if !ok {
		writeError(w, http.StatusNotFound, "service %q is not in the catalog", name)
		return
	}
	im, err := e.cat.Impact(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "impact of %s: %v", name, err)
		return
	}
	writeJSON(w, http.StatusOK, serviceDetail{serviceJSON: serviceView(s), Impact: im})
}

func (e *Explorer) serveChain(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ch, ok := e.cat.Chain(name)
	if !ok {
		writeError(w, http.StatusNotFound, "chain %q is not in the catalog", name)
		return
	}
	writeJSON(w, http.StatusOK, chainView(ch))
}

// maxRecent bounds GET /api/operations?n=: each operation costs a read of its window of the
// topics and a request to every effects service.
const maxRecent = 200

// recentJSON is what GET /api/operations serves.
type recentJSON struct {
	AsOf       time.Time       `json:"asOf"`
	Operations []trace.Summary `json:"operations"`
	Warnings   []string        `json:"warnings"`
}

func (e *Explorer) serveRecent(w http.ResponseWriter, r *http.Request) {
	n := 20
	if s := r.URL.Query().Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxRecent {
			writeError(w, http.StatusBadRequest, "n=%q: want a number of operations from 1 to %d", s, maxRecent)
			return
		}
		n = v
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	trs, err := e.src.Recent(ctx, n)
	if err != nil {
		e.sourceError(w, ctx, err)
		return
	}
	out := recentJSON{AsOf: time.Now().UTC(), Operations: []trace.Summary{}, Warnings: []string{}}
	failed := map[string]error{}
	for _, t := range trs {
		maps.Copy(failed, t.AskEffects(ctx, e.hc, e.effects))
		out.Operations = append(out.Operations, t.Summary(t.Compare(e.cat)))
	}
	out.Warnings = effectWarnings(failed)
	writeJSON(w, http.StatusOK, out)
}

func effectWarnings(failed map[string]error) []string {
	w := []string{}
	for _, svc := range slices.Sorted(maps.Keys(failed)) {
		w = append(w, svc+"'s effects are not shown: "+failed[svc].Error())
	}
	return w
}

// operationJSON is what GET /api/operations/{id} serves: the trace's tree, each node with its
// timing and the deviations and expected steps about it, and the verdict.
type operationJSON struct {
	CorrelationID string        `json:"correlationId"`
	Summary       trace.Summary `json:"summary"`
	trace.Verdict
	Roots    []*nodeJSON    `json:"roots"`
	Unplaced []trace.Effect `json:"unplacedEffects"`
	// EffectsAsOf names the services asked for effects and when.
	EffectsAsOf   map[string]time.Time `json:"effectsAsOf"`
	MissingTopics []string             `json:"missingTopics"`
	Warnings      []string             `json:"warnings"`
}

// nodeJSON is a trace.Node with its place in time: since the operation's first event and since
// its cause (the hop's latency).
type nodeJSON struct {
	*trace.Node
	Children []*nodeJSON `json:"children"`
	// AtMS is the time since the operation's first event, HopMS since the node's parent
	// (absent for a root): the latency of the hop.
	AtMS  float64  `json:"atMs"`
	HopMS *float64 `json:"hopMs,omitempty"`
	// Effects are the effects recorded for the event, each with its latency from the event.
	Effects    []effectJSON     `json:"effects"`
	Deviations []string         `json:"deviations"`
	Expected   []trace.Expected `json:"expected"`
}

type effectJSON struct {
	trace.Effect
	HopMS float64 `json:"hopMs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (e *Explorer) serveOperation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		writeError(w, http.StatusBadRequest, "operation ID %q: want an event ID or a correlation ID", id)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	t, err := e.src.Find(ctx, id)
	if err != nil {
		e.sourceError(w, ctx, err)
		return
	}
	failed := t.AskEffects(ctx, e.hc, e.effects)
	cmp := t.Compare(e.cat)
	v := t.Verdict(cmp)
	out := operationJSON{
		CorrelationID: t.CorrelationID, Summary: t.Summary(cmp), Verdict: v, Roots: []*nodeJSON{},
		Unplaced: t.Unplaced, EffectsAsOf: t.EffectsAsOf, MissingTopics: nonNil(t.MissingTopics),
		Warnings: effectWarnings(failed),
	}
	if out.Unplaced == nil {
		out.Unplaced = []trace.Effect{}
	}
	if out.EffectsAsOf == nil {
		out.EffectsAsOf = map[string]time.Time{}
	}
	var start time.Time
	if root := t.Root(); root != nil {
		start = root.When()
	}
	// A deviation names an event by its ce_id, which a parked copy shares: it is shown on the
	// event, or on the parked record when the event itself is not in the trace. Events lists
	// parents, so events, before their parked copies.
	about := map[string]*trace.Node{}
	for _, n := range t.Events() {
		if _, ok := about[n.ID]; !ok {
			about[n.ID] = n
		}
	}
	var view func(n, parent *trace.Node) *nodeJSON
	view = func(n, parent *trace.Node) *nodeJSON {
		j := &nodeJSON{Node: n, Children: []*nodeJSON{}, AtMS: ms(n.When().Sub(start)),
			Effects: []effectJSON{}, Deviations: []string{}, Expected: []trace.Expected{}}
		if parent != nil {
			hop := ms(n.When().Sub(parent.When()))
			j.HopMS = &hop
		}
		for _, c := range n.Children {
			j.Children = append(j.Children, view(c, n))
		}
		for _, ef := range n.Effects {
			j.Effects = append(j.Effects, effectJSON{Effect: ef, HopMS: ms(ef.When().Sub(n.When()))})
		}
		for _, d := range v.Deviations {
			if d.EventID != "" && about[d.EventID] == n {
				j.Deviations = append(j.Deviations, d.Message)
			}
		}
		for _, x := range v.Expected {
			if x.After == n.ID && n.Parked == nil {
				j.Expected = append(j.Expected, x)
			}
		}
		return j
	}
	for _, root := range t.Roots {
		out.Roots = append(out.Roots, view(root, nil))
	}
	writeJSON(w, http.StatusOK, out)
}
