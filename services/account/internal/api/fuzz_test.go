package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/account/internal/api"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// FuzzRegister posts arbitrary bodies with arbitrary content types to POST /accounts, over HTTP,
// on one API and one SQLite database for the whole run. The API must never answer 5xx; it
// answers 201 having stored exactly one account and emitted exactly one AccountCreated for it,
// or a 4xx with a {code, message} body having stored and emitted nothing.
func FuzzRegister(f *testing.F) {
	db, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "account.db"), store.Migrations())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	emit := &fakeEmitter{}
	now := start
	a := &api.API{DB: db, Emit: emit, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	srv := httptest.NewServer(a.Handler())
	f.Cleanup(srv.Close)

	for _, s := range []struct{ contentType, body string }{
		{"application/json", `{"username":"alice","email":"alice@example.com"}`},
		{"", `{"username":"carol","email":"carol@example.com"}`},
		{"application/json; charset=utf-8", `{"email":"d@example.com","username":"dave"}`},
		{"application/x-www-form-urlencoded", `{"username":"curl","email":"curl@example.com"}`},
		{"application/json", `{"username":"  bob\t","email":" bob@example.org\n"}`},
		{"application/json", `{"username":"` + strings.Repeat("é", event.MaxUsername) + `","email":"e@example.com"}`},
		{"application/json", `{"username":"ali\u0000ce","email":"a@example.com"}`},
		{"application/json", `{"username":"alice","email":"John <j@x.com>"}`},
		{"application/json", `{"username":"alice","email":"a@b"}`},
		{"application/json", `{"username":"alice","email":"a@example.com"} {}`},
		{"application/json", `{"username":"alice","email":"a@example.com","admin":true}`},
		{"application/json", `{"username":null,"email":"a@example.com"}`},
		{"application/json", `{"username":42,"email":"a@example.com"}`},
		{"application/json", `[]`},
		{"application/json", ``},
		{"application/json", `{"username":"alice",`},
		{"text/plain", `{"username":"alice","email":"a@example.com"}`},
		{"application/json; charset", `{"username":"alice","email":"a@example.com"}`},
		{"application/json", `{"username":"alice","email":"a@example.com","pad":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`},
	} {
		f.Add(s.contentType, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		if !validHeaderValue(contentType) {
			return // no client can send it: net/http refuses to
		}
		rowsBefore := countAccounts(t, a)
		_, before, _ := emit.snapshot()

		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/accounts", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("POST /accounts (Content-Type %q, body %q): %v", contentType, body, err)
		}
		defer resp.Body.Close()
		respBody, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}

		rowsAfter := countAccounts(t, a)
		_, after, _ := emit.snapshot()
		switch {
		case resp.StatusCode == http.StatusCreated:
			if rowsAfter != rowsBefore+1 || len(after) != len(before)+1 {
				t.Fatalf("201 for %q: account rows %d -> %d, events %d -> %d; want one more of each",
					body, rowsBefore, rowsAfter, len(before), len(after))
			}
			var out struct{ AccountID, EventID, Status string }
			if err := json.Unmarshal(respBody, &out); err != nil || out.AccountID == "" || out.EventID == "" || out.Status != "active" {
				t.Fatalf("201 body %s (%v), want accountId, eventId and status active", respBody, err)
			}
			acc, err := store.Get(t.Context(), a.DB, out.AccountID)
			if err != nil {
				t.Fatalf("201 for account %s, which is not stored: %v", out.AccountID, err)
			}
			ev, ok := after[len(after)-1].ev.(*event.AccountCreated)
			if !ok || ev.AccountID != acc.ID || ev.Username != acc.Username || ev.Email != acc.Email || after[len(after)-1].env.ID != out.EventID {
				t.Fatalf("emitted %+v (%+v) for stored account %+v, response %s", after[len(after)-1].ev, after[len(after)-1].env, acc, respBody)
			}
			// What was accepted is what validation allows, already in its normal form.
			u, e, err := api.Registration{Username: &acc.Username, Email: &acc.Email}.Validate()
			if err != nil || u != acc.Username || e != acc.Email {
				t.Fatalf("stored username %q, email %q; validating them again gives %q, %q, %v", acc.Username, acc.Email, u, e, err)
			}
			if !utf8.ValidString(acc.Username) || !utf8.ValidString(acc.Email) {
				t.Fatalf("stored invalid UTF-8: username %q, email %q", acc.Username, acc.Email)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			if rowsAfter != rowsBefore || len(after) != len(before) {
				t.Fatalf("%d for %q: account rows %d -> %d, events %d -> %d; want no change",
					resp.StatusCode, body, rowsBefore, rowsAfter, len(before), len(after))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%d with Content-Type %q, want application/json", resp.StatusCode, ct)
			}
			dec := json.NewDecoder(bytes.NewReader(respBody))
			dec.DisallowUnknownFields()
			var e httpapi.Error
			if err := dec.Decode(&e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d body %q is not {code, message}: %v", resp.StatusCode, respBody, err)
			}
			if httpapi.Status(e.Code) != resp.StatusCode {
				t.Errorf("code %q with status %d, the code maps to %d", e.Code, resp.StatusCode, httpapi.Status(e.Code))
			}
		default:
			t.Fatalf("status %d for Content-Type %q, body %q: %s", resp.StatusCode, contentType, body, respBody)
		}
	})
}

// validHeaderValue reports whether net/http's client sends v as a header value: no control
// characters but horizontal tab.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func countAccounts(t *testing.T, a *api.API) int {
	t.Helper()
	var n int
	if err := a.DB.QueryRowContext(t.Context(), `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
