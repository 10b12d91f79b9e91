package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/notification/internal/api"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// recorder is a mailer that keeps what it sends.
type recorder struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (r *recorder) Send(_ context.Context, m mail.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// TestSendWelcomeIdempotent: SendEmail queues the welcome email the handler would, once per
// user however often it is called, and the Sender delivers it once.
func TestSendWelcomeIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var wakes atomic.Int32
	srv := httptest.NewServer((&api.API{DB: db, Log: slog.New(slog.DiscardHandler), Wake: func() { wakes.Add(1) }}).Handler())
	t.Cleanup(srv.Close)
	post := func(body string) (int, api.SendWelcomeResponse) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/emails/welcome", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out api.SendWelcomeResponse
		if resp.StatusCode == http.StatusAccepted {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		return resp.StatusCode, out
	}
	req := `{"userId":"u1","accountId":"a1","username":"jöhn","email":"john@mail.com","locale":"de","operationId":"op1"}`
	for i := range 3 {
		status, out := post(req)
		if status != http.StatusAccepted || out.MessageID != handlers.MessageID(handlers.Welcome, "u1") || out.Status != "queued" {
			t.Fatalf("call %d: %d %+v", i+1, status, out)
		}
	}
	for _, bad := range []string{
		`{"userId":"u2","accountId":"a2","username":"x","email":"Jane <x@mail.com>","operationId":"op2"}`,
		`{"userId":"","accountId":"a2","username":"x","email":"x@mail.com","operationId":"op2"}`,
		`{"userId":"u2","accountId":"a2","username":"x","email":"x@mail.com"}`,
	} {
		if status, _ := post(bad); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, status)
		}
	}
	if wakes.Load() != 3 {
		t.Errorf("the sender was woken %d times, want 3", wakes.Load())
	}
	m := &recorder{}
	if err := sender.New(db, m).SendPending(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 {
		t.Fatalf("sent %d emails, want 1", len(m.sent))
	}
	subject, _ := handlers.WelcomeEmail("de", "jöhn")
	if got := m.sent[0]; got.To != "john@mail.com" || got.Subject != subject || got.Headers["X-Choreo-Correlation-Id"] != "op1" {
		t.Errorf("sent %+v", got)
	}
	ns, err := store.ByCorrelation(ctx, db, "op1")
	if err != nil || len(ns) != 1 || ns[0].EventType != api.CallType || ns[0].Status != "sent" {
		t.Errorf("recorded %+v, %v", ns, err)
	}
}
