package trace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

// rec describes a synthetic record: an event's headers and position, and for a parked record
// the group and error the runner adds.
type rec struct {
	typ, id, corr, cause, source string
	topic                        string
	partition                    int32
	offset                       int64
	at                           time.Duration // after t0
	// parkedBy, when set, makes the record a parked copy on "<parkedBy>.dlq".
	parkedBy, handler, err string
}

func (r rec) record() *kgo.Record {
	env := envelope.Envelope{
		ID: r.id, Type: r.typ, Source: r.source, Time: t0.Add(r.at), CorrelationID: r.corr, CausationID: r.cause,
	}
	k := &kgo.Record{
		Topic: r.topic, Partition: r.partition, Offset: r.offset, Key: []byte("acc-1"), Timestamp: t0.Add(r.at),
		Headers: env.AppendHeaders(nil),
	}
	if r.parkedBy != "" {
		for _, h := range [][2]string{
			{deadletter.HeaderTopic, r.topic}, {deadletter.HeaderPartition, "0"}, {deadletter.HeaderOffset, "7"},
			{deadletter.HeaderGroup, r.parkedBy}, {deadletter.HeaderHandler, r.handler}, {deadletter.HeaderReason, "handler"},
			{deadletter.HeaderClass, "permanent"}, {deadletter.HeaderError, r.err}, {deadletter.HeaderAttempts, "1"},
			{deadletter.HeaderTime, t0.Add(r.at + 5*time.Millisecond).Format(time.RFC3339Nano)},
		} {
			k.Headers = append(k.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		k.Topic, k.Offset = r.parkedBy+".dlq", 0
	}
	return k
}

// The events of a registration, as the services emit them.
var (
	accountCreated = rec{typ: "AccountCreated", id: "a1", corr: "a1", source: "/account-service", topic: "accounts", offset: 15}
	userCreated    = rec{typ: "UserCreated", id: "u1", corr: "a1", cause: "a1", source: "/user-service", topic: "users", offset: 7, at: 3 * time.Millisecond}
	userRejected   = rec{typ: "UserRegistrationRejected", id: "r1", corr: "a1", cause: "a1", source: "/user-service", topic: "users", offset: 8, at: 4 * time.Millisecond}
	accountDeleted = rec{typ: "AccountDeleted", id: "d1", corr: "d1", source: "/account-service", topic: "accounts", offset: 16, at: time.Second}
)

func with(r rec, edit func(*rec)) rec {
	edit(&r)
	return r
}

func build(correlationID string, rs ...rec) *trace.Trace {
	var recs []*kgo.Record
	for _, r := range rs {
		recs = append(recs, r.record())
	}
	return trace.FromRecords(context.Background(), nil, correlationID, recs)
}

// shape renders a trace's tree compactly: "Type(id)[child child]", parked nodes as "PARKED:Type".
func shape(ns []*trace.Node) string {
	var parts []string
	for _, n := range ns {
		s := n.Type + "(" + n.ID + ")"
		if n.Parked != nil {
			s = "PARKED:" + s
		}
		if len(n.Children) > 0 {
			s += "[" + shape(n.Children) + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func loadCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestTreeShape(t *testing.T) {
	t.Parallel()
	other := rec{typ: "AccountCreated", id: "a2", corr: "a2", source: "/account-service", topic: "accounts", offset: 20}
	tests := []struct {
		name string
		recs []rec
		want string
	}{
		{name: "a chain", recs: []rec{accountCreated, userCreated}, want: "AccountCreated(a1)[UserCreated(u1)]"},
		{name: "given in any order", recs: []rec{userCreated, accountCreated}, want: "AccountCreated(a1)[UserCreated(u1)]"},
		{name: "other operations left out", recs: []rec{other, accountCreated, with(userCreated, func(r *rec) { r.corr = "a2" }), userRejected},
			want: "AccountCreated(a1)[UserRegistrationRejected(r1)]"},
		{name: "first event without a correlation ID", recs: []rec{with(accountCreated, func(r *rec) { r.corr = "" }), userCreated},
			want: "AccountCreated(a1)[UserCreated(u1)]"},
		{name: "children by time", recs: []rec{accountCreated, userRejected, userCreated},
			want: "AccountCreated(a1)[UserCreated(u1) UserRegistrationRejected(r1)]"},
		{name: "equal times by position", recs: []rec{accountCreated, with(userRejected, func(r *rec) { r.at = userCreated.at }), userCreated},
			want: "AccountCreated(a1)[UserCreated(u1) UserRegistrationRejected(r1)]"},
		{name: "cause not in the trace: a root", recs: []rec{userCreated}, want: "UserCreated(u1)"},
		{name: "roots by time", recs: []rec{with(userCreated, func(r *rec) { r.cause = "gone" }), with(accountCreated, func(r *rec) { r.at = time.Hour })},
			want: "UserCreated(u1) AccountCreated(a1)"},
		{name: "a cycle of causes broken at its earliest event", recs: []rec{
			with(accountCreated, func(r *rec) { r.cause = "u1" }), userCreated,
			{typ: "UserDeleted", id: "x1", corr: "a1", cause: "u1", source: "/user-service", topic: "users", offset: 9, at: time.Second},
		}, want: "AccountCreated(a1)[UserCreated(u1)[UserDeleted(x1)]]"},
		{name: "caused by itself: a root", recs: []rec{with(accountCreated, func(r *rec) { r.cause = "a1" })}, want: "AccountCreated(a1)"},
		{name: "parked leaf under the event it copies", recs: []rec{
			accountCreated, with(accountCreated, func(r *rec) { r.parkedBy, r.err = "user-service", "boom" }),
		}, want: "AccountCreated(a1)[PARKED:AccountCreated(a1)]"},
		{name: "parked after the events it came before", recs: []rec{
			accountCreated, userCreated, with(userCreated, func(r *rec) { r.parkedBy, r.err = "notification-service", "smtp down" }),
		}, want: "AccountCreated(a1)[UserCreated(u1)[PARKED:UserCreated(u1)]]"},
		{name: "parked without its event: under its cause", recs: []rec{
			accountCreated, with(userCreated, func(r *rec) { r.parkedBy, r.err = "notification-service", "smtp down" }),
		}, want: "AccountCreated(a1)[PARKED:UserCreated(u1)]"},
		{name: "copies of an event kept once", recs: []rec{accountCreated, userCreated, with(userCreated, func(r *rec) { r.offset, r.at = 30, time.Minute })},
			want: "AccountCreated(a1)[UserCreated(u1)]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := build("a1", tt.recs...)
			if got := shape(tr.Roots); got != tt.want {
				t.Errorf("tree = %s\nwant   %s", got, tt.want)
			}
		})
	}
}

func TestNodeFields(t *testing.T) {
	t.Parallel()
	copy2 := with(userCreated, func(r *rec) { r.offset, r.at = 30, time.Minute })
	parked := with(userCreated, func(r *rec) { r.parkedBy, r.handler, r.err = "ns.notification-service", "welcome-email", "smtp: 550" })
	tr := build("a1", copy2, parked, userCreated, accountCreated)
	if tr.CorrelationID != "a1" || tr.Root() == nil || tr.Root().ID != "a1" {
		t.Fatalf("root = %+v", tr.Root())
	}
	root := tr.Root()
	if root.Type != "AccountCreated" || root.Source != "/account-service" || root.Service() != "account-service" ||
		root.Topic != "accounts" || root.Offset != 15 || root.Key != "acc-1" || !root.Time.Equal(t0) || root.CausationID != "" {
		t.Errorf("root = %+v", root)
	}
	u, ok := tr.Event("u1")
	if !ok || u.Offset != 7 || u.Copies != 1 || u.CausationID != "a1" || !u.Time.Equal(t0.Add(3*time.Millisecond)) || len(u.Children) != 1 {
		t.Fatalf("UserCreated = %+v, want the first copy, counting the second", u)
	}
	p := u.Children[0]
	if p.Parked == nil || p.ID != "u1" || p.Topic != "ns.notification-service.dlq" || p.Parked.Group != "ns.notification-service" ||
		p.Parked.Handler != "welcome-email" || p.Parked.Error != "smtp: 550" || p.Parked.Class != "permanent" || p.Parked.Attempts != 1 ||
		p.Parked.SourceTopic != "users" || p.Parked.SourceOffset != 7 || !p.When().Equal(t0.Add(8*time.Millisecond)) || p.Parked.HandledLater {
		t.Errorf("parked = %+v %+v", p, p.Parked)
	}
	if got := len(tr.Events()); got != 3 {
		t.Errorf("Events() = %d nodes, want 3", got)
	}
}

func TestParkedThenHandled(t *testing.T) {
	t.Parallel()
	// The user-service parked AccountCreated, then (replayed) created the user after all.
	parked := with(accountCreated, func(r *rec) { r.parkedBy, r.handler, r.err = "ns.user-service", "create-user", "database is locked" })
	tr := build("a1", accountCreated, parked, with(userCreated, func(r *rec) { r.at = time.Minute }))
	p := tr.Root().Children[0]
	if p.Parked == nil || !p.Parked.HandledLater {
		t.Fatalf("first child = %+v, want the parked record, handled later", p)
	}
	if devs := tr.Check(loadCatalog(t)); len(devs) != 0 {
		t.Errorf("deviations of a parked record handled later: %v", devs)
	}
}

func TestFromRecordsDecodes(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(ctx, client, types)
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.Record(envelope.Envelope{ID: "a1", Source: "/account-service", Time: t0, CorrelationID: "a1"},
		&event.AccountCreated{AccountID: "acc-1", Username: "johndoe", Email: "johndoe@mail.com", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	// Published by hand without any header: typed by its schema, identified by its position.
	user, err := c.Record(envelope.Envelope{}, &event.UserCreated{UserID: "user-1", AccountID: "acc-1", Username: "johndoe", Email: "johndoe@mail.com", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	user.Headers, user.Offset, user.Timestamp = nil, 4, t0.Add(time.Second)
	garbage := &kgo.Record{Topic: "accounts", Offset: 16, Value: []byte("no event"), Timestamp: t0.Add(time.Minute),
		Headers: envelope.Envelope{ID: "g1", Type: "AccountDeleted", CorrelationID: "a1", CausationID: "a1", Time: t0.Add(time.Minute)}.AppendHeaders(nil)}
	parked := *created
	parked.Topic = "user-service.dlq"
	parked.Headers = append(slices.Clone(created.Headers), kgo.RecordHeader{Key: deadletter.HeaderTopic, Value: []byte("accounts")})

	tr := trace.FromRecords(ctx, c, "a1", []*kgo.Record{created, garbage, &parked})
	root := tr.Root()
	var ev map[string]any
	if err := json.Unmarshal(root.Event, &ev); err != nil || ev["username"] != "johndoe" || root.DecodeError != "" {
		t.Errorf("root event = %s (%v), decode error %q", root.Event, err, root.DecodeError)
	}
	if shape(tr.Roots) != "AccountCreated(a1)[PARKED:AccountCreated(a1) AccountDeleted(g1)]" {
		t.Fatalf("tree = %s", shape(tr.Roots))
	}
	if p := root.Children[0]; len(p.Event) == 0 || p.DecodeError != "" {
		t.Errorf("parked record not decoded: %+v", p)
	}
	if g := root.Children[1]; g.Event != nil || !strings.Contains(g.DecodeError, "Confluent") {
		t.Errorf("garbage = %+v, want its headers and the decode error", g)
	}

	id := envelope.RecordID(user.Topic, user.Partition, user.Offset)
	tr = trace.FromRecords(ctx, c, id, []*kgo.Record{user})
	if n := tr.Root(); n == nil || n.ID != id || n.Type != "UserCreated" || !n.Time.Equal(t0.Add(time.Second)) || n.Source != "" {
		t.Errorf("headerless record = %+v", n)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cat := loadCatalog(t)
	tests := []struct {
		name     string
		recs     []rec
		complete []string
		want     []string // each deviation, in order
	}{
		{name: "registration", recs: []rec{accountCreated, userCreated}, complete: []string{"Account registration"}},
		{name: "rejected registration", recs: []rec{accountCreated, userRejected}, complete: []string{"Account registration rejected"}},
		{name: "deletion", recs: []rec{with(accountDeleted, func(r *rec) { r.id, r.corr = "a1", "a1" }),
			{typ: "UserDeleted", id: "x1", corr: "a1", cause: "a1", source: "/user-service", topic: "users"}},
			complete: []string{"Account deletion"}},
		{name: "wrong producer", recs: []rec{accountCreated, with(userCreated, func(r *rec) { r.source = "/x-service" })},
			complete: []string{"Account registration"},
			want:     []string{"UserCreated was emitted by /x-service, the catalog says user-service"}},
		{name: "no source", recs: []rec{with(accountCreated, func(r *rec) { r.source = "" }), userCreated},
			complete: []string{"Account registration"},
			want:     []string{"AccountCreated has no ce_source, the catalog says account-service emits it"}},
		{name: "reaction by a service that does not consume the cause", recs: []rec{accountCreated, userCreated,
			{typ: "UserDeleted", id: "x1", corr: "a1", cause: "u1", source: "/user-service", topic: "users", at: time.Second}},
			complete: []string{"Account registration"},
			want: []string{
				"UserDeleted (by user-service) was caused by UserCreated, but the catalog does not have user-service consume UserCreated",
				`UserDeleted (by user-service) is not a step of catalog chain "Account registration"`,
			}},
		{name: "unknown event", recs: []rec{accountCreated, userCreated,
			{typ: "UserPromoted", id: "p1", corr: "a1", cause: "u1", source: "/user-service", topic: "users", at: time.Second}},
			complete: []string{"Account registration"},
			want: []string{
				"UserPromoted is not in the event catalog",
				"UserPromoted (by user-service) was caused by UserCreated, but the catalog does not have user-service consume UserCreated",
				`UserPromoted (by user-service) is not a step of catalog chain "Account registration"`,
			}},
		{name: "no chain starts with the first event", recs: []rec{with(userCreated, func(r *rec) { r.id, r.cause = "a1", "" })},
			want: []string{"no catalog chain starts with UserCreated"}},
		{name: "stopped halfway", recs: []rec{accountCreated},
			want: []string{`the operation stopped after AccountCreated: the catalog expects user-service to emit UserCreated (chain "Account registration") or user-service to emit UserRegistrationRejected (chain "Account registration rejected") next; not in Kafka yet`}},
		{name: "parked", recs: []rec{accountCreated, userCreated,
			with(userCreated, func(r *rec) {
				r.parkedBy, r.handler, r.err = "ns.notification-service", "welcome-email", "smtp:\n550 no such mailbox"
			})},
			complete: []string{"Account registration"},
			want:     []string{"notification-service parked UserCreated (handler welcome-email, permanent, 1 attempt): smtp: 550 no such mailbox"}},
		{name: "stopped at a parked record", recs: []rec{accountCreated,
			with(accountCreated, func(r *rec) { r.parkedBy, r.handler, r.err = "user-service", "create-user", "invalid account" })},
			want: []string{
				"user-service parked AccountCreated (handler create-user, permanent, 1 attempt): invalid account",
				`the operation stopped after AccountCreated: the catalog expects user-service to emit UserCreated (chain "Account registration") or user-service to emit UserRegistrationRejected (chain "Account registration rejected") next; not in Kafka yet`,
			}},
		{name: "cause missing", recs: []rec{userCreated},
			want: []string{"UserCreated was caused by event a1, which is not in the trace", "no catalog chain starts with UserCreated"}},
		{name: "two first events", recs: []rec{accountCreated, userCreated, with(accountCreated, func(r *rec) { r.id, r.offset, r.at = "a9", 40, time.Second })},
			complete: []string{"Account registration"},
			want: []string{
				"the operation has 2 first events (AccountCreated ce_id=a1, AccountCreated ce_id=a9); an operation starts with one event and each later one names its cause",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := build("a1", tt.recs...)
			cmp := tr.Compare(cat)
			if got := cmp.Complete(); !slices.Equal(got, tt.complete) {
				t.Errorf("complete chains = %q, want %q", got, tt.complete)
			}
			var got []string
			for _, d := range cmp.Deviations {
				got = append(got, d.Message)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("deviations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if devs := tr.Check(cat); len(devs) != len(cmp.Deviations) {
				t.Errorf("Check = %v, Compare = %v", devs, cmp.Deviations)
			}
		})
	}
}

func TestDeviationNamesItsEvent(t *testing.T) {
	t.Parallel()
	devs := build("a1", accountCreated, with(userCreated, func(r *rec) { r.source = "/x-service" })).Check(loadCatalog(t))
	if len(devs) != 1 || devs[0].EventID != "u1" || devs[0].String() != devs[0].Message {
		t.Errorf("deviations = %+v, want one about u1", devs)
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	cat := loadCatalog(t)
	for _, tt := range []struct {
		ns   string
		want []string
	}{
		{"", []string{"account-service.dlq", "accounts", "notification-service.dlq", "user-service.dlq", "users"}},
		{"t1", []string{"t1.account-service.dlq", "t1.accounts", "t1.notification-service.dlq", "t1.user-service.dlq", "t1.users"}},
	} {
		if got := trace.Topics(cat, tt.ns); !slices.Equal(got, tt.want) {
			t.Errorf("Topics(%q) = %q, want %q", tt.ns, got, tt.want)
		}
	}
}

// TestRender compares the text and Mermaid renderings with testdata/*.golden (go test -update
// rewrites them).
func TestRender(t *testing.T) {
	t.Parallel()
	cat := loadCatalog(t)
	for _, tt := range []struct {
		name string
		recs []rec
	}{
		{name: "registration", recs: []rec{accountCreated, userCreated}},
		{name: "parked", recs: []rec{accountCreated, with(accountCreated, func(r *rec) {
			r.parkedBy, r.handler, r.err = "user-service", "create-user", `invalid account: email "x" is <not> an address`
		})}},
		{name: "deviations", recs: []rec{accountCreated, with(userCreated, func(r *rec) { r.source = "/x-service" }),
			with(userCreated, func(r *rec) { r.offset, r.at = 9, time.Second })}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := build("a1", tt.recs...)
			cmp := tr.Compare(cat)
			var b bytes.Buffer
			if err := tr.WriteText(&b, cmp); err != nil {
				t.Fatal(err)
			}
			b.WriteString("\n")
			if err := tr.WriteMermaid(&b, cmp); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("rendering differs from %s (go test -update rewrites it):\n%s", golden, b.String())
			}
		})
	}
}
