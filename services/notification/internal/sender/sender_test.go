package sender_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
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

func (f *fakeMailer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

type temporary struct{}

func (temporary) Error() string   { return "451 try later" }
func (temporary) Timeout() bool   { return true }
func (temporary) Temporary() bool { return true }

// database returns a notifications database: PostgreSQL in a schema of the test's own with
// TEST_DATABASE_URL, else SQLite; shared says it is PostgreSQL (senders take sender.Shared).
func database(t testing.TB) (db *sql.DB, shared bool) {
	t.Helper()
	db, shared, _ = reopenable(t)
	return db, shared
}

// reopenable is database, also returning how to open another handle on the same database (closed
// when the test ends, unless the test closed it), as a second process would.
func reopenable(t testing.TB) (db *sql.DB, shared bool, reopen func() *sql.DB) {
	t.Helper()
	ctx := context.Background()
	open := func(o func() (*sql.DB, error)) func() *sql.DB {
		return func() *sql.DB {
			db, err := o()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		}
	}
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		var u string
		db, u = storetest.PostgresSchema(t, base, "sender_test", store.Migrations())
		return db, true, open(func() (*sql.DB, error) { return postgres.Open(ctx, u, store.Migrations()) })
	}
	path := filepath.Join(t.TempDir(), "n.db")
	db, err := sqlite.Open(ctx, path, store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, false, open(func() (*sql.DB, error) { return sqlite.Open(ctx, path, store.Migrations()) })
}

// queue queues n welcome emails, to users u0..u<n-1>, with message IDs msgID(0..n-1).
func queue(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	queueRange(t, db, 0, n, 0)
}

// queueTo is queue, but with perRecipient > 0 the emails go perRecipient to an address, email i
// to recipient(i, perRecipient), each address's emails queued one after the other.
func queueTo(t testing.TB, db *sql.DB, n, perRecipient int) {
	t.Helper()
	queueRange(t, db, 0, n, perRecipient)
}

// queueRange is queueTo for the emails from to from+n-1.
func queueRange(t testing.TB, db *sql.DB, from, n, perRecipient int) {
	t.Helper()
	queueEach(t, db, from, n, func(i int) string {
		if perRecipient > 0 {
			return recipient(i, perRecipient)
		}
		return fmt.Sprint("u", i, "@mail.com")
	})
}

// queueEach queues the emails from to from+n-1, the i-th to the address to(i).
func queueEach(t testing.TB, db *sql.DB, from, n int, to func(i int) string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now()
	for i := from; i < from+n; i++ {
		u := fmt.Sprint("u", i)
		if err := store.Queue(ctx, tx, store.Email{
			MessageID: msgID(i), Kind: "welcome", UserID: u, AccountID: "a" + u, To: to(i),
			Subject: "Welcome", Body: "Hello", Date: now, EventID: "e" + u, EventType: "UserCreated", CorrelationID: "c" + u,
			QueuedAt: now.Add(time.Duration(i) * time.Millisecond), ChainStart: now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// sendRounds queues n emails and has s send them, once per iteration of b, and reports the
// emails sent a second; it returns how many were sent.
func sendRounds(b *testing.B, db *sql.DB, s *sender.Sender, n int) (sent int) {
	b.Helper()
	for b.Loop() {
		b.StopTimer()
		queueRange(b, db, sent, n, 0)
		b.StartTimer()
		if err := s.SendPending(context.Background()); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "emails/s")
	return sent
}

// recipient is the address of the i-th email queueTo queues perRecipient to an address.
func recipient(i, perRecipient int) string { return fmt.Sprint("r", i/perRecipient, "@mail.com") }

// msgID is the message ID of the i-th email queue queues.
func msgID(i int) string { return fmt.Sprint("id-", i, "@test") }

// state returns the status and attempts of the i-th email queue queued.
func state(t *testing.T, db *sql.DB, i int) (status string, attempts int) {
	t.Helper()
	id := msgID(i)
	ns, err := store.ByAccount(context.Background(), db, fmt.Sprint("au", i))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.MessageID == id {
			return n.Status, n.Attempts
		}
	}
	t.Fatalf("no email %s", id)
	return "", 0
}

func setup(t *testing.T, m mail.Mailer, opts ...sender.Opt) (*sender.Sender, *sql.DB) {
	t.Helper()
	db, shared := database(t)
	queue(t, db, 1)
	opts = append([]sender.Opt{sender.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	if shared {
		opts = append(opts, sender.Shared())
	}
	return sender.New(db, m, opts...), db
}

func TestSenderSendsAQueuedEmailOnce(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{}
	s, db := setup(t, m)
	for range 3 {
		if err := s.SendPending(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.sent) != 1 {
		t.Fatalf("sent %d emails, want 1", len(m.sent))
	}
	got := m.sent[0]
	if got.ID != msgID(0) || got.To != "u0@mail.com" || got.Headers["X-Choreo-Event-Id"] != "eu0" || got.From == "" {
		t.Errorf("sent %+v", got)
	}
	if status, attempts := state(t, db, 0); status != "sent" || attempts != 1 {
		t.Errorf("status %s after %d attempts, want sent after 1", status, attempts)
	}
}

func TestSenderRetriesATemporaryFailureLater(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{fail: []error{temporary{}}}
	now := time.Now()
	var mu sync.Mutex
	s, db := setup(t, m, sender.Clock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, attempts := state(t, db, 0); status != "pending" || attempts != 1 || len(m.sent) != 0 {
		t.Fatalf("after a temporary failure: %s, %d attempts, %d sent; want pending, 1, 0", status, attempts, len(m.sent))
	}
	if err := s.SendPending(context.Background()); err != nil || len(m.sent) != 0 {
		t.Fatalf("retried before its backoff: %d sent, %v", len(m.sent), err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, attempts := state(t, db, 0); status != "sent" || attempts != 2 || len(m.sent) != 1 {
		t.Fatalf("after the backoff: %s, %d attempts, %d sent; want sent, 2, 1", status, attempts, len(m.sent))
	}
}

func TestSenderGivesUpOnAPermanentFailure(t *testing.T) {
	t.Parallel()
	m := &fakeMailer{fail: []error{errors.New("550 no such user")}}
	s, db := setup(t, m)
	for range 2 {
		if err := s.SendPending(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if status, attempts := state(t, db, 0); status != "failed" || attempts != 1 || len(m.sent) != 0 {
		t.Fatalf("%s after %d attempts, %d sent; want failed after 1, none sent", status, attempts, len(m.sent))
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
	s, db := setup(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.SendPending(ctx) }()
	<-m.begun
	cancel()
	close(m.release)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("SendPending: %v", err)
	}
	if status, attempts := state(t, db, 0); status != "sent" || attempts != 1 {
		t.Fatalf("after a stop mid-send: status %q after %d attempts, want sent after 1", status, attempts)
	}
	again := &fakeMailer{}
	s2 := sender.New(db, again)
	if err := s2.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(again.sent) != 0 {
		t.Fatalf("the next start sent the email again (%d sends)", len(again.sent))
	}
}

// boundMailer holds every send until bound sends are in flight at once (or a generous deadline
// passes), and records the most it saw in flight.
type boundMailer struct {
	bound   int
	mu      sync.Mutex
	now     int
	most    int
	full    chan struct{}
	fullSet bool
	fakeMailer
}

func (b *boundMailer) Send(ctx context.Context, m mail.Message) error {
	b.mu.Lock()
	b.now++
	b.most = max(b.most, b.now)
	if b.now >= b.bound && !b.fullSet {
		b.fullSet = true
		close(b.full)
	}
	b.mu.Unlock()
	select {
	case <-b.full:
	case <-time.After(10 * time.Second):
	}
	b.mu.Lock()
	b.now--
	b.mu.Unlock()
	return b.fakeMailer.Send(ctx, m)
}

func TestSenderSendsInParallelUpToItsBound(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	const n, bound = 40, 4
	queue(t, db, n)
	m := &boundMailer{bound: bound, full: make(chan struct{})}
	opts := []sender.Opt{sender.Parallel(bound), sender.BatchSize(16)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	if err := sender.New(db, m, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.most != bound {
		t.Errorf("at most %d sends in flight at once, want %d", m.most, bound)
	}
	if m.count() != n {
		t.Errorf("%d sent, want %d", m.count(), n)
	}
	for i := range n {
		if status, attempts := state(t, db, i); status != "sent" || attempts != 1 {
			t.Errorf("email %d: %s after %d attempts, want sent after 1", i, status, attempts)
		}
	}
}

// run runs s until the test ends.
func run(t *testing.T, s *sender.Sender) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitSent waits until count reaches n.
func waitSent(t *testing.T, count func() int, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d emails after %s", count(), n, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Neither a queued email nor one waiting for its retry waits for the poll interval.
func TestSenderRunsWhenWokenAndWhenARetryFallsDue(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	m := &fakeMailer{fail: []error{temporary{}}}
	opts := []sender.Opt{sender.PollInterval(time.Hour)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	s := sender.New(db, m, opts...)
	run(t, s)
	queue(t, db, 1)
	s.Wake()
	// The first attempt fails temporarily; the retry falls due a second later.
	recorded := func() int {
		if status, _ := state(t, db, 0); status == "sent" {
			return 1
		}
		return 0
	}
	waitSent(t, recorded, 1, 30*time.Second)
	if status, attempts := state(t, db, 0); status != "sent" || attempts != 2 || m.count() != 1 {
		t.Errorf("%s after %d attempts, %d sent; want sent after 2, 1 sent", status, attempts, m.count())
	}
}

// Two replicas' senders sharing one PostgreSQL database send each email exactly once.
func TestSendersSharingADatabaseSendEachEmailOnce(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	if !shared {
		t.Skip("TEST_DATABASE_URL unset: replicas share a PostgreSQL database")
	}
	const n = 500
	queue(t, db, n)
	srv := smtptest.Start(t)
	for range 2 {
		m, err := mail.NewSMTPMailer(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		s := sender.New(db, m, sender.Shared(), sender.BatchSize(32))
		run(t, s)
		s.Wake()
	}
	recorded := func() int {
		counts, err := store.Counts(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		return int(counts[store.StatusSent])
	}
	waitSent(t, recorded, n, 60*time.Second)
	if rep := srv.Repeats(); len(rep) > 0 {
		t.Errorf("%d emails delivered more than once: %v", len(rep), rep)
	}
	if got := srv.Count(); got != n {
		t.Errorf("%d deliveries, want %d", got, n)
	}
}

// recordedMailer checks, at each send, that every email it sent before is recorded as sent:
// that at most one email is ever handed over and not yet recorded. It reads through a handle of
// its own, as an observer would: the sender may hold a connection of its handle meanwhile.
type recordedMailer struct {
	t  *testing.T
	db *sql.DB
	fakeMailer
}

func (r *recordedMailer) Send(ctx context.Context, m mail.Message) error {
	counts, err := store.Counts(ctx, r.db)
	if err != nil {
		r.t.Error(err)
	} else if before := r.count(); counts[store.StatusSent] != int64(before) {
		r.t.Errorf("sending email %d while %d are recorded sent: more than one email unrecorded at once", before+1, counts[store.StatusSent])
	}
	return r.fakeMailer.Send(ctx, m)
}

// By default a crash can resend at most the one email in flight: each send is recorded before
// the next begins.
func TestSenderRecordsEachEmailBeforeTheNextByDefault(t *testing.T) {
	t.Parallel()
	db, shared, reopen := reopenable(t)
	const n = 20
	queue(t, db, n)
	m := &recordedMailer{t: t, db: reopen()}
	var opts []sender.Opt
	if shared {
		opts = append(opts, sender.Shared())
	}
	if err := sender.New(db, m, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.count() != n {
		t.Errorf("%d sent, want %d", m.count(), n)
	}
}
