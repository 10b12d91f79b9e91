package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/choreo-dev/choreo/services/user/internal/handlers"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

// TestAddUserIdempotent: AddUser applies the event handler's rules: the same account twice is
// one user, a taken username is refused, an invalid account is refused, and DeleteUser frees the
// username without letting the account's user come back.
func TestAddUserIdempotent(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	srv := httptest.NewServer((&API{DB: db, Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(srv.Close)
	call := func(method, path, body string) (int, store.User) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var u store.User
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusGone {
			if err := json.Unmarshal(b, &u); err != nil {
				t.Fatalf("%s %s: %s: %v", method, path, b, err)
			}
		}
		return resp.StatusCode, u
	}
	jane := `{"accountId":"a1","username":"jane","email":"jane@mail.com","createdAt":"2030-01-02T03:04:05Z"}`
	steps := []struct {
		name, method, path, body string
		status                   int
		userID                   string
	}{
		{"first add creates", "POST", "/users", jane, http.StatusCreated, handlers.UserID("a1")},
		{"second add of the account returns the same user", "POST", "/users", jane, http.StatusOK, handlers.UserID("a1")},
		{"another account with the username is refused", "POST", "/users", `{"accountId":"a2","username":"jane","email":"j2@mail.com"}`, http.StatusConflict, ""},
		{"an invalid account is refused", "POST", "/users", `{"accountId":"a3","username":"x","email":"Jane <x@mail.com>"}`, http.StatusBadRequest, ""},
		{"delete", "DELETE", "/users/" + handlers.UserID("a1"), "", http.StatusNoContent, ""},
		{"delete again", "DELETE", "/users/" + handlers.UserID("a1"), "", http.StatusNoContent, ""},
		{"delete a user that never was", "DELETE", "/users/nobody", "", http.StatusNotFound, ""},
		{"a deleted account's user does not come back", "POST", "/users", jane, http.StatusGone, handlers.UserID("a1")},
		{"the username is free again", "POST", "/users", `{"accountId":"a2","username":"jane","email":"j2@mail.com"}`, http.StatusCreated, handlers.UserID("a2")},
	}
	for _, s := range steps {
		status, u := call(s.method, s.path, s.body)
		if status != s.status || (s.userID != "" && u.ID != s.userID) {
			t.Fatalf("%s: %s %s = %d %+v, want %d %s", s.name, s.method, s.path, status, u, s.status, s.userID)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d users stored (%v), want 2", n, err)
	}
}
