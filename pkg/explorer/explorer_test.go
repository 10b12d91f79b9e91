package explorer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/explorer"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/schemas"
)

// fakeSource serves operations built in the test, as a Kafka source would find them.
type fakeSource struct {
	ops []*trace.Trace
	err error
}

func (f fakeSource) Recent(ctx context.Context, n int) ([]*trace.Trace, error) {
	if f.err != nil {
		return nil, f.err
	}
	if n < len(f.ops) {
		return f.ops[:n], nil
	}
	return f.ops, nil
}

func (f fakeSource) Find(ctx context.Context, id string) (*trace.Trace, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, t := range f.ops {
		for _, n := range t.Events() {
			if t.CorrelationID == id || n.ID == id {
				return t, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: %w", id, trace.ErrNotFound)
}

// blockingSource answers only when the request's context ends.
type blockingSource struct{}

func (blockingSource) Recent(ctx context.Context, _ int) ([]*trace.Trace, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (blockingSource) Find(ctx context.Context, _ string) (*trace.Trace, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// registration is an Account registration: AccountCreated, then UserCreated 12ms later.
func registration(corr string) *trace.Trace {
	user := &trace.Node{Type: "UserCreated", ID: corr + "-u", Source: "/user-service", CorrelationID: corr, CausationID: corr,
		Topic: "users", Partition: 1, Offset: 7, Time: t0.Add(12 * time.Millisecond), Key: "a1",
		Event: json.RawMessage(`{"userId":"u1"}`)}
	acc := &trace.Node{Type: "AccountCreated", ID: corr, Source: "/account-service", CorrelationID: corr,
		Topic: "accounts", Partition: 1, Offset: 3, Time: t0, Key: "a1", Children: []*trace.Node{user}}
	return &trace.Trace{CorrelationID: corr, Roots: []*trace.Node{acc}}
}

// parkedRegistration is a registration whose AccountCreated the user-service parked.
func parkedRegistration(corr string) *trace.Trace {
	t := registration(corr)
	acc := t.Roots[0]
	acc.Children = []*trace.Node{{Type: "AccountCreated", ID: corr, Source: "/account-service", CorrelationID: corr,
		Topic: "user-service.dlq", Time: t0.Add(30 * time.Millisecond), Parked: &trace.Parked{
			Group: "user-service", Handler: "create-user", Error: "boom: database is gone", Attempts: 3,
			At: t0.Add(30 * time.Millisecond), SourceTopic: "accounts", SourcePartition: 1, SourceOffset: 3,
		}}}
	return t
}

// effectsServer serves GET /effects as the notification service does: a welcome email for the
// UserCreated of each operation, with the given status.
func effectsServer(t *testing.T, status string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/effects" {
			http.NotFound(w, r)
			return
		}
		corr := r.URL.Query().Get("correlationId")
		done := t0.Add(20 * time.Millisecond)
		_ = json.NewEncoder(w).Encode([]trace.Effect{{Service: "notification-service", Effect: "welcome email",
			EventID: corr + "-u", CorrelationID: corr, Status: status, At: t0.Add(15 * time.Millisecond), DoneAt: &done}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func builtin(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func serve(t *testing.T, cat *catalog.Catalog, src explorer.Source, opts ...explorer.Option) *httptest.Server {
	t.Helper()
	ex, err := explorer.New(cat, src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ex)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and decodes its JSON into out (unless nil); it returns the status.
func get(t *testing.T, srv *httptest.Server, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(path, "/api/") && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %v: %s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

type apiError struct{ Error string }

func TestCatalogAPI(t *testing.T) {
	t.Parallel()
	cat := builtin(t)
	srv := serve(t, cat, fakeSource{}, explorer.WithSchemas(schemas.FS))

	var c struct {
		Events []struct {
			Name, Topic, Key, Producer, Compatibility string
			Consumers                                 []string
		}
		Services []struct {
			Name                       string
			Consumes, Produces, Effect []string
		}
		Chains []struct {
			Name, Trigger string
			Steps         []struct{ Service, Emits, Effect string }
		}
	}
	if code := get(t, srv, "GET", "/api/catalog", &c); code != http.StatusOK {
		t.Fatalf("GET /api/catalog: %d", code)
	}
	if len(c.Events) != len(cat.Events) || len(c.Services) != len(cat.Services) || len(c.Chains) != len(cat.Chains) {
		t.Fatalf("catalog: %d events, %d services, %d chains; want %d, %d, %d", len(c.Events), len(c.Services), len(c.Chains),
			len(cat.Events), len(cat.Services), len(cat.Chains))
	}
	for _, e := range c.Events {
		if e.Name == "AccountCreated" && (e.Topic != "accounts" || e.Producer != "account-service" ||
			strings.Join(e.Consumers, ",") != "user-service" || e.Compatibility != "BACKWARD_TRANSITIVE") {
			t.Errorf("AccountCreated: %+v", e)
		}
	}
	var reg bool
	for _, ch := range c.Chains {
		if ch.Name == "Account registration" {
			reg = true
			last := ch.Steps[len(ch.Steps)-1]
			if ch.Trigger != "POST /accounts" || last.Effect != "welcome email" || last.Service != "notification-service" {
				t.Errorf("chain %+v", ch)
			}
		}
	}
	if !reg {
		t.Error("no chain Account registration")
	}

	var ev struct {
		Name   string
		Schema struct {
			Type, Name string
			Fields     []struct{ Name string }
		}
		Impact catalog.Impact
	}
	if code := get(t, srv, "GET", "/api/events/AccountCreated", &ev); code != http.StatusOK {
		t.Fatalf("GET /api/events/AccountCreated: %d", code)
	}
	want, _ := cat.Impact("AccountCreated")
	if ev.Schema.Type != "record" || ev.Schema.Name != "AccountCreated" || len(ev.Schema.Fields) == 0 ||
		strings.Join(ev.Impact.Downstream, ",") != strings.Join(want.Downstream, ",") || len(ev.Impact.Chains) != len(want.Chains) {
		t.Errorf("event: %+v", ev)
	}
	var svc struct {
		Name     string
		Consumes []string
		Impact   catalog.Impact
	}
	if code := get(t, srv, "GET", "/api/services/user-service", &svc); code != http.StatusOK || svc.Impact.Kind != "service" ||
		len(svc.Consumes) == 0 {
		t.Errorf("GET /api/services/user-service: %d %+v", code, svc)
	}
	var ch struct {
		Name  string
		Steps []struct{ Service, Emits, Effect string }
	}
	if code := get(t, srv, "GET", "/api/chains/"+url.PathEscape("Account registration"), &ch); code != http.StatusOK || len(ch.Steps) != 3 {
		t.Errorf("GET /api/chains/Account registration: %d %+v", code, ch)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cat := builtin(t)
	srv := serve(t, cat, fakeSource{ops: []*trace.Trace{registration("op1")}})
	broken := serve(t, cat, fakeSource{err: errors.New("unable to dial: connection refused")})
	slow := serve(t, cat, blockingSource{}, explorer.WithTimeout(50*time.Millisecond))
	for _, tc := range []struct {
		name, method, path string
		srv                *httptest.Server
		code               int
		want               string
	}{
		{"unknown event", "GET", "/api/events/NoSuchEvent", srv, 404, `event "NoSuchEvent" is not in the catalog`},
		{"unknown service", "GET", "/api/services/nobody", srv, 404, `service "nobody" is not in the catalog`},
		{"unknown chain", "GET", "/api/chains/nothing", srv, 404, `chain "nothing" is not in the catalog`},
		{"unknown operation", "GET", "/api/operations/no-such-id", srv, 404, "no event with that ID"},
		{"n not a number", "GET", "/api/operations?n=ten", srv, 400, `n="ten": want a number of operations from 1 to 200`},
		{"n too big", "GET", "/api/operations?n=100000", srv, 400, "from 1 to 200"},
		{"n zero", "GET", "/api/operations?n=0", srv, 400, "from 1 to 200"},
		{"id too long", "GET", "/api/operations/" + strings.Repeat("x", 300), srv, 400, "want an event ID or a correlation ID"},
		{"unknown endpoint", "GET", "/api/nothing", srv, 404, "no such API endpoint: /api/nothing"},
		{"write", "POST", "/api/catalog", srv, 405, "method POST not allowed"},
		{"delete the page", "DELETE", "/", srv, 405, "method DELETE not allowed"},
		{"kafka failing", "GET", "/api/operations", broken, 502, "reading Kafka: unable to dial"},
		{"kafka failing, one", "GET", "/api/operations/op1", broken, 502, "reading Kafka: unable to dial"},
		{"kafka slow", "GET", "/api/operations/op1", slow, 504, "reading Kafka took longer than 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e apiError
			if code := get(t, tc.srv, tc.method, tc.path, &e); code != tc.code || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%s %s: %d %q, want %d and %q", tc.method, tc.path, code, e.Error, tc.code, tc.want)
			}
		})
	}
}

// opJSON is the part of GET /api/operations/{id} the tests read.
type opJSON struct {
	CorrelationID string
	Status        string
	Matches       bool
	Summary       trace.Summary
	Chains        []trace.ChainState
	Deviations    []trace.Deviation
	Roots         []opNode
	Warnings      []string
	EffectsAsOf   map[string]time.Time
}

type opNode struct {
	Type, ID string
	AtMS     float64
	HopMS    *float64
	Parked   *trace.Parked
	Event    map[string]any
	Children []opNode
	Effects  []struct {
		Effect, Service, Status string
		HopMS                   float64
	}
	Expected   []trace.Expected
	Deviations []string
}

func TestOperation(t *testing.T) {
	t.Parallel()
	cat := builtin(t)
	fx := effectsServer(t, trace.EffectSent)
	srv := serve(t, cat, fakeSource{ops: []*trace.Trace{registration("op1"), parkedRegistration("op2")}},
		explorer.WithEffects(map[string]string{"notification-service": fx.URL}))

	var op opJSON
	if code := get(t, srv, "GET", "/api/operations/op1-u", &op); code != http.StatusOK {
		t.Fatalf("GET /api/operations/op1-u: %d", code)
	}
	if op.CorrelationID != "op1" || op.Status != "complete" || !op.Matches || len(op.Deviations) != 0 ||
		len(op.Chains) != 1 || op.Chains[0].Name != "Account registration" || op.Summary.Events != 2 || op.Summary.DurationMS != 20 {
		t.Errorf("operation: %+v", op)
	}
	if len(op.Roots) != 1 || op.Roots[0].Type != "AccountCreated" || op.Roots[0].HopMS != nil || len(op.Roots[0].Children) != 1 {
		t.Fatalf("roots: %+v", op.Roots)
	}
	user := op.Roots[0].Children[0]
	if user.Type != "UserCreated" || user.HopMS == nil || *user.HopMS != 12 || user.AtMS != 12 || user.Event["userId"] != "u1" {
		t.Errorf("UserCreated: %+v", user)
	}
	if len(user.Effects) != 1 || user.Effects[0].Effect != "welcome email" || user.Effects[0].Status != "sent" || user.Effects[0].HopMS != 8 {
		t.Errorf("effects of UserCreated: %+v", user.Effects)
	}
	if len(user.Expected) != 1 || user.Expected[0].Observed == nil || !user.Expected[0].Asked || user.Expected[0].Chain != "Account registration" {
		t.Errorf("expected after UserCreated: %+v", user.Expected)
	}
	if _, ok := op.EffectsAsOf["notification-service"]; !ok {
		t.Errorf("effects as of: %v", op.EffectsAsOf)
	}

	// The parked record: a leaf under its event, the deviation shown on the event.
	// and the step the catalog expects next, missing.
	op = opJSON{}
	if code := get(t, srv, "GET", "/api/operations/op2", &op); code != http.StatusOK {
		t.Fatalf("GET /api/operations/op2: %d", code)
	}
	if op.Status != "parked" || op.Matches || len(op.Deviations) != 2 {
		t.Fatalf("parked operation: %+v", op)
	}
	acc := op.Roots[0]
	var parked *opNode
	for i, c := range acc.Children {
		if c.Parked != nil {
			parked = &acc.Children[i]
		}
	}
	if parked == nil || parked.Parked.Error != "boom: database is gone" || *parked.HopMS != 30 {
		t.Fatalf("no parked leaf under AccountCreated: %+v", acc.Children)
	}
	if len(acc.Deviations) != 2 || !strings.Contains(acc.Deviations[0], "user-service parked AccountCreated (handler create-user, 3 attempts)") ||
		!strings.Contains(acc.Deviations[1], "the operation stopped after AccountCreated") || len(parked.Deviations) != 0 {
		t.Errorf("deviations: on the event %q, on the parked record %q", acc.Deviations, parked.Deviations)
	}
	if len(acc.Expected) != 2 || acc.Expected[0].Emits != "UserCreated" || acc.Expected[0].Observed != nil {
		t.Errorf("expected after the parked event: %+v", acc.Expected)
	}
}

func TestRecent(t *testing.T) {
	t.Parallel()
	cat := builtin(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	fx := effectsServer(t, trace.EffectFailed)
	srv := serve(t, cat, fakeSource{ops: []*trace.Trace{parkedRegistration("op2"), registration("op1")}},
		explorer.WithEffects(map[string]string{"notification-service": fx.URL, "account-service": down.URL}))
	var r struct {
		AsOf       time.Time
		Operations []trace.Summary
		Warnings   []string
	}
	if code := get(t, srv, "GET", "/api/operations?n=5", &r); code != http.StatusOK {
		t.Fatalf("GET /api/operations: %d", code)
	}
	if len(r.Operations) != 2 || r.Operations[0].CorrelationID != "op2" || r.Operations[0].Status != "parked" ||
		r.Operations[1].Status != "deviating" || r.Operations[1].First != "AccountCreated" || r.Operations[1].Events != 2 ||
		len(r.Operations[1].Deviations) != 1 || !strings.Contains(r.Operations[1].Deviations[0], "welcome email by notification-service failed") {
		t.Errorf("operations: %+v", r.Operations)
	}
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "account-service's effects are not shown") {
		t.Errorf("warnings: %q", r.Warnings)
	}
	if r.AsOf.IsZero() {
		t.Error("no asOf")
	}
	if code := get(t, srv, "GET", "/api/operations?n=1", &r); code != http.StatusOK || len(r.Operations) != 1 {
		t.Errorf("n=1: %d, %d operations", code, len(r.Operations))
	}
}

// TestLargeCatalog serves the generated 300-event catalog: every event, service and chain
// answers, with its schema.
func TestLargeCatalog(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "catalog", "testdata", "large")
	cat, err := catalog.Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Events) != 300 {
		t.Fatalf("the large catalog has %d events, want 300", len(cat.Events))
	}
	srv := serve(t, cat, fakeSource{}, explorer.WithSchemas(os.DirFS(dir)))
	var c struct {
		Events   []struct{ Name string }
		Services []struct{ Name string }
		Chains   []struct{ Name string }
	}
	if code := get(t, srv, "GET", "/api/catalog", &c); code != http.StatusOK || len(c.Events) != 300 || len(c.Services) != len(cat.Services) || len(c.Chains) != len(cat.Chains) {
		t.Fatalf("GET /api/catalog: %d, %d events, %d services, %d chains", code, len(c.Events), len(c.Services), len(c.Chains))
	}
	for _, e := range c.Events {
		var d struct {
			Name   string
			Schema struct{ Name string }
		}
		if code := get(t, srv, "GET", "/api/events/"+url.PathEscape(e.Name), &d); code != http.StatusOK || d.Schema.Name != e.Name {
			t.Errorf("GET /api/events/%s: %d %+v", e.Name, code, d)
		}
	}
	for _, s := range c.Services {
		if code := get(t, srv, "GET", "/api/services/"+url.PathEscape(s.Name), &struct{}{}); code != http.StatusOK {
			t.Errorf("GET /api/services/%s: %d", s.Name, code)
		}
	}
	for _, ch := range c.Chains {
		if code := get(t, srv, "GET", "/api/chains/"+url.PathEscape(ch.Name), &struct{}{}); code != http.StatusOK {
			t.Errorf("GET /api/chains/%s: %d", ch.Name, code)
		}
	}
}

// TestPage: the page and its assets are served from the binary, and fetch nothing elsewhere.
func TestPage(t *testing.T) {
	t.Parallel()
	srv := serve(t, builtin(t), fakeSource{})
	for _, tc := range []struct{ path, ctype, want string }{
		{"/", "text/html", `<script src="app.js">`},
		{"/app.js", "javascript", "/api/catalog"},
		{"/app.css", "text/css", ".node"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %s, want %s containing %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.ctype, tc.want)
		}
		for _, ext := range []string{"http://", "https://", "//fonts.", "@import"} {
			if strings.Contains(strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", ""), ext) {
				t.Errorf("%s refers to %q: the page must load nothing from elsewhere", tc.path, ext)
			}
		}
	}
}
