package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/notify"
)

// fakeMailer records what it sends and fails with the errors queued in fail first.
type fakeMailer struct {
	mu   sync.Mutex
	sent []mail.Message
	fail []error
}

func (f *fakeMailer) Send(_ context.Context, m mail.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	f.sent = append(f.sent, m)
	return nil
}

type temporary struct{}

func (temporary) Error() string   { return "451 try later" }
func (temporary) Timeout() bool   { return true }
func (temporary) Temporary() bool { return true }

func setup(t *testing.T, m mail.Mailer) (*notify.Sender, func() (status string, attempts int)) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), notify.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id := notify.MessageID(notify.Welcome, "u1")
	if _, err := db.ExecContext(ctx, `INSERT INTO notifications (message_id, kind, user_id, account_id, recipient, subject, body, msg_date,
		event_id, event_type, correlation_id, status, queued_at) VALUES ($1, 'welcome', 'u1', 'a1', 'jane@mail.com', 'Welcome', 'Hello',
		$2, 'e1', 'UserCreated', 'c1', 'pending', $3)`, id, time.Now().Unix(), time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	s := notify.NewSender(db, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return s, func() (string, int) {
		var status string
		var attempts int
		if err := db.QueryRow(`SELECT status, attempts FROM notifications WHERE message_id = $1`, id).Scan(&status, &attempts); err != nil {
			t.Fatal(err)
		}
		return status, attempts
	}
}

func TestSenderSendsAQueuedEmailOnce(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{}
	s, state := setup(t, m)
	for range 3 {
		if err := s.SendPending(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.sent) != 1 {
		t.Fatalf("sent %d emails, want 1", len(m.sent))
	}
	got := m.sent[0]
	if got.ID != notify.MessageID(notify.Welcome, "u1") || got.To != "jane@mail.com" || got.Headers["X-Choreo-Event-Id"] != "e1" {
		t.Errorf("sent %+v", got)
	}
	if status, attempts := state(); status != "sent" || attempts != 1 {
		t.Errorf("status %s after %d attempts, want sent after 1", status, attempts)
	}
}

func TestSenderRetriesATemporaryFailureLater(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{fail: []error{temporary{}}}
	s, state := setup(t, m)
	now := time.Now()
	s.Now = func() time.Time { return now }
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, attempts := state(); status != "pending" || attempts != 1 || len(m.sent) != 0 {
		t.Fatalf("after a temporary failure: %s, %d attempts, %d sent; want pending, 1, 0", status, attempts, len(m.sent))
	}
	if err := s.SendPending(context.Background()); err != nil || len(m.sent) != 0 {
		t.Fatalf("retried before its backoff: %d sent, %v", len(m.sent), err)
	}
	now = now.Add(time.Minute)
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, attempts := state(); status != "sent" || attempts != 2 || len(m.sent) != 1 {
		t.Fatalf("after the backoff: %s, %d attempts, %d sent; want sent, 2, 1", status, attempts, len(m.sent))
	}
}

func TestSenderGivesUpOnAPermanentFailure(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{fail: []error{errors.New("550 no such user")}}
	s, state := setup(t, m)
	for range 2 {
		if err := s.SendPending(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if status, attempts := state(); status != "failed" || attempts != 1 || len(m.sent) != 0 {
		t.Fatalf("%s after %d attempts, %d sent; want failed after 1, none sent", status, attempts, len(m.sent))
	}
}

// TestMessageIDIsGolden: the Message-ID is the idempotency key a mail server or a reader uses to
// recognise a resend, and the notifications table's key; a change would make every email of an
// upgraded service new.
func TestMessageIDIsGolden(t *testing.T) {
	t.Parallel()
	if got, want := notify.MessageID(notify.Welcome, "ff643d8b-b51f-55e7-854e-cd748a9f47e0"), "cfb872b2-dd5f-56be-b534-0edd32caea94@choreo.local"; got != want {
		t.Errorf("MessageID(welcome, user of acc-1) = %s, want %s", got, want)
	}
}

// gateMailer accepts a message only once release is closed, and says when a send has begun,
// so a test can stop the sender while the mail server is still answering.
type gateMailer struct {
	begun   chan struct{}
	release chan struct{}
	fakeMailer
}

func (g *gateMailer) Send(ctx context.Context, m mail.Message) error {
	close(g.begun)
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.fakeMailer.Send(ctx, m)
}

// A stop that comes while the server is accepting an email must neither cut the send off nor
// leave the accepted email unrecorded: either would send it again at the next start.
func TestSenderStoppedMidSendRecordsTheEmail(t *testing.T) {
	t.Parallel()
	m := &gateMailer{begun: make(chan struct{}), release: make(chan struct{})}
	s, state := setup(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.SendPending(ctx) }()
	<-m.begun
	cancel()
	close(m.release)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("SendPending: %v", err)
	}
	if status, attempts := state(); status != "sent" || attempts != 1 {
		t.Fatalf("after a stop mid-send: status %q after %d attempts, want sent after 1", status, attempts)
	}
	again := &fakeMailer{}
	s.Mailer = again
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(again.sent) != 0 {
		t.Fatalf("the next start sent the email again (%d sends)", len(again.sent))
	}
}
