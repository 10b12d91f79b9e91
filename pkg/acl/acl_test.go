package acl_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/choreo-dev/choreo/pkg/acl"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

func plan(t *testing.T, opts ...acl.Opt) acl.Plan {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	p, err := acl.Derive(cat, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keys(gs []acl.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Key()
	}
	return out
}

func TestDerive(t *testing.T) {
	t.Parallel()
	p := plan(t, acl.Namespace("prod"))
	want := map[string][]string{
		"prod.user-service": {
			"User:prod.user-service READ topic:prod.accounts",
			"User:prod.user-service WRITE topic:prod.users",
			"User:prod.user-service DESCRIBE topic:prod.users",
			"User:prod.user-service READ group:prod.user-service",
			"User:prod.user-service WRITE topic:prod.user-service.dlq",
			"User:prod.user-service DESCRIBE topic:prod.user-service.dlq",
		},
		"prod.user-service-dlq": {
			"User:prod.user-service-dlq READ topic:prod.user-service.dlq",
			"User:prod.user-service-dlq DESCRIBE topic:prod.user-service.dlq",
			"User:prod.user-service-dlq WRITE topic:prod.accounts",
			"User:prod.user-service-dlq READ topic:prod.user-service.dlq.replays",
			"User:prod.user-service-dlq WRITE topic:prod.user-service.dlq.replays",
		},
		"prod.notification-service": {
			"User:prod.notification-service READ topic:prod.users",
			"User:prod.notification-service READ group:prod.notification-service",
			"User:prod.notification-service WRITE topic:prod.notification-service.dlq",
			"User:prod.notification-service DESCRIBE topic:prod.notification-service.dlq",
		},
	}
	got := map[string][]string{}
	for _, pr := range p.Principals {
		got[pr.User] = keys(pr.Grants)
	}
	for user, w := range want {
		if !slices.Equal(got[user], w) {
			t.Errorf("%s:\n got %q\nwant %q", user, got[user], w)
		}
	}
	if len(p.Principals) != 6 {
		t.Errorf("principals %v, want a service and a replay principal for each of 3 services", p.Users())
	}
	for _, g := range p.Grants() {
		// Nothing beyond what the services do: no CREATE (an admin provisions topics), no
		// cluster-wide grant, no wildcard.
		if g.Operation == kadm.OpCreate || g.Operation == kadm.OpAll || strings.Contains(g.Name, "*") || g.Name == acl.ClusterName {
			t.Errorf("grant %s is more than the catalog implies", g)
		}
		if g.Why == "" {
			t.Errorf("grant %s has no reason", g)
		}
	}
	if !slices.Equal(p.Topics(), []string{"prod.account-service.dlq", "prod.account-service.dlq.replays", "prod.accounts",
		"prod.notification-service.dlq", "prod.notification-service.dlq.replays", "prod.user-service.dlq", "prod.user-service.dlq.replays", "prod.users"}) {
		t.Errorf("topics %v", p.Topics())
	}

	idem := plan(t, acl.IdempotentWrite(true))
	var producers []string
	for _, g := range idem.Grants() {
		if g.Operation == kadm.OpIdempotentWrite {
			producers = append(producers, strings.TrimPrefix(g.Principal, "User:"))
		}
	}
	// Every principal writes something (a topic, its dead-letter topic, or replays).
	if !slices.Equal(producers, idem.Users()) {
		t.Errorf("IDEMPOTENT_WRITE for %v, want %v", producers, idem.Users())
	}
}

// TestApplyCheckOnKfake applies the plan to the embedded broker with ACLs on, checks it, and
// makes drift of each kind.
func TestApplyCheckOnKfake(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("SCRAM-SHA-512", "admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p := plan(t)

	d, err := acl.Check(ctx, adm, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Missing) != len(p.Grants()) || len(d.MissingUsers) != len(p.Principals) || len(d.Extra) != 0 {
		t.Fatalf("before apply: %d missing, %d users missing, %d extra; want everything missing", len(d.Missing), len(d.MissingUsers), len(d.Extra))
	}
	pws := map[string]string{}
	for _, u := range p.Users() {
		pws[u] = "pw-" + u
	}
	if err := acl.UpsertUsers(ctx, adm, pws); err != nil {
		t.Fatal(err)
	}
	for range 2 { // apply is idempotent
		if err := acl.Apply(ctx, adm, p); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := acl.Check(ctx, adm, p); err != nil || !d.Empty() {
		t.Fatalf("after apply: %+v %v", d, err)
	}

	grant := func(b *kadm.ACLBuilder) {
		t.Helper()
		if _, err := adm.CreateACLs(ctx, b.ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}
	}
	grant(kadm.NewACLs().Allow("User:user-service").AllowHosts("*").Topics("accounts").Operations(kadm.OpWrite))
	grant(kadm.NewACLs().Allow("User:*").AllowHosts("*").Topics("users").Operations(kadm.OpRead))
	grant(kadm.NewACLs().Allow("User:someone-else").AllowHosts("*").Topics("users").Operations(kadm.OpWrite)) // not ours
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:notification-service").AllowHosts("*").Groups("notification-service").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
		t.Fatal(err)
	}
	d, err = acl.Check(ctx, adm, p)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, a := range d.Extra {
		extra = append(extra, acl.Describe(a))
	}
	wantExtra := []string{
		"ALLOW User:* READ topic:users (host *, literal)",
		"ALLOW User:user-service WRITE topic:accounts (host *, literal)",
	}
	if !slices.Equal(extra, wantExtra) {
		t.Errorf("extra:\n got %q\nwant %q", extra, wantExtra)
	}
	if got := keys(d.Missing); !slices.Equal(got, []string{"User:notification-service READ group:notification-service"}) {
		t.Errorf("missing %q", got)
	}
}
