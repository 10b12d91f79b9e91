package catalog_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

func TestImpactRealCatalog(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	var (
		welcome  = catalog.Effect{Service: "notification-service", Effect: "welcome email"}
		farewell = catalog.Effect{Service: "notification-service", Effect: "farewell email"}
		rejected = catalog.Effect{Service: "account-service", Effect: "account rejected"}
		reg      = catalog.ChainEnd{Chain: "Account registration", Service: "notification-service", Effect: "welcome email"}
		del      = catalog.ChainEnd{Chain: "Account deletion", Service: "notification-service", Effect: "farewell email"}
		rej      = catalog.ChainEnd{Chain: "Account registration rejected", Service: "account-service", Effect: "account rejected"}
	)
	tests := []struct {
		name string
		want catalog.Impact
	}{
		{"AccountCreated", catalog.Impact{Kind: "event", Events: []string{"AccountCreated"},
			Consumers:  []string{"user-service"},
			Downstream: []string{"UserCreated", "UserRegistrationRejected"},
			Services:   []string{"account-service", "user-service", "notification-service"},
			Chains:     []catalog.ChainEnd{reg, rej},
			Effects:    []catalog.Effect{rejected, welcome}}},
		{"UserDeleted", catalog.Impact{Kind: "event", Events: []string{"UserDeleted"},
			Consumers: []string{"notification-service"}, Downstream: []string{},
			Services: []string{"notification-service"},
			Chains:   []catalog.ChainEnd{del}, Effects: []catalog.Effect{farewell}}},
		{"account-service", catalog.Impact{Kind: "service", Events: []string{"AccountCreated", "AccountDeleted"},
			Consumers:  []string{"user-service"},
			Downstream: []string{"UserCreated", "UserDeleted", "UserRegistrationRejected"},
			Services:   []string{"account-service", "user-service", "notification-service"},
			Chains:     []catalog.ChainEnd{reg, del, rej},
			Effects:    []catalog.Effect{rejected, farewell, welcome}}},
		{"user-service", catalog.Impact{Kind: "service", Events: []string{"UserCreated", "UserDeleted", "UserRegistrationRejected"},
			Consumers: []string{"account-service", "notification-service"}, Downstream: []string{},
			Services: []string{"account-service", "notification-service"},
			Chains:   []catalog.ChainEnd{reg, del, rej},
			Effects:  []catalog.Effect{rejected, farewell, welcome}}},
		{"notification-service", catalog.Impact{Kind: "service", Events: []string{},
			Consumers: []string{}, Downstream: []string{}, Services: []string{},
			Chains:  []catalog.ChainEnd{reg, del},
			Effects: []catalog.Effect{farewell, welcome}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Impact(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Subject = tc.name
			assertImpact(t, got, tc.want)
		})
	}

	t.Run("unknown name", func(t *testing.T) {
		t.Parallel()
		if _, err := c.Impact("AccountFrozen"); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("Impact(AccountFrozen) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("text", func(t *testing.T) {
		t.Parallel()
		im, err := c.Impact("AccountCreated")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := im.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"impact of event AccountCreated\n",
			"consumers (1):\n  user-service\n",
			"downstream events (2):\n  UserCreated\n  UserRegistrationRejected\n",
			"chains (2):\n  Account registration → notification-service effect welcome email\n",
			"effects (2):\n  account-service: account rejected\n  notification-service: welcome email\n",
		} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("WriteText lacks %q:\n%s", want, b.String())
			}
		}
	})
}

func assertImpact(t *testing.T, got, want catalog.Impact) {
	t.Helper()
	if got.Subject != want.Subject || got.Kind != want.Kind {
		t.Errorf("subject = %s %s, want %s %s", got.Kind, got.Subject, want.Kind, want.Subject)
	}
	for _, l := range []struct {
		what      string
		got, want []string
	}{
		{"events", got.Events, want.Events},
		{"consumers", got.Consumers, want.Consumers},
		{"downstream", got.Downstream, want.Downstream},
		{"services", got.Services, want.Services},
	} {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s = %q, want %q", l.what, l.got, l.want)
		}
	}
	if !slices.Equal(got.Chains, want.Chains) {
		t.Errorf("chains = %+v, want %+v", got.Chains, want.Chains)
	}
	if !slices.Equal(got.Effects, want.Effects) {
		t.Errorf("effects = %+v, want %+v", got.Effects, want.Effects)
	}
}

// TestImpactLargeCatalog checks Impact on the large catalog against a naive reading of the
// chains: the downstream events are computed by repeating a pass over every step until nothing
// changes, instead of Impact's graph walk.
func TestImpactLargeCatalog(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(os.DirFS(largeDir))
	if err != nil {
		t.Fatal(err)
	}
	mostConsumed := slices.MaxFunc(c.Events, func(a, b catalog.Event) int {
		return len(c.Consumers(a.Name)) - len(c.Consumers(b.Name))
	}).Name
	busiest := slices.MaxFunc(c.Services, func(a, b catalog.Service) int {
		return len(a.Consumes) + len(a.Produces) - len(b.Consumes) - len(b.Produces)
	}).Name
	saga := c.Chains[4] // every fifth chain is a saga
	tests := []struct{ name, subject string }{
		{"first event", c.Events[0].Name},
		{"event with the most consumers (fan-out)", mostConsumed},
		{"event that makes a saga compensate", saga.Steps[len(saga.Steps)-2].Emits},
		{"service that started a saga", saga.Steps[0].Service},
		{"busiest service (fan-in)", busiest},
		{"last event", c.Events[len(c.Events)-1].Name},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Impact(tc.subject)
			if err != nil {
				t.Fatal(err)
			}
			assertImpact(t, got, naiveImpact(c, tc.subject))
			t.Logf("%s: %d consumers, %d downstream events, %d services, %d chains, %d effects", tc.subject,
				len(got.Consumers), len(got.Downstream), len(got.Services), len(got.Chains), len(got.Effects))
			if len(got.Chains) == 0 || len(got.Effects) == 0 {
				t.Errorf("%s passes through no chain or reaches no effect; every event and service of the large catalog should", tc.subject)
			}
		})
	}
	t.Run("the saga's compensation is among the effects of its first event", func(t *testing.T) {
		im, err := c.Impact(saga.Steps[0].Emits)
		if err != nil {
			t.Fatal(err)
		}
		last := saga.Steps[len(saga.Steps)-1]
		if !slices.Contains(im.Effects, catalog.Effect{Service: last.Service, Effect: last.Effect}) {
			t.Errorf("effects of %s = %v, want %s: %s", saga.Steps[0].Emits, im.Effects, last.Service, last.Effect)
		}
	})
}

func naiveImpact(c *catalog.Catalog, subject string) catalog.Impact {
	im := catalog.Impact{Subject: subject, Kind: "event", Events: []string{subject}}
	if s, ok := c.Service(subject); ok {
		im.Kind, im.Events = "service", append([]string{}, s.Produces...)
	}
	reached := map[string]bool{}
	for _, e := range im.Events {
		reached[e] = true
	}
	for changed := true; changed; {
		changed = false
		for _, ch := range c.Chains {
			for j := 1; j < len(ch.Steps); j++ {
				if e := ch.Steps[j].Emits; reached[ch.Steps[j-1].Emits] && e != "" && !reached[e] {
					reached[e], changed = true, true
				}
			}
		}
	}
	im.Downstream, im.Consumers, im.Services = []string{}, []string{}, []string{}
	for _, e := range c.Events {
		if reached[e.Name] && !slices.Contains(im.Events, e.Name) {
			im.Downstream = append(im.Downstream, e.Name)
		}
	}
	for _, s := range c.Services {
		direct, reacts := false, false
		for _, e := range s.Consumes {
			direct = direct || slices.Contains(im.Events, e)
			reacts = reacts || reached[e]
		}
		if direct {
			im.Consumers = append(im.Consumers, s.Name)
		}
		if reacts {
			im.Services = append(im.Services, s.Name)
		}
	}
	effects := map[catalog.Effect]bool{}
	im.Chains = []catalog.ChainEnd{}
	for _, ch := range c.Chains {
		last := ch.Steps[len(ch.Steps)-1]
		if slices.ContainsFunc(ch.Steps, func(st catalog.Step) bool {
			return st.Emits == subject || st.Service == subject && im.Kind == "service"
		}) {
			im.Chains = append(im.Chains, catalog.ChainEnd{Chain: ch.Name, Service: last.Service, Effect: last.Effect, Event: last.Emits})
			if last.Effect != "" {
				effects[catalog.Effect{Service: last.Service, Effect: last.Effect}] = true
			}
		}
		for j := 1; j < len(ch.Steps); j++ {
			if fx := ch.Steps[j].Effect; fx != "" && reached[ch.Steps[j-1].Emits] {
				effects[catalog.Effect{Service: ch.Steps[j].Service, Effect: fx}] = true
			}
		}
	}
	im.Effects = []catalog.Effect{}
	for fx := range effects {
		im.Effects = append(im.Effects, fx)
	}
	slices.SortFunc(im.Effects, func(a, b catalog.Effect) int {
		return strings.Compare(a.Service+"\x00"+a.Effect, b.Service+"\x00"+b.Effect)
	})
	return im
}
