package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/account/internal/api"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// start is the fixed clock's first reading: not UTC and finer than the millisecond, so the
// tests see that the API stores and emits UTC milliseconds.
var start = time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600))

// emitted is one successful Emit call.
type emitted struct {
	env envelope.Envelope
	ev  event.Event
	// status is the account's status as the emitting transaction sees it: the event must be
	// written in the same transaction as the change it reports.
	status string
}

// fakeEmitter records Emit and Committed calls; with err set, every Emit fails with it.
type fakeEmitter struct {
	err error

	mu        sync.Mutex
	calls     int
	emitted   []emitted
	committed int
}

var _ api.Emitter = (*fakeEmitter)(nil)

func (f *fakeEmitter) Emit(ctx context.Context, tx *sql.Tx, env envelope.Envelope, ev event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return f.err
	}
	var id string
	switch ev := ev.(type) {
	case *event.AccountCreated:
		id = ev.AccountID
	case *event.AccountDeleted:
		id = ev.AccountID
	default:
		return errors.New("unexpected event type")
	}
	acc, err := store.Get(ctx, tx, id)
	if err != nil {
		return err
	}
	f.emitted = append(f.emitted, emitted{env: env, ev: ev, status: acc.Status})
	return nil
}

func (f *fakeEmitter) Committed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.committed++
}

func (f *fakeEmitter) snapshot() (calls int, evs []emitted, committed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]emitted(nil), f.emitted...), f.committed
}

type fixture struct {
	db   *sql.DB
	emit *fakeEmitter
	srv  *httptest.Server
	now  atomic.Pointer[time.Time]
}

// newFixture serves an API on a new database; emitErr makes every Emit fail.
func newFixture(t *testing.T, emitErr error) *fixture {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "account.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, emit: &fakeEmitter{err: emitErr}}
	f.now.Store(&start)
	a := &api.API{
		DB:   db,
		Emit: f.emit,
		Log:  slog.New(slog.DiscardHandler),
		Now:  func() time.Time { return *f.now.Load() },
	}
	f.srv = httptest.NewServer(a.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) setNow(t time.Time) { f.now.Store(&t) }

func (f *fixture) do(t *testing.T, method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (f *fixture) register(t *testing.T, username, email string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": username, "email": email})
	resp, body := f.do(t, http.MethodPost, "/accounts", "application/json", bytes.NewReader(b))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: status %d: %s", resp.StatusCode, body)
	}
	var out struct{ AccountID string }
	if err := json.Unmarshal(body, &out); err != nil || out.AccountID == "" {
		t.Fatalf("register: body %s: %v", body, err)
	}
	return out.AccountID
}

func (f *fixture) accountRows(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.db.QueryRowContext(t.Context(), `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantError checks an error response: status, JSON content type, a {code, message} body with
// the code and a message.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) httpapi.Error {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var e httpapi.Error
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body %q is not {code, message}: %v", body, err)
	}
	if e.Code != code {
		t.Errorf("code = %q (message %q), want %q", e.Code, e.Message, code)
	}
	if e.Message == "" {
		t.Error("message is empty")
	}
	return e
}

func TestRegister(t *testing.T) {
	t.Parallel()
	longEmail := strings.Repeat("a", 64) + "@" + strings.Repeat("d", event.MaxEmail-64-1-4) + ".com" // exactly MaxEmail bytes
	tests := []struct {
		name         string
		contentType  string
		body         string
		wantUsername string
		wantEmail    string
		wantLocale   string // default "en"
	}{
		{name: "plain", contentType: "application/json", body: `{"username":"alice","email":"alice@example.com"}`, wantUsername: "alice", wantEmail: "alice@example.com"},
		{name: "locale", contentType: "application/json", body: `{"username":"gerd","email":"g@example.com","locale":"de-AT"}`, wantUsername: "gerd", wantEmail: "g@example.com", wantLocale: "de-AT"},
		{name: "trimmed", contentType: "application/json", body: `{"username":"  bob\t","email":" bob@example.org\n"}`, wantUsername: "bob", wantEmail: "bob@example.org"},
		{name: "no Content-Type", body: `{"username":"carol","email":"carol@example.com"}`, wantUsername: "carol", wantEmail: "carol@example.com"},
		{name: "charset", contentType: "application/json; charset=utf-8", body: `{"email":"d@example.com","username":"dave"}`, wantUsername: "dave", wantEmail: "d@example.com"},
		{
			name: "username of MaxUsername multi-byte characters", contentType: "application/json",
			body:         `{"username":"` + strings.Repeat("é", event.MaxUsername) + `","email":"e@example.com"}`,
			wantUsername: strings.Repeat("é", event.MaxUsername), wantEmail: "e@example.com",
		},
		{
			name: "email of MaxEmail bytes", contentType: "application/json",
			body:         `{"username":"frank","email":"` + longEmail + `"}`,
			wantUsername: "frank", wantEmail: longEmail,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			now := start.UTC().Truncate(time.Millisecond)
			resp, body := f.do(t, http.MethodPost, "/accounts", tt.contentType, strings.NewReader(tt.body))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status = %d, want 201: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var out struct {
				AccountID string `json:"accountId"`
				Status    string `json:"status"`
				EventID   string `json:"eventId"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if _, err := uuid.Parse(out.AccountID); err != nil {
				t.Errorf("accountId %q is not a UUID: %v", out.AccountID, err)
			}
			if out.Status != "active" {
				t.Errorf("status = %q, want active", out.Status)
			}
			if got, want := resp.Header.Get("Location"), "/accounts/"+out.AccountID; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}

			acc, err := store.Get(t.Context(), f.db, out.AccountID)
			if err != nil {
				t.Fatalf("account row: %v", err)
			}
			want := store.Account{ID: out.AccountID, Username: tt.wantUsername, Email: tt.wantEmail, Status: "active", CreatedAt: now}
			if acc.ID != want.ID || acc.Username != want.Username || acc.Email != want.Email || acc.Status != want.Status ||
				!acc.CreatedAt.Equal(want.CreatedAt) || acc.DeletedAt != nil {
				t.Errorf("account row = %+v, want %+v", acc, want)
			}
			if n := f.accountRows(t); n != 1 {
				t.Errorf("%d account rows, want 1", n)
			}

			calls, evs, committed := f.emit.snapshot()
			if calls != 1 || len(evs) != 1 {
				t.Fatalf("%d Emit calls, %d events; want exactly one AccountCreated", calls, len(evs))
			}
			if committed != 1 {
				t.Errorf("Committed called %d times, want 1", committed)
			}
			ev, ok := evs[0].ev.(*event.AccountCreated)
			if !ok {
				t.Fatalf("emitted %T, want *event.AccountCreated", evs[0].ev)
			}
			if ev.AccountID != out.AccountID || ev.Username != tt.wantUsername || ev.Email != tt.wantEmail || !ev.CreatedAt.Equal(now) ||
				ev.Locale != cmpOr(tt.wantLocale, api.DefaultLocale) {
				t.Errorf("AccountCreated = %+v, want account %s, %q, %q, created %v", ev, out.AccountID, tt.wantUsername, tt.wantEmail, now)
			}
			if evs[0].status != "active" {
				t.Errorf("the emitting transaction saw account status %q, want the new active account", evs[0].status)
			}
			if env := evs[0].env; env.ID != out.EventID || env.CorrelationID != out.EventID || !env.Time.Equal(now) {
				t.Errorf("envelope = %+v, want ID and correlation ID %s (eventId in the response), time %v", env, out.EventID, now)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		method      string // default POST
		contentType string // default application/json; "-" sends none
		body        string
		wantStatus  int
		wantCode    string
		wantAllow   string
	}{
		{name: "malformed JSON", body: `{"username":"alice",`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "not JSON", body: `username=alice&email=a@example.com`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "unknown field", body: `{"username":"alice","email":"a@example.com","admin":true}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "missing username", body: `{"email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "null username", body: `{"username":null,"email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "missing email", body: `{"username":"alice"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "empty object", body: `{}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "empty username", body: `{"username":"","email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "blank username", body: `{"username":"   ","email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "username with spaces", body: `{"username":"alice smith","email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "username with a control character", body: `{"username":"ali\u0000ce","email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "username over 64 characters", body: `{"username":"` + strings.Repeat("a", event.MaxUsername+1) + `","email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "username of wrong type", body: `{"username":42,"email":"a@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "locale not a language tag", body: `{"username":"alice","email":"a@example.com","locale":"english please"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "empty locale", body: `{"username":"alice","email":"a@example.com","locale":""}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "locale of wrong type", body: `{"username":"alice","email":"a@example.com","locale":7}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "empty email", body: `{"username":"alice","email":""}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "email not-an-email", body: `{"username":"alice","email":"not-an-email"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "email a@b", body: `{"username":"alice","email":"a@b"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "email with display name", body: `{"username":"alice","email":"John <j@x.com>"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "email domain ends with a dot", body: `{"username":"alice","email":"a@example."}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "email domain starts with a dot", body: `{"username":"alice","email":"a@.example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{
			name: "email over 254 bytes", body: `{"username":"alice","email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("d", event.MaxEmail-64-1-4+1) + `.com"}`,
			wantStatus: 400, wantCode: httpapi.CodeInvalid,
		},
		{
			name: "body over 64 KiB", body: `{"username":"alice","email":"a@example.com","pad":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`,
			wantStatus: 413, wantCode: httpapi.CodeTooLarge,
		},
		{name: "empty body", body: "", wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "two JSON values", body: `{"username":"alice","email":"a@example.com"} {"username":"bob","email":"b@example.com"}`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "array", body: `[{"username":"alice","email":"a@example.com"}]`, wantStatus: 400, wantCode: httpapi.CodeInvalid},
		{name: "text/plain", contentType: "text/plain", body: `{"username":"alice","email":"a@example.com"}`, wantStatus: 415, wantCode: httpapi.CodeUnsupported},
		{name: "PUT /accounts", method: http.MethodPut, body: `{"username":"alice","email":"a@example.com"}`, wantStatus: 405, wantCode: httpapi.CodeMethodNotAllowed, wantAllow: "POST"},
		{name: "GET /accounts", method: http.MethodGet, contentType: "-", wantStatus: 405, wantCode: httpapi.CodeMethodNotAllowed, wantAllow: "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			method := cmpOr(tt.method, http.MethodPost)
			ct := cmpOr(tt.contentType, "application/json")
			if ct == "-" {
				ct = ""
			}
			resp, body := f.do(t, method, "/accounts", ct, strings.NewReader(tt.body))
			wantError(t, resp, body, tt.wantStatus, tt.wantCode)
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if resp.Header.Get("Location") != "" {
				t.Errorf("Location %q set on an error", resp.Header.Get("Location"))
			}
			if n := f.accountRows(t); n != 0 {
				t.Errorf("%d account rows after a rejected request, want 0", n)
			}
			if calls, _, committed := f.emit.snapshot(); calls != 0 || committed != 0 {
				t.Errorf("Emit called %d times, Committed %d times; want no event", calls, committed)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestRegisterEmitFails proves the account and its AccountCreated commit together or not at all.
func TestRegisterEmitFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, errors.New("outbox: disk I/O error at /var/lib/secret.db"))
	resp, body := f.do(t, http.MethodPost, "/accounts", "application/json",
		strings.NewReader(`{"username":"alice","email":"alice@example.com"}`))
	e := wantError(t, resp, body, http.StatusInternalServerError, httpapi.CodeInternal)
	if strings.Contains(string(body), "secret") || e.Message != "internal error" {
		t.Errorf("body %s leaks the internal error", body)
	}
	if resp.Header.Get("Location") != "" {
		t.Errorf("Location %q set on a failure", resp.Header.Get("Location"))
	}
	if n := f.accountRows(t); n != 0 {
		t.Errorf("%d account rows after Emit failed, want 0: the insert was not rolled back", n)
	}
	calls, evs, committed := f.emit.snapshot()
	if calls != 1 || len(evs) != 0 || committed != 0 {
		t.Errorf("Emit called %d times (%d events), Committed %d times; want 1 failed call and no commit", calls, len(evs), committed)
	}
	// The database is usable afterwards: the failed transaction released its connection.
	if _, err := f.db.ExecContext(t.Context(), `INSERT INTO accounts (id, username, email, status, created_at) VALUES ($1, 'x', 'x@example.com', 'active', 0)`, "probe"); err != nil {
		t.Errorf("database unusable after the rollback: %v", err)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := f.register(t, "alice", "alice@example.com")
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantCode   string
	}{
		{name: "existing", path: "/accounts/" + id, wantStatus: http.StatusOK},
		{name: "unknown", path: "/accounts/" + uuid.NewString(), wantStatus: http.StatusNotFound, wantCode: httpapi.CodeNotFound},
		{name: "not a UUID", path: "/accounts/nope", wantStatus: http.StatusNotFound, wantCode: httpapi.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := f.do(t, http.MethodGet, tt.path, "", nil)
			if tt.wantCode != "" {
				wantError(t, resp, body, tt.wantStatus, tt.wantCode)
				return
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var acc store.Account
			if err := json.Unmarshal(body, &acc); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if acc.ID != id || acc.Username != "alice" || acc.Email != "alice@example.com" || acc.Status != "active" ||
				!acc.CreatedAt.Equal(start.Truncate(time.Millisecond)) || acc.DeletedAt != nil {
				t.Errorf("account = %+v", acc)
			}
			if bytes.Contains(body, []byte("deletedAt")) {
				t.Errorf("active account's body %s has deletedAt", body)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := f.register(t, "alice", "alice@example.com")
	other := f.register(t, "bob", "bob@example.com")
	deletedAt := start.Add(time.Hour)
	f.setNow(deletedAt)

	deleteOK := func(t *testing.T) store.Account {
		t.Helper()
		resp, body := f.do(t, http.MethodDelete, "/accounts/"+id, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE: status = %d, want 200: %s", resp.StatusCode, body)
		}
		var acc store.Account
		if err := json.Unmarshal(body, &acc); err != nil {
			t.Fatalf("DELETE: body %s: %v", body, err)
		}
		if acc.ID != id || acc.Status != "deleted" || acc.DeletedAt == nil || !acc.DeletedAt.Equal(deletedAt.Truncate(time.Millisecond)) {
			t.Errorf("DELETE: account = %+v, want %s deleted at %v", acc, id, deletedAt)
		}
		return acc
	}
	deletions := func() []*event.AccountDeleted {
		_, evs, _ := f.emit.snapshot()
		var out []*event.AccountDeleted
		for _, e := range evs {
			if d, ok := e.ev.(*event.AccountDeleted); ok {
				if e.status != "deleted" {
					t.Errorf("AccountDeleted emitted while the transaction saw status %q", e.status)
				}
				out = append(out, d)
			}
		}
		return out
	}

	deleteOK(t)
	evs := deletions()
	if len(evs) != 1 {
		t.Fatalf("%d AccountDeleted after the first DELETE, want 1", len(evs))
	}
	if evs[0].AccountID != id || !evs[0].DeletedAt.Equal(deletedAt.Truncate(time.Millisecond)) {
		t.Errorf("AccountDeleted = %+v, want account %s deleted at %v", evs[0], id, deletedAt)
	}

	// A retried DELETE, later, answers as the first did and emits nothing.
	f.setNow(deletedAt.Add(time.Hour))
	deleteOK(t)
	if n := len(deletions()); n != 1 {
		t.Errorf("%d AccountDeleted after the second DELETE, want still 1", n)
	}

	// Unknown account: 404, nothing emitted.
	resp, body := f.do(t, http.MethodDelete, "/accounts/"+uuid.NewString(), "", nil)
	wantError(t, resp, body, http.StatusNotFound, httpapi.CodeNotFound)
	if n := len(deletions()); n != 1 {
		t.Errorf("%d AccountDeleted after deleting an unknown account, want still 1", n)
	}
	if calls, _, _ := f.emit.snapshot(); calls != 3 {
		t.Errorf("Emit called %d times, want 3 (two AccountCreated, one AccountDeleted)", calls)
	}

	// GET sees the deletion; the other account is untouched.
	resp, body = f.do(t, http.MethodGet, "/accounts/"+id, "", nil)
	var acc store.Account
	if err := json.Unmarshal(body, &acc); err != nil || resp.StatusCode != http.StatusOK || acc.Status != "deleted" {
		t.Errorf("GET deleted account: %d %s (%v)", resp.StatusCode, body, err)
	}
	if acc, err := store.Get(t.Context(), f.db, other); err != nil || acc.Status != "active" {
		t.Errorf("other account = %+v, %v; want active", acc, err)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	t.Cleanup(func() { // after the parallel subtests
		if calls, _, _ := f.emit.snapshot(); calls != 0 {
			t.Errorf("Emit called %d times by unrouted requests", calls)
		}
	})
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantAllow    string
	}{
		{http.MethodGet, "/", http.StatusNotFound, httpapi.CodeNotFound, ""},
		{http.MethodGet, "/nope", http.StatusNotFound, httpapi.CodeNotFound, ""},
		{http.MethodPost, "/users", http.StatusNotFound, httpapi.CodeNotFound, ""},
		{http.MethodGet, "/accounts/a/b", http.StatusNotFound, httpapi.CodeNotFound, ""},
		{http.MethodPatch, "/accounts/a", http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "GET, DELETE"},
		{http.MethodPost, "/accounts/a", http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "GET, DELETE"},
		{http.MethodDelete, "/accounts", http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := f.do(t, tt.method, tt.path, "", nil)
			wantError(t, resp, body, tt.wantStatus, tt.wantCode)
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}
