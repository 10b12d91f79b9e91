package catalog_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

// flowCatalog builds a catalog from its shape alone: events as "Name@producer", services as
// "name<-Consumed,Other" (consumes) with "!effect" for effects, chains as steps "service>Event"
// or "service!effect". The rest (topics, keys, descriptions, groups, produces) is filled in,
// and the result must pass Parse, so each test exercises a catalog the checks accept.
func flowCatalog(t *testing.T, events, services []string, chains ...[]string) *catalog.Catalog {
	t.Helper()
	var c catalog.Catalog
	for _, e := range events {
		name, producer, _ := strings.Cut(e, "@")
		c.Events = append(c.Events, catalog.Event{Name: name, Topic: "t", Key: "id", Schema: strings.ToLower(name) + ".avsc",
			Producer: producer, Description: "happened"})
	}
	for _, s := range services {
		s, effects, _ := strings.Cut(s, "!")
		name, consumes, _ := strings.Cut(s, "<-")
		svc := catalog.Service{Name: name, Description: "does things"}
		if consumes != "" {
			svc.Consumes = strings.Split(consumes, ",")
			svc.Group = name
		}
		if effects != "" {
			svc.Effects = strings.Split(effects, ",")
		}
		for _, e := range c.Events {
			if e.Producer == name {
				svc.Produces = append(svc.Produces, e.Name)
			}
		}
		c.Services = append(c.Services, svc)
	}
	for i, steps := range chains {
		ch := catalog.Chain{Name: "chain " + string(rune('A'+i)), Description: "an operation", Trigger: "POST /x"}
		for _, st := range steps {
			if svc, emits, ok := strings.Cut(st, ">"); ok {
				ch.Steps = append(ch.Steps, catalog.Step{Service: svc, Emits: emits})
			} else {
				svc, fx, _ := strings.Cut(st, "!")
				ch.Steps = append(ch.Steps, catalog.Step{Service: svc, Effect: fx})
			}
		}
		c.Chains = append(c.Chains, ch)
	}
	data, err := yaml.Marshal(struct {
		Events   []catalog.Event   `yaml:"events"`
		Services []catalog.Service `yaml:"services"`
		Chains   []catalog.Chain   `yaml:"chains"`
	}{c.Events, c.Services, c.Chains})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := catalog.Parse(data)
	if err != nil {
		t.Fatalf("test catalog does not parse: %v\n%s", err, data)
	}
	return parsed
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	type want struct {
		sev     catalog.Severity
		kind    catalog.FindingKind
		subject string
		message string // a part of the message
	}
	tests := []struct {
		name string
		cat  func(t *testing.T) *catalog.Catalog
		want []want
	}{
		{
			name: "real catalog: the registration saga returns to account-service without a cycle",
			cat: func(t *testing.T) *catalog.Catalog {
				c, err := catalog.Load(schemas.FS)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
		},
		{
			name: "saga compensating at the first service is no cycle",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"OrderPlaced@order", "PaymentFailed@pay"},
					[]string{"order<-PaymentFailed!order cancelled", "pay<-OrderPlaced"},
					[]string{"order>OrderPlaced", "pay>PaymentFailed", "order!order cancelled"})
			},
		},
		{
			name: "cycle within one chain",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"X@a", "Y@b"},
					[]string{"a<-Y", "b<-X!done"},
					[]string{"a>X", "b>Y", "a>X", "b!done"})
			},
			want: []want{{catalog.SeverityError, catalog.Cycle, "X", "X → Y → X form a cycle"}},
		},
		{
			name: "cycle across two chains",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"X@a", "Y@b", "Z@c"},
					[]string{"a<-Z!ok", "b<-X!ok", "c<-Y"},
					[]string{"a>X", "b>Y", "c>Z", "a!ok"},
					[]string{"c>Z", "a>X", "b!ok"})
			},
			want: []want{{catalog.SeverityError, catalog.Cycle, "X", "X → Y → Z → X"}},
		},
		{
			name: "event that causes itself",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"Tick@clock"},
					[]string{"clock<-Tick!tock"},
					[]string{"clock>Tick", "clock>Tick", "clock!tock"})
			},
			want: []want{{catalog.SeverityError, catalog.Cycle, "Tick", "Tick → Tick"}},
		},
		{
			name: "services waiting on each other: unreachable, starved and unused",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"Start@a", "R@r", "U@u"},
					[]string{"a", "r<-U!x", "u<-R"},
					[]string{"a>Start"})
			},
			want: []want{
				{catalog.SeverityError, catalog.Starved, "r", "r consumes U, which nothing can publish"},
				{catalog.SeverityError, catalog.Starved, "u", "u consumes R"},
				{catalog.SeverityWarning, catalog.Unreachable, "R", "producer r starts no chain"},
				{catalog.SeverityWarning, catalog.Unreachable, "U", "producer u starts no chain"},
				{catalog.SeverityWarning, catalog.Unused, "R", "R is used by no chain"},
				{catalog.SeverityWarning, catalog.Unused, "U", "U is used by no chain"},
			},
		},
		{
			name: "event of a service started from outside but in no chain: only unused",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"Start@a", "Audit@a", "Done@b"},
					[]string{"a", "b<-Start,Audit!x"},
					[]string{"a>Start", "b>Done"})
			},
			want: []want{{catalog.SeverityWarning, catalog.Unused, "Audit", "Audit is used by no chain"}},
		},
		{
			name: "service that consumes nothing counts as started",
			cat: func(t *testing.T) *catalog.Catalog {
				return flowCatalog(t, []string{"Start@a", "Cron@clock"},
					[]string{"a", "clock", "b<-Start,Cron!x"},
					[]string{"a>Start", "b!x"})
			},
			want: []want{{catalog.SeverityWarning, catalog.Unused, "Cron", "Cron is used by no chain"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.cat(t).Analyze()
			if len(got) != len(tc.want) {
				t.Fatalf("Analyze() = %d findings, want %d:\n%v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Severity != w.sev || g.Kind != w.kind || g.Subject != w.subject || !strings.Contains(g.Message, w.message) {
					t.Errorf("finding %d = %+v, want %s %s on %s containing %q", i, g, w.sev, w.kind, w.subject, w.message)
				}
			}
			if want := slices.ContainsFunc(tc.want, func(w want) bool { return w.sev == catalog.SeverityError }); catalog.HasErrors(got) != want {
				t.Errorf("HasErrors = %v, want %v", !want, want)
			}
		})
	}
}

func TestAnalyzeLargeCatalogFindsInjectedCycle(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(os.DirFS(largeDir))
	if err != nil {
		t.Fatal(err)
	}
	// Make the last reaction of the first chain emit its first event again: its first service
	// then consumes its own event's successor and the chain loops.
	ch := &c.Chains[0]
	last := len(ch.Steps) - 1
	first := ch.Steps[0]
	prev := ch.Steps[last-1].Emits
	ch.Steps[last] = catalog.Step{Service: first.Service, Emits: first.Emits}
	for i := range c.Services {
		if c.Services[i].Name == first.Service {
			c.Services[i].Consumes = append(c.Services[i].Consumes, prev)
		}
	}
	got := c.Analyze()
	if len(got) != 1 || got[0].Kind != catalog.Cycle || got[0].Subject != first.Emits {
		t.Fatalf("Analyze() = %v, want one cycle through %s", got, first.Emits)
	}
}
