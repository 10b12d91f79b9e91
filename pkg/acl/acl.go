// Package acl derives each service's Kafka permissions from the event catalog, which already
// says who produces and consumes what, and applies and checks them on a cluster with kadm.
//
// Every service gets a principal of its own (User:<service>) with exactly what it needs to run:
// READ on the topics it consumes and on its consumer group, WRITE and DESCRIBE on the topics it
// produces, WRITE and DESCRIBE on its dead-letter topic (it parks records there). Replaying
// parked records writes them back to the topics the service consumes, which the service itself
// must not be able to write; so replay has a principal of its own (User:<service>-dlq) with
// READ on the dead-letter topic, WRITE on the consumed topics, and READ and WRITE on the topic
// recording replays.
//
// No service may create topics: an administrator provisions them (Apply does, as the admin),
// and a service at start-up only checks that its topics exist. That keeps topic settings
// (partitions, replication) in one place, and a compromised or misconfigured service cannot
// create topics with settings of its own or fill the cluster with them.
package acl

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/dlq"
)

// ClusterName is the resource name of the cluster in ACLs.
const ClusterName = "kafka-cluster"

// Grant is one ALLOW ACL: Principal may do Operation on the resource (literal name, any host).
type Grant struct {
	Principal string // "User:<name>"
	Resource  kmsg.ACLResourceType
	Name      string
	Operation kadm.ACLOperation
	// Why says which catalog fact the grant comes from; not part of the ACL.
	Why string
}

// Key identifies the ACL, without Why.
func (g Grant) Key() string {
	return fmt.Sprintf("%s %s %s:%s", g.Principal, g.Operation, strings.ToLower(g.Resource.String()), g.Name)
}

// String reads like "User:user-service READ topic:accounts".
func (g Grant) String() string { return g.Key() }

// Principal is one SCRAM user of the plan and its grants.
type Principal struct {
	// User is the SCRAM user name; the ACL principal is "User:" + User.
	User   string
	Grants []Grant
}

// Plan is every principal the catalog implies, with its grants, in catalog order.
type Plan struct {
	Principals []Principal
}

// Grants returns every grant of the plan.
func (p Plan) Grants() []Grant {
	var out []Grant
	for _, pr := range p.Principals {
		out = append(out, pr.Grants...)
	}
	return out
}

// Users returns the plan's user names.
func (p Plan) Users() []string {
	out := make([]string, len(p.Principals))
	for i, pr := range p.Principals {
		out[i] = pr.User
	}
	return out
}

// Topics returns the topics the plan's services use, with the partitions each should be created
// with: the catalog's topics and each group's dead-letter topic take partitions; the replays
// topics take one (they are compacted logs of which record was replayed).
func (p Plan) Topics() []string {
	var out []string
	for _, g := range p.Grants() {
		if g.Resource == kmsg.ACLResourceTypeTopic && !slices.Contains(out, g.Name) {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}

type options struct {
	namespace       string
	idempotentWrite bool
}

// Opt configures Derive.
type Opt func(*options)

// Namespace scopes topics, groups and user names as service.Config.Scoped does
// ("<ns>.<name>"). Default "": no namespace.
func Namespace(ns string) Opt { return func(o *options) { o.namespace = ns } }

// IdempotentWrite adds IDEMPOTENT_WRITE on the cluster for every principal that produces.
// Brokers before Kafka 3.0 need it for idempotent producers; later ones accept WRITE on any
// topic instead (KIP-679). Default false.
func IdempotentWrite(on bool) Opt { return func(o *options) { o.idempotentWrite = on } }

// Derive returns the grants the catalog implies for its services.
func Derive(cat *catalog.Catalog, opts ...Opt) (Plan, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	scoped := func(n string) string {
		if o.namespace == "" {
			return n
		}
		return o.namespace + "." + n
	}
	topicOf := func(event string) (string, error) {
		e, ok := cat.Event(event)
		if !ok {
			return "", fmt.Errorf("event %s is not in the catalog: %w", event, catalog.ErrInvalid)
		}
		return scoped(e.Topic), nil
	}
	var plan Plan
	for _, s := range cat.Services {
		user := scoped(s.Name)
		svc := Principal{User: user}
		add := func(p *Principal, res kmsg.ACLResourceType, name string, op kadm.ACLOperation, why string) {
			g := Grant{Principal: "User:" + p.User, Resource: res, Name: name, Operation: op, Why: why}
			if !slices.ContainsFunc(p.Grants, func(h Grant) bool { return h.Key() == g.Key() }) {
				p.Grants = append(p.Grants, g)
			}
		}
		var consumed []string
		for _, ev := range s.Consumes {
			t, err := topicOf(ev)
			if err != nil {
				return Plan{}, err
			}
			add(&svc, kmsg.ACLResourceTypeTopic, t, kadm.OpRead, "consumes "+ev)
			if !slices.Contains(consumed, t) {
				consumed = append(consumed, t)
			}
		}
		for _, ev := range s.Produces {
			t, err := topicOf(ev)
			if err != nil {
				return Plan{}, err
			}
			add(&svc, kmsg.ACLResourceTypeTopic, t, kadm.OpWrite, "produces "+ev)
			add(&svc, kmsg.ACLResourceTypeTopic, t, kadm.OpDescribe, "produces "+ev)
		}
		var replay *Principal
		if s.Group != "" {
			group := scoped(s.Group)
			dead := deadletter.Topic(group)
			add(&svc, kmsg.ACLResourceTypeGroup, group, kadm.OpRead, "consumer group")
			add(&svc, kmsg.ACLResourceTypeTopic, dead, kadm.OpWrite, "parks records it cannot process")
			add(&svc, kmsg.ACLResourceTypeTopic, dead, kadm.OpDescribe, "parks records it cannot process")

			replay = &Principal{User: user + "-dlq"}
			add(replay, kmsg.ACLResourceTypeTopic, dead, kadm.OpRead, "reads parked records")
			add(replay, kmsg.ACLResourceTypeTopic, dead, kadm.OpDescribe, "reads parked records")
			for _, t := range consumed {
				add(replay, kmsg.ACLResourceTypeTopic, t, kadm.OpWrite, "replays parked records to the topic they came from")
			}
			replays := dlq.ReplaysTopic(group)
			add(replay, kmsg.ACLResourceTypeTopic, replays, kadm.OpRead, "records which parked records were replayed")
			add(replay, kmsg.ACLResourceTypeTopic, replays, kadm.OpWrite, "records which parked records were replayed")
		}
		for _, p := range []*Principal{&svc, replay} {
			if p == nil {
				continue
			}
			if o.idempotentWrite && slices.ContainsFunc(p.Grants, func(g Grant) bool { return g.Operation == kadm.OpWrite }) {
				add(p, kmsg.ACLResourceTypeCluster, ClusterName, kadm.OpIdempotentWrite, "idempotent producer on a broker before Kafka 3.0")
			}
			plan.Principals = append(plan.Principals, *p)
		}
	}
	return plan, nil
}

// Drift is the difference between the live ACLs of the plan's principals and the plan.
type Drift struct {
	// Missing are grants of the plan the cluster lacks.
	Missing []Grant
	// Extra are ACLs the cluster has for the plan's principals (or for every user, User:*)
	// that the plan does not: any DENY, any host other than *, any prefixed pattern, any
	// operation the catalog does not imply.
	Extra []kadm.DescribedACL
	// MissingUsers are the plan's users that have no SCRAM credentials.
	MissingUsers []string
}

// Empty reports whether the cluster matches the plan.
func (d Drift) Empty() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.MissingUsers) == 0
}

// Describe returns a described ACL as "ALLOW User:x READ topic:t (host *, literal)".
func Describe(a kadm.DescribedACL) string {
	return fmt.Sprintf("%s %s %s %s:%s (host %s, %s)", a.Permission, a.Principal, a.Operation,
		strings.ToLower(a.Type.String()), a.Name, a.Host, strings.ToLower(a.Pattern.String()))
}

// compare computes the drift of live against plan; users are the plan's users that have
// SCRAM credentials.
func compare(plan Plan, live []kadm.DescribedACL, users []string) Drift {
	principals := map[string]bool{"User:*": true}
	for _, p := range plan.Principals {
		principals["User:"+p.User] = true
	}
	want := make(map[string]bool)
	for _, g := range plan.Grants() {
		want[g.Key()] = true
	}
	var d Drift
	have := make(map[string]bool)
	for _, a := range live {
		if !principals[a.Principal] {
			continue
		}
		g := Grant{Principal: a.Principal, Resource: a.Type, Name: a.Name, Operation: a.Operation}
		exact := a.Permission == kmsg.ACLPermissionTypeAllow && a.Host == "*" && a.Pattern == kadm.ACLPatternLiteral
		if exact && want[g.Key()] {
			have[g.Key()] = true
			continue
		}
		d.Extra = append(d.Extra, a)
	}
	for _, g := range plan.Grants() {
		if !have[g.Key()] {
			d.Missing = append(d.Missing, g)
		}
	}
	for _, u := range plan.Users() {
		if !slices.Contains(users, u) {
			d.MissingUsers = append(d.MissingUsers, u)
		}
	}
	slices.SortFunc(d.Extra, func(a, b kadm.DescribedACL) int {
		return cmp.Or(cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Operation, b.Operation))
	})
	return d
}
