package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/account/internal/api"
	"github.com/choreo-dev/choreo/services/account/internal/orchestrator"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// fakeOrchestrator records the calls of an orchestrated registration; each step fails with its
// error when set.
type fakeOrchestrator struct {
	addErr, sendErr, deleteErr error

	mu    sync.Mutex
	calls []string
	sent  []orchestrator.Welcome
}

var _ api.Orchestrator = (*fakeOrchestrator)(nil)

func (f *fakeOrchestrator) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeOrchestrator) AddUser(_ context.Context, u orchestrator.User) (string, error) {
	f.record("AddUser " + u.Username)
	if f.addErr != nil {
		return "", f.addErr
	}
	return "user-of-" + u.AccountID, nil
}

func (f *fakeOrchestrator) SendWelcome(_ context.Context, w orchestrator.Welcome) error {
	f.record("SendWelcome " + w.Username)
	if f.sendErr != nil {
		return f.sendErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, w)
	return nil
}

func (f *fakeOrchestrator) DeleteUser(_ context.Context, userID string) error {
	f.record("DeleteUser")
	return f.deleteErr
}

func newOrchestratedFixture(t *testing.T, orch *fakeOrchestrator) *fixture {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "account.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, emit: &fakeEmitter{}}
	f.now.Store(&start)
	a := &api.API{DB: db, Emit: f.emit, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *f.now.Load() }, Orchestrator: orch}
	f.srv = httptest.NewServer(a.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// TestRegisterOrchestrated: the answer a client gets is the outcome of every step; a refused
// registration leaves no account, and a user created before a failed SendEmail is deleted again.
func TestRegisterOrchestrated(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("connection refused: %w", orchestrator.ErrUnavailable)
	tests := []struct {
		name      string
		orch      *fakeOrchestrator
		status    int
		code      string
		calls     []string
		accounts  int
		emailSent bool
	}{
		{"every step succeeds", &fakeOrchestrator{}, http.StatusCreated, "",
			[]string{"AddUser jane", "SendWelcome jane"}, 1, true},
		{"user service unavailable", &fakeOrchestrator{addErr: unavailable}, http.StatusServiceUnavailable, httpapi.CodeUnavailable,
			[]string{"AddUser jane"}, 0, false},
		{"username taken", &fakeOrchestrator{addErr: fmt.Errorf("409: %w", orchestrator.ErrUsernameTaken)}, http.StatusConflict, httpapi.CodeConflict,
			[]string{"AddUser jane"}, 0, false},
		{"notification service unavailable: the user is deleted again", &fakeOrchestrator{sendErr: unavailable}, http.StatusServiceUnavailable, httpapi.CodeUnavailable,
			[]string{"AddUser jane", "SendWelcome jane", "DeleteUser"}, 0, false},
		{"compensation fails too: still refused", &fakeOrchestrator{sendErr: unavailable, deleteErr: unavailable}, http.StatusServiceUnavailable, httpapi.CodeUnavailable,
			[]string{"AddUser jane", "SendWelcome jane", "DeleteUser"}, 0, false},
		{"a refused request is a bug: 500", &fakeOrchestrator{addErr: fmt.Errorf("400: %w", orchestrator.ErrRefused)}, http.StatusInternalServerError, httpapi.CodeInternal,
			[]string{"AddUser jane"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orch := tt.orch
			f := newOrchestratedFixture(t, orch)
			b, _ := json.Marshal(map[string]string{"username": "jane", "email": "jane@mail.com", "locale": "de"})
			resp, body := f.do(t, http.MethodPost, "/accounts", "application/json", bytes.NewReader(b))
			if tt.code != "" {
				wantError(t, resp, body, tt.status, tt.code)
			} else if resp.StatusCode != tt.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			orch.mu.Lock()
			calls, sent := orch.calls, orch.sent
			orch.mu.Unlock()
			if fmt.Sprint(calls) != fmt.Sprint(tt.calls) {
				t.Errorf("calls = %q, want %q", calls, tt.calls)
			}
			if n := f.accountRows(t); n != tt.accounts {
				t.Errorf("%d accounts stored, want %d", n, tt.accounts)
			}
			if n, _, _ := f.emit.snapshot(); n != 0 {
				t.Errorf("%d events emitted; an orchestrated registration emits none", n)
			}
			if !tt.emailSent {
				return
			}
			var out struct{ AccountID, UserID, Status string }
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			acc, err := store.Get(t.Context(), f.db, out.AccountID)
			if err != nil || acc.Status != "active" || acc.Username != "jane" || out.UserID != "user-of-"+out.AccountID {
				t.Errorf("answer %s, stored %+v, %v", body, acc, err)
			}
			if len(sent) != 1 || sent[0].AccountID != out.AccountID || sent[0].UserID != out.UserID || sent[0].Locale != "de" ||
				sent[0].OperationID == "" || !sent[0].StartedAt.Equal(acc.CreatedAt) {
				t.Errorf("SendWelcome got %+v", sent)
			}
		})
	}
}

// TestRegisterOrchestratedValidates: an invalid registration is refused before any call.
func TestRegisterOrchestratedValidates(t *testing.T) {
	t.Parallel()
	orch := &fakeOrchestrator{}
	f := newOrchestratedFixture(t, orch)
	resp, body := f.do(t, http.MethodPost, "/accounts", "application/json", bytes.NewReader([]byte(`{"username":"jane","email":"nope"}`)))
	wantError(t, resp, body, http.StatusBadRequest, httpapi.CodeInvalid)
	if len(orch.calls) != 0 {
		t.Errorf("calls %q for an invalid registration", orch.calls)
	}
}
