package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

func TestTraceUsage(t *testing.T) {
	t.Parallel()
	runUsage(t, []usageCase{
		{name: "listed in the commands", args: []string{"help"}, wantCode: 0, wantStderr: []string{"trace", "checked against the catalog"}},
		{name: "no id", args: []string{"trace"}, wantCode: 2, wantStderr: []string{"got 0", "choreo trace <event-or-correlation-id>"}},
		{name: "two ids", args: []string{"trace", "a", "b"}, wantCode: 2, wantStderr: []string{"got 2"}},
		{name: "empty id", args: []string{"trace", ""}, wantCode: 2, wantStderr: []string{"empty argument"}},
		{name: "bad format", args: []string{"trace", "a", "-format", "yaml"}, wantCode: 2, wantStderr: []string{`-format "yaml"`, "text, json or mermaid"}},
		{name: "bad timeout", args: []string{"trace", "a", "-timeout", "0s"}, wantCode: 2, wantStderr: []string{"-timeout 0s"}},
		{name: "recent not positive", args: []string{"trace", "-recent", "0"}, wantCode: 2, wantStderr: []string{"-recent 0: want a positive number"}},
		{name: "recent and an id", args: []string{"trace", "a", "-recent", "3"}, wantCode: 2, wantStderr: []string{"got 1"}},
		{name: "bad around", args: []string{"trace", "a", "-around", "yesterday"}, wantCode: 2, wantStderr: []string{`-around "yesterday"`, "RFC 3339"}},
		{name: "bad effects", args: []string{"trace", "a", "-effects", "notification-service"}, wantCode: 2, wantStderr: []string{`-effects "notification-service"`, "service=http://host:port"}},
		{name: "-h", args: []string{"trace", "-h"}, wantCode: 0, wantStderr: []string{"-namespace", "CHOREO_NAMESPACE", "-format", "-brokers", "-registry"}},
		{
			name: "brokers unreachable", args: []string{"trace", "a", "-brokers", "127.0.0.1:1", "-registry", "http://127.0.0.1:1"}, wantCode: 1,
			wantStderr: []string{"KAFKA_BROKERS 127.0.0.1:1 (-brokers)", "events are shown undecoded"},
		},
	})
}

// traced is the part of `trace -format json` the tests read.
type traced struct {
	CorrelationID string
	Roots         []tracedNode
	Matches       bool
	Status        string
	Chains        []struct {
		Name     string
		Complete bool
		Events   []string
		Next     string
	}
	Deviations []struct{ EventID, Message string }
}

type tracedNode struct {
	Type, ID, Source, CorrelationID, CausationID, Topic, Key string
	Event                                                    map[string]any
	Parked                                                   *struct{ Group, Handler, Error string }
	Children                                                 []tracedNode
	Effects                                                  []struct{ Service, Effect, EventID, Status, Error string }
}

func traceJSON(t *testing.T, args ...string) traced {
	t.Helper()
	r := run(t, append(append([]string{"trace"}, args...), "-format", "json")...)
	if r.code != 0 {
		t.Fatalf("trace %v -format json: exit status %d\nstderr:\n%s", args, r.code, r.stderr.String())
	}
	var tr traced
	if err := json.Unmarshal(r.stdout.Bytes(), &tr); err != nil {
		t.Fatalf("trace -format json: %v\n%s", err, r.stdout.String())
	}
	return tr
}

// TestTraceEndToEnd: a registration and a deletion on a running stack, traced by the ID the API
// answered with, by a later event's ID and by correlation ID, in every format; then an event
// the user-service parks, whose trace stops with a PARKED leaf; then an ID nothing has.
func TestTraceEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ns := s.Service("account-service").Config.Namespace
	flags := []string{"-namespace", ns, "-brokers", strings.Join(s.Brokers(), ","), "-registry", s.RegistryURL(),
		"-effects", "notification-service=" + stacktest.URL(s, "notification-service", "")}

	var created struct{ AccountID, EventID string }
	code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"tracy","email":"tracy@mail.com"}`, &created)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	notifications := func(want int) []stacktest.Notification {
		var got []stacktest.Notification
		stacktest.Eventually(t, 15*time.Second, func() error {
			var err error
			if got, err = stacktest.Notifications(s, created.AccountID); err != nil {
				return err
			}
			if len(got) != want || got[want-1].Status != "sent" {
				return fmt.Errorf("notifications %+v, want %d, the last sent", got, want)
			}
			return nil
		})
		return got
	}
	notifications(1)

	// Text: the tree, the effect that ends the chain, the verdict.
	r := run(t, append([]string{"trace", created.EventID}, flags...)...)
	if r.code != 0 {
		t.Fatalf("trace: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	text := r.stdout.String()
	t.Logf("choreo trace %s:\n%s", created.EventID, text)
	for _, re := range []string{
		`(?m)^AccountCreated  ce_id=` + created.EventID + `  by account-service  ` + regexp.QuoteMeta(ns) + `\.accounts/\d+@\d+  \d{4}-\d\d-\d\dT`,
		`(?m)^└─ UserCreated  ce_id=\S+  by user-service  ` + regexp.QuoteMeta(ns) + `\.users/\d+@\d+  \(\+[0-9.]+[µm]?s\)$`,
		`(?m)^   └─ \(effect: welcome email by notification-service  SENT  \(\+[0-9.]+[µm]?s\)\)$`,
		`(?m)^matches catalog chain "Account registration"$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("trace output does not match %s:\n%s", re, text)
		}
	}
	if strings.Contains(text, "PARKED") || strings.Contains(text, "deviat") {
		t.Errorf("trace of a healthy registration shows trouble:\n%s", text)
	}

	// JSON: two events linked by causation, decoded.
	tr := traceJSON(t, append([]string{created.EventID}, flags...)...)
	if tr.CorrelationID != created.EventID || len(tr.Roots) != 1 || !tr.Matches || len(tr.Deviations) != 0 || tr.Status != "complete" {
		t.Fatalf("trace json: %+v", tr)
	}
	root := tr.Roots[0]
	if root.Type != "AccountCreated" || root.ID != created.EventID || root.Source != "/account-service" ||
		root.Key != created.AccountID || root.Event["accountId"] != created.AccountID || len(root.Children) != 1 {
		t.Errorf("trace json root: %+v", root)
	}
	var userCreated tracedNode
	if len(root.Children) == 1 {
		userCreated = root.Children[0]
	}
	if userCreated.Type != "UserCreated" || userCreated.CausationID != root.ID || userCreated.CorrelationID != created.EventID ||
		userCreated.Source != "/user-service" || userCreated.Event["username"] != "tracy" || len(userCreated.Children) != 0 ||
		len(userCreated.Effects) != 1 || userCreated.Effects[0].Effect != "welcome email" || userCreated.Effects[0].Status != "sent" ||
		userCreated.Effects[0].Service != "notification-service" || userCreated.Effects[0].EventID != userCreated.ID {
		t.Errorf("trace json UserCreated: %+v", userCreated)
	}
	if len(tr.Chains) != 1 || tr.Chains[0].Name != "Account registration" || !tr.Chains[0].Complete ||
		strings.Join(tr.Chains[0].Events, ",") != root.ID+","+userCreated.ID || tr.Chains[0].Next != "notification-service effect: welcome email" {
		t.Errorf("trace json chains: %+v", tr.Chains)
	}

	// Any event of the operation finds the whole of it.
	if byLater := traceJSON(t, append([]string{userCreated.ID}, flags...)...); byLater.CorrelationID != created.EventID ||
		len(byLater.Roots) != 1 || byLater.Roots[0].ID != created.EventID || len(byLater.Roots[0].Children) != 1 {
		t.Errorf("trace by the UserCreated ID: %+v", byLater)
	}

	// Mermaid: the observed chain as a flowchart.
	r = run(t, append([]string{"trace", created.EventID, "-format", "mermaid"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("trace -format mermaid: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	for _, want := range []string{"flowchart LR\n", `e0(["AccountCreated<br/>by account-service`, `e1(["UserCreated<br/>by user-service`,
		`e0 -->|"user-service"| e1`, `{{"welcome email<br/>by notification-service, sent"}}`} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("mermaid output lacks %q:\n%s", want, r.stdout.String())
		}
	}

	// The deletion chain, traced by the correlation ID the farewell email carries.
	if code, err := stacktest.DoJSON("DELETE", stacktest.URL(s, "account-service", "/accounts/"+created.AccountID), "", nil); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE /accounts/%s: %d %v", created.AccountID, code, err)
	}
	farewell := notifications(2)[1]
	if farewell.Kind != "farewell" || farewell.CorrelationID == "" {
		t.Fatalf("farewell notification: %+v", farewell)
	}
	r = run(t, append([]string{"trace", farewell.CorrelationID}, flags...)...)
	if r.code != 0 {
		t.Fatalf("trace of the deletion: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	t.Logf("choreo trace %s:\n%s", farewell.CorrelationID, r.stdout.String())
	for _, re := range []string{
		`(?m)^AccountDeleted  ce_id=` + farewell.CorrelationID + `  by account-service  `,
		`(?m)^└─ UserDeleted  ce_id=\S+  by user-service  `,
		`(?m)^   └─ \(effect: farewell email by notification-service`,
		`(?m)^matches catalog chain "Account deletion"$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout.String()) {
			t.Errorf("deletion trace does not match %s:\n%s", re, r.stdout.String())
		}
	}
	if strings.Contains(r.stdout.String(), "AccountCreated") {
		t.Errorf("the deletion trace holds the registration's events:\n%s", r.stdout.String())
	}

	// A chain that stops halfway: an account the user-service refuses (its email is no
	// address) is parked, and the trace ends in the PARKED leaf with the error.
	c := s.Service("account-service").Codec
	badID := envelope.NewID()
	rec, err := c.Record(envelope.Envelope{ID: badID, Source: "/account-service", Time: time.Now().UTC(), CorrelationID: badID},
		&event.AccountCreated{AccountID: "acc-trace-bad", Username: "nobody", Email: "not an email", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Produce(t, s, rec)
	var parked traced
	stacktest.Eventually(t, 15*time.Second, func() error {
		parked = traceJSON(t, append([]string{badID}, flags...)...)
		if len(parked.Roots) != 1 || len(parked.Roots[0].Children) != 1 || parked.Roots[0].Children[0].Parked == nil {
			return fmt.Errorf("trace of the refused account: %+v, want AccountCreated with a parked leaf", parked)
		}
		return nil
	})
	if p := parked.Roots[0].Children[0].Parked; p.Group != ns+".user-service" || p.Handler != "create-user" || !strings.Contains(p.Error, "not a bare address") {
		t.Errorf("parked leaf: %+v", p)
	}
	if parked.Matches || len(parked.Deviations) != 2 {
		t.Errorf("trace of the refused account: matches %v, deviations %+v; want the parking and the stop", parked.Matches, parked.Deviations)
	}
	r = run(t, append([]string{"trace", badID}, flags...)...)
	t.Logf("choreo trace %s:\n%s", badID, r.stdout.String())
	for _, re := range []string{
		`(?m)^├─ PARKED  AccountCreated  ce_id=` + badID + `  by group ` + regexp.QuoteMeta(ns) + `\.user-service \(handler create-user\)  ` +
			regexp.QuoteMeta(ns) + `\.user-service\.dlq/\d+@\d+  \(\+\S+\)  choreo_dlq_error=".*not a bare address.*"$`,
		`(?m)^deviates from the catalog \(2 deviations\):$`,
		`(?m)^  - user-service parked AccountCreated \(handler create-user, permanent, 1 attempt\): .*not a bare address`,
		`(?m)^  - the operation stopped after AccountCreated: the catalog expects user-service to emit UserCreated \(chain "Account registration"\) or user-service to emit UserRegistrationRejected \(chain "Account registration rejected"\) next; not in Kafka yet$`,
		`(?m)^└─ \(expected next in chain "Account registration rejected": user-service emits UserRegistrationRejected — not in Kafka yet\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout.String()) {
			t.Errorf("trace of the refused account does not match %s:\n%s", re, r.stdout.String())
		}
	}

	// The last three operations, newest first, with their outcome.
	var recent []struct {
		CorrelationID, First, Status string
		Events                       int
		DurationMS                   float64
	}
	r = run(t, append([]string{"trace", "-recent", "3", "-format", "json"}, flags...)...)
	if r.code != 0 {
		t.Fatalf("trace -recent 3: exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	if err := json.Unmarshal(r.stdout.Bytes(), &recent); err != nil {
		t.Fatalf("trace -recent 3: %v\n%s", err, r.stdout.String())
	}
	want := []string{badID + " AccountCreated parked 1", farewell.CorrelationID + " AccountDeleted complete 2", created.EventID + " AccountCreated complete 2"}
	var got []string
	for _, op := range recent {
		got = append(got, fmt.Sprintf("%s %s %s %d", op.CorrelationID, op.First, op.Status, op.Events))
		if op.DurationMS < 0 || op.Status == "complete" && op.DurationMS == 0 {
			t.Errorf("operation %s lasted %vms", op.CorrelationID, op.DurationMS)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace -recent 3:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r = run(t, append([]string{"trace", "-recent", "3"}, flags...)...)
	t.Logf("choreo trace -recent 3:\n%s", r.stdout.String())
	if !regexp.MustCompile(`(?m)^START +CORRELATION ID +FIRST EVENT +EVENTS +DURATION +STATUS +DETAIL\n.*` + badID + ` +AccountCreated +1 +\S+ +parked +user-service parked`).MatchString(r.stdout.String()) {
		t.Errorf("trace -recent 3 text:\n%s", r.stdout.String())
	}

	// Nothing has this ID: exit status 1 and a message saying so.
	r = run(t, append([]string{"trace", "no-such-event"}, flags...)...)
	if r.code != 1 || r.stdout.Len() != 0 {
		t.Errorf("trace of an unknown ID: exit status %d, stdout %q", r.code, r.stdout.String())
	}
	for _, want := range []string{"no event with that ID", "no-such-event", ns + ".accounts", "-namespace"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("trace of an unknown ID: stderr does not mention %q:\n%s", want, r.stderr.String())
		}
	}
}
