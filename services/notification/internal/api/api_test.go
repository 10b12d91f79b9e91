package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/services/notification/internal/api"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// TestEffectsAPI: GET /effects lists one operation's emails as effects, in the shape choreo
// trace reads, and asks for the operation.
func TestEffectsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	queued := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, r := range []struct{ kind, user, corr, status string }{
		{"welcome", "u1", "c1", "sent"}, {"farewell", "u1", "c2", "failed"}, {"welcome", "u2", "c3", "pending"},
	} {
		sent := any(nil)
		if r.status == "sent" {
			sent = queued.Add(time.Second).UnixMilli()
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO notifications (message_id, kind, user_id, account_id, recipient, subject, body, msg_date,
			event_id, event_type, correlation_id, status, queued_at, sent_at, last_error) VALUES ($1, $2, $3, 'a1', 'jane@mail.com', 'S', 'B',
			0, $4, 'UserCreated', $5, $6, $7, $8, NULLIF($9, ''))`, handlers.MessageID(r.kind, r.user), r.kind, r.user, "ev-"+r.corr, r.corr,
			r.status, queued.UnixMilli(), sent, map[bool]string{true: "550 no such mailbox"}[r.status == "failed"]); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer((&api.API{Service: "notification-service", DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(srv.Close)

	effs, err := trace.FetchEffects(ctx, srv.Client(), srv.URL, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(effs) != 1 || effs[0].Service != "notification-service" || effs[0].Effect != "welcome email" || effs[0].EventID != "ev-c1" ||
		effs[0].Status != "sent" || !effs[0].At.Equal(queued) || effs[0].DoneAt == nil || !effs[0].DoneAt.Equal(queued.Add(time.Second)) {
		t.Errorf("effects of c1: %+v", effs)
	}
	if effs, err := trace.FetchEffects(ctx, srv.Client(), srv.URL, "c2"); err != nil || len(effs) != 1 ||
		effs[0].Effect != "farewell email" || effs[0].Status != "failed" || effs[0].Error != "550 no such mailbox" || effs[0].DoneAt != nil {
		t.Errorf("effects of c2: %+v %v", effs, err)
	}
	if effs, err := trace.FetchEffects(ctx, srv.Client(), srv.URL, "nobody"); err != nil || len(effs) != 0 {
		t.Errorf("effects of an unknown operation: %+v %v", effs, err)
	}
	resp, err := http.Get(srv.URL + "/effects")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /effects without correlationId: %d %v, want 400", resp.StatusCode, body)
	}
}
