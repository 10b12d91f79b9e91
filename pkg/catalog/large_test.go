package catalog_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/choreo-dev/choreo/pkg/catalog"
)

// largeDir holds the generated catalog of realistic size: catalog.yaml and its .avsc schemas.
// TestLargeCatalogGolden keeps it equal to generateLarge's output; -update rewrites it.
var largeDir = filepath.Join("testdata", "large")

const (
	largeServices = 60
	largeEvents   = 300
	largeChains   = 120
)

// domains name the services of the large catalog, one per service.
var domains = []string{
	"account", "address", "audit", "basket", "billing", "booking", "campaign", "carrier", "catalog", "checkout",
	"claim", "contract", "coupon", "credit", "customer", "delivery", "device", "discount", "dispute", "document",
	"fraud", "fulfilment", "gift", "identity", "inventory", "invoice", "ledger", "listing", "loyalty", "merchant",
	"message", "order", "package", "partner", "payment", "payout", "policy", "price", "product", "promotion",
	"quote", "rating", "refund", "rental", "report", "reservation", "return", "review", "route", "schedule",
	"search", "session", "settlement", "shipment", "subscription", "supplier", "tax", "ticket", "vehicle", "warehouse",
}

var verbs = []string{
	"Created", "Updated", "Requested", "Approved", "Reserved", "Released", "Scheduled", "Confirmed",
	"Verified", "Assigned", "Calculated", "Recorded", "Allocated", "Published", "Settled", "Flagged",
	"Submitted", "Accepted", "Completed", "Archived", "Priced", "Matched", "Opened", "Closed",
}

// sagaVerbs end a saga: the event that makes the service that started the chain compensate.
var sagaVerbs = []string{"Rejected", "Failed", "Declined", "Expired", "Cancelled", "Voided"}

var effectKinds = []string{"email", "webhook", "SMS", "ledger entry", "PDF", "push notification", "report row", "search index update"}

var fieldTypes = []string{`"string"`, `"long"`, `"int"`, `"boolean"`, `"double"`, `{"type": "long", "logicalType": "timestamp-millis"}`}

// generateLarge builds the large catalog deterministically: 120 chains of 2 to 7 steps over 60
// services and 300 events. A chain either starts fresh at a service with an outside trigger or
// shares a prefix of an earlier chain and then branches to other consumers (fan-out); services
// are drawn at random for each reaction, so most consume several events (fan-in); every fifth
// chain is a saga whose last event makes the chain's first service compensate. New events are
// only emitted after older ones, so the flow has no cycles, and every service and event is used.
// It returns the files of the catalog directory by name.
func generateLarge() map[string][]byte {
	rng := rand.New(rand.NewPCG(13, 2026))
	type svc struct {
		catalog.Service
		domain string
		verbs  []string // verbs not yet used for one of its events
	}
	services := make([]*svc, largeServices)
	for i := range services {
		d := domains[i]
		services[i] = &svc{
			Service: catalog.Service{Name: d + "-service", Description: fmt.Sprintf("Owns the %ss of the business.", d)},
			domain:  d,
			verbs:   slices.Clone(verbs),
		}
		rng.Shuffle(len(services[i].verbs), func(a, b int) {
			services[i].verbs[a], services[i].verbs[b] = services[i].verbs[b], services[i].verbs[a]
		})
	}
	var events []catalog.Event
	files := map[string][]byte{}
	producer := map[string]*svc{}

	// order visits every service before repeating one, so all 60 take part.
	var order []int
	pick := func(not ...*svc) *svc {
		for {
			if len(order) == 0 {
				order = rng.Perm(len(services))
			}
			s := services[order[0]]
			order = order[1:]
			if !slices.Contains(not, s) {
				return s
			}
		}
	}
	newEvent := func(s *svc, verb string) string {
		if verb == "" {
			verb, s.verbs = s.verbs[0], s.verbs[1:]
		}
		name := strings.ToUpper(s.domain[:1]) + s.domain[1:] + verb
		for n := 2; slices.ContainsFunc(events, func(e catalog.Event) bool { return e.Name == name }); n++ {
			name = fmt.Sprintf("%s%s%d", strings.ToUpper(s.domain[:1])+s.domain[1:], verb, n)
		}
		schema := snake(name) + ".avsc"
		events = append(events, catalog.Event{
			Name: name, Topic: s.domain + "s", Key: s.domain + "Id", Schema: schema, Producer: s.Name,
			Description: fmt.Sprintf("A %s was %s.", s.domain, strings.ToLower(verb)),
		})
		s.Produces = append(s.Produces, name)
		producer[name] = s
		files[schema] = avsc(rng, name, s.domain+"Id")
		return name
	}
	consume := func(s *svc, event string) {
		if !slices.Contains(s.Consumes, event) {
			s.Consumes = append(s.Consumes, event)
		}
		s.Group = s.Name
	}
	effect := func(s *svc, fx string) {
		if !slices.Contains(s.Effects, fx) {
			s.Effects = append(s.Effects, fx)
		}
	}

	var chains []catalog.Chain
	for i := range largeChains {
		newEvents := largeEvents*(i+1)/largeChains - largeEvents*i/largeChains // 2 or 3
		saga := i%5 == 4
		var steps []catalog.Step
		trigger := ""
		if i >= 10 && rng.IntN(2) == 0 { // fan-out: share a prefix of an earlier chain
			base := chains[rng.IntN(len(chains))]
			emits := slices.IndexFunc(base.Steps, func(st catalog.Step) bool { return st.Emits == "" })
			if emits < 0 {
				emits = len(base.Steps)
			}
			steps = slices.Clone(base.Steps[:1+rng.IntN(min(emits, 3))])
			trigger = base.Trigger
		} else {
			s := pick()
			trigger = []string{"POST /%ss", "PUT /%ss/{id}", "DELETE /%ss/{id}", "nightly %s job"}[rng.IntN(4)]
			trigger = fmt.Sprintf(trigger, s.domain)
			steps = []catalog.Step{{Service: s.Name, Emits: newEvent(s, "")}}
			newEvents--
		}
		for k := range newEvents {
			prev := steps[len(steps)-1].Emits
			s := pick(producer[prev])
			verb := ""
			if saga && k == newEvents-1 {
				verb = sagaVerbs[rng.IntN(len(sagaVerbs))]
				if services[slices.IndexFunc(services, func(x *svc) bool { return x.Name == steps[0].Service })] == s {
					s = pick(s)
				}
			}
			consume(s, prev)
			steps = append(steps, catalog.Step{Service: s.Name, Emits: newEvent(s, verb)})
		}
		prev := steps[len(steps)-1].Emits
		end := pick(producer[prev])
		fx := fmt.Sprintf("%s %s", end.domain, effectKinds[rng.IntN(len(effectKinds))])
		if saga {
			end = services[slices.IndexFunc(services, func(x *svc) bool { return x.Name == steps[0].Service })]
			fx = end.domain + " compensated"
		}
		consume(end, prev)
		effect(end, fx)
		steps = append(steps, catalog.Step{Service: end.Name, Effect: fx})
		name := fmt.Sprintf("%s %d", strings.TrimSuffix(steps[0].Service, "-service"), i+1)
		desc := fmt.Sprintf("Operation %d: %d reactions from %s.", i+1, len(steps)-1, trigger)
		if saga {
			name += " (saga)"
			desc += " The last reaction fails and the first service compensates."
		}
		chains = append(chains, catalog.Chain{Name: name, Description: desc, Trigger: trigger, Steps: steps})
	}

	doc := struct {
		Events   []catalog.Event   `yaml:"events"`
		Services []catalog.Service `yaml:"services"`
		Chains   []flowChain       `yaml:"chains"`
	}{Events: events}
	for _, ch := range chains {
		fc := flowChain{Name: ch.Name, Description: ch.Description, Trigger: ch.Trigger}
		for _, st := range ch.Steps {
			fc.Steps = append(fc.Steps, flowStep(st))
		}
		doc.Chains = append(doc.Chains, fc)
	}
	for _, s := range services {
		doc.Services = append(doc.Services, s.Service)
	}
	var b bytes.Buffer
	b.WriteString("# Generated by TestLargeCatalogGolden (go test ./pkg/catalog -update): a catalog of realistic\n" +
		"# size to test and benchmark the catalog commands on. Do not edit by hand.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		panic(err) // a programmer error: the document is plain data
	}
	files[catalog.FileName] = b.Bytes()
	return files
}

// flowChain and flowStep write a chain as catalog.yaml does: one line per step.
type flowChain struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	Trigger     string     `yaml:"trigger"`
	Steps       []flowStep `yaml:"steps"`
}

type flowStep catalog.Step

func (s flowStep) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	add := func(k, v string) {
		if v != "" {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
		}
	}
	add("service", s.Service)
	add("emits", s.Emits)
	add("effect", s.Effect)
	return n, nil
}

// avsc returns the schema of an event: the key, when it happened, and one to three more fields.
func avsc(rng *rand.Rand, name, key string) []byte {
	fields := []string{
		fmt.Sprintf(`    {"name": %q, "type": "string"}`, key),
		`    {"name": "occurredAt", "type": {"type": "long", "logicalType": "timestamp-millis"}}`,
	}
	for i := range 1 + rng.IntN(3) {
		fields = append(fields, fmt.Sprintf(`    {"name": "field%d", "type": %s}`, i+1, fieldTypes[rng.IntN(len(fieldTypes))]))
	}
	return fmt.Appendf(nil, "{\n  \"type\": \"record\",\n  \"name\": %q,\n  \"namespace\": \"com.example.large\",\n  \"fields\": [\n%s\n  ]\n}\n",
		name, strings.Join(fields, ",\n"))
}

func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestLargeCatalogGolden keeps testdata/large equal to what generateLarge builds, and checks that
// the generated catalog has the size and shapes it is meant to have.
func TestLargeCatalogGolden(t *testing.T) {
	t.Parallel()
	files := generateLarge()
	if *update {
		if err := os.RemoveAll(largeDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(largeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(largeDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(largeDir)
	if err != nil {
		t.Fatalf("read %s (run go test ./pkg/catalog -update to create it): %v", largeDir, err)
	}
	if len(entries) != len(files) {
		t.Errorf("%s has %d files, the generator %d; run go test ./pkg/catalog -update", largeDir, len(entries), len(files))
	}
	for _, e := range entries {
		got, err := os.ReadFile(filepath.Join(largeDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := files[e.Name()]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s/%s differs from the generator's output; run go test ./pkg/catalog -update and review the diff", largeDir, e.Name())
		}
	}

	c, err := catalog.Load(os.DirFS(largeDir))
	if err != nil {
		t.Fatalf("Load(%s): %v", largeDir, err)
	}
	if len(c.Events) != largeEvents || len(c.Services) != largeServices || len(c.Chains) != largeChains {
		t.Errorf("large catalog has %d events, %d services, %d chains; want %d, %d, %d",
			len(c.Events), len(c.Services), len(c.Chains), largeEvents, largeServices, largeChains)
	}
	if f := c.Analyze(); len(f) != 0 {
		t.Errorf("Analyze found %d problems in the large catalog, want none: %v", len(f), f)
	}
	var fanOut, fanIn, sagas int
	for _, e := range c.Events {
		if len(c.Consumers(e.Name)) >= 2 {
			fanOut++
		}
	}
	for _, s := range c.Services {
		if len(s.Consumes) >= 2 {
			fanIn++
		}
	}
	for _, ch := range c.Chains {
		if len(ch.Steps) > 2 && ch.Steps[0].Service == ch.Steps[len(ch.Steps)-1].Service {
			sagas++
		}
	}
	t.Logf("large catalog: %d events consumed by several services, %d services consuming several events, %d sagas", fanOut, fanIn, sagas)
	if fanOut < 20 || fanIn < 40 || sagas < largeChains/5 {
		t.Errorf("large catalog has %d fan-out events, %d fan-in services, %d sagas; want at least 20, 40, %d",
			fanOut, fanIn, sagas, largeChains/5)
	}
}
