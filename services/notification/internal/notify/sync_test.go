package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/notification/internal/notify"
)

// TestSendWelcomeIdempotent: SendEmail queues the welcome email the handler would, once per
// user however often it is called, and the Sender delivers it once.
func TestSendWelcomeIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), notify.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var wakes atomic.Int32
	srv := httptest.NewServer((&notify.API{DB: db, Log: slog.New(slog.DiscardHandler), Wake: func() { wakes.Add(1) }}).Handler())
	t.Cleanup(srv.Close)
	post := func(body string) (int, notify.SendWelcomeResponse) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/emails/welcome", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out notify.SendWelcomeResponse
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
		if status != http.StatusAccepted || out.MessageID != notify.MessageID(notify.Welcome, "u1") || out.Status != "queued" {
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
	m := &fakeMailer{}
	if err := notify.NewSender(db, m, slog.New(slog.DiscardHandler)).SendPending(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 1 {
		t.Fatalf("sent %d emails, want 1", len(m.sent))
	}
	subject, _ := notify.WelcomeEmail("de", "jöhn")
	if got := m.sent[0]; got.To != "john@mail.com" || got.Subject != subject || got.Headers["X-Choreo-Correlation-Id"] != "op1" {
		t.Errorf("sent %+v", got)
	}
	ns, err := notify.Store{DB: db}.ByCorrelation(ctx, "op1")
	if err != nil || len(ns) != 1 || ns[0].EventType != notify.CallType || ns[0].Status != "sent" {
		t.Errorf("recorded %+v, %v", ns, err)
	}
}
