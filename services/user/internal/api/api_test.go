package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

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
		var u store.User
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
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "users.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
