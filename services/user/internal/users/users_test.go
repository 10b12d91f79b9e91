package users

import (
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
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/sqlite"
)

// TestUserIDIsGolden: the user ID of an account is persisted and carried in UserCreated; it
// must not change between versions (see envelope's golden vectors).
func TestUserIDIsGolden(t *testing.T) {
	t.Parallel()
	if got, want := UserID("acc-1"), "ff643d8b-b51f-55e7-854e-cd748a9f47e0"; got != want {
		t.Errorf("UserID(acc-1) = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := event.AccountCreated{AccountID: "acc-1", Username: "jane", Email: "jane@mail.com"}
	tests := []struct {
		name   string
		mutate func(*event.AccountCreated)
		valid  bool
	}{
		{"valid", func(*event.AccountCreated) {}, true},
		{"64 characters of two bytes", func(e *event.AccountCreated) { e.Username = strings.Repeat("é", 64) }, true},
		{"empty account", func(e *event.AccountCreated) { e.AccountID = " " }, false},
		{"empty username", func(e *event.AccountCreated) { e.Username = "\t" }, false},
		{"65 characters", func(e *event.AccountCreated) { e.Username = strings.Repeat("a", 65) }, false},
		{"email over 254 bytes", func(e *event.AccountCreated) { e.Email = strings.Repeat("a", 250) + "@x.io" }, false},
		{"display name", func(e *event.AccountCreated) { e.Email = "Jane <jane@mail.com>" }, false},
		{"not an address", func(e *event.AccountCreated) { e.Email = "jane" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := ok
			tt.mutate(&ev)
			err := validate(&ev)
			if tt.valid && err != nil {
				t.Errorf("validate = %v, want valid", err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidAccount) {
				t.Errorf("validate = %v, want ErrInvalidAccount", err)
			}
		})
	}
}

// TestUsernamesUniqueAmongLiveUsers: the schema, not only the handler, keeps a username to one
// live user; a deleted user's name is free again.
func TestUsernamesUniqueAmongLiveUsers(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	insert := func(id, acc string) error {
		_, err := db.Exec(`INSERT INTO users (id, account_id, username, email, created_at) VALUES ($1, $2, 'same', 'x@mail.com', 1)`, id, acc)
		return err
	}
	if err := insert("u1", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := insert("u2", "a2"); err == nil {
		t.Fatal("a second live user with the same username was stored")
	}
	if _, err := db.Exec(`UPDATE users SET deleted_at = 2 WHERE id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	if err := insert("u2", "a2"); err != nil {
		t.Errorf("username of a deleted user not free again: %v", err)
	}
	if err := insert("u3", "a2"); err == nil {
		t.Error("a second user of one account was stored")
	}
}

func TestAPI(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO users (id, account_id, username, email, created_at) VALUES ('u1', 'a1', 'jane', 'jane@mail.com', $1)`,
		`INSERT INTO users (id, account_id, username, email, created_at, deleted_at) VALUES ('u2', 'a2', 'gone', 'gone@mail.com', $1, $1 + 1000)`,
	} {
		if _, err := db.Exec(q, created.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&API{DB: db, Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		code         int
		user         string // the userId the body must carry
	}{
		{"GET", "/users/u1", http.StatusOK, "u1"},
		{"GET", "/users?accountId=a1", http.StatusOK, "u1"},
		{"GET", "/users/u2", http.StatusGone, "u2"},
		{"GET", "/users/nobody", http.StatusNotFound, ""},
		{"GET", "/users?accountId=nobody", http.StatusNotFound, ""},
		{"GET", "/users", http.StatusBadRequest, ""},
		{"POST", "/users/u1", http.StatusMethodNotAllowed, ""},
		{"GET", "/elsewhere", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.code)
			continue
		}
		if tt.user == "" {
			continue
		}
		var u User
		if err := json.Unmarshal(b, &u); err != nil {
			t.Errorf("%s %s: %s: %v", tt.method, tt.path, b, err)
			continue
		}
		if u.ID != tt.user || !u.CreatedAt.Equal(created) || (tt.code == http.StatusGone) != (u.DeletedAt != nil) {
			t.Errorf("%s %s = %+v", tt.method, tt.path, u)
		}
	}
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "users.db"), Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
