package sender_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
	"github.com/choreo-dev/choreo/services/notification/internal/sentlog"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// sqliteDB returns a notifications database on SQLite, where the sent log applies (senders on
// PostgreSQL are Shared), and the directory it is in.
func sqliteDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "n.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dir
}

func openLog(t testing.TB, path string) *sentlog.Log {
	t.Helper()
	l, err := sentlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func smtpMailer(t testing.TB, srv *smtptest.Server) *mail.SMTPMailer {
	t.Helper()
	sm, err := mail.NewSMTPMailer(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	return sm
}

// What a previous process left in the sent log was accepted by the mail server: it is recorded
// as sent, at the time logged, before the sender reads, and not sent again. What the sender
// sends goes through the log and ends up recorded in the database too.
func TestSenderFoldsTheSentLogBeforeReading(t *testing.T) {
	t.Parallel()
	db, dir := sqliteDB(t)
	const n, before = 30, 5
	queue(t, db, n)
	path := filepath.Join(dir, "sent.log")
	prev := openLog(t, path)
	at := time.UnixMilli(1_700_000_000_000)
	for i := range before {
		if err := prev.Append(msgID(i), at); err != nil {
			t.Fatal(err)
		}
	}
	_ = prev.Close() // the previous process dies here

	srv := smtptest.Start(t)
	l := openLog(t, path)
	if err := sender.New(db, smtpMailer(t, srv), sender.SentLog(l)).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Count(); got != n-before {
		t.Errorf("the server received %d emails, want %d: those in the log are not sent again", got, n-before)
	}
	if rep := srv.Repeats(); len(rep) != 0 {
		t.Errorf("delivered more than once: %v", rep)
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d emails recorded sent, want %d", got, n)
	}
	if l.Len() != 0 {
		t.Errorf("%d entries left in the log after SendPending, want 0 (folded)", l.Len())
	}
	ns, err := store.ByAccount(context.Background(), db, "au0")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].SentAt == nil || !ns[0].SentAt.Equal(at) || ns[0].Attempts != 1 {
		t.Errorf("email 0 after the fold: %+v, want sent at %v after 1 attempt", ns, at)
	}
}

// A log that cannot take an entry costs nothing but speed: each email is recorded in the
// database instead, and none is sent twice.
func TestSenderRecordsInTheDatabaseWhenTheSentLogFails(t *testing.T) {
	t.Parallel()
	db, dir := sqliteDB(t)
	const n = 20
	queue(t, db, n)
	l := openLog(t, filepath.Join(dir, "sent.log"))
	_ = l.Close() // every append fails
	srv := smtptest.Start(t)
	s := sender.New(db, smtpMailer(t, srv), sender.SentLog(l))
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d emails recorded sent, want %d", got, n)
	}
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, rep := srv.Count(), srv.Repeats(); got != n || len(rep) != 0 {
		t.Errorf("the server received %d emails (repeats %v), want each of %d once", got, rep, n)
	}
}

// With the sent log, each email is still in the log or the database before the next is
// committed: at most one accepted and unrecorded at any time.
func TestSenderWithASentLogRecordsEachEmailBeforeTheNext(t *testing.T) {
	t.Parallel()
	db, dir := sqliteDB(t)
	const n = 40
	queue(t, db, n)
	l := openLog(t, filepath.Join(dir, "sent.log"))
	m := &twoStepMailer{}
	m.onCommit = func(mail.Message) {
		_, committed, _ := m.state()
		if recorded := sentCount(t, db) + l.Len(); recorded != committed {
			t.Errorf("committing email %d while %d are recorded (database and log)", committed+1, recorded)
		}
	}
	if err := sender.New(db, m, sender.SentLog(l)).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, committed, _ := m.state(); committed != n {
		t.Errorf("%d committed, want %d", committed, n)
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d recorded sent, want %d", got, n)
	}
}

// BenchmarkSenderSentLog is BenchmarkSender's two-step case on SQLite with and without the
// sent log, while a writer keeps SQLite's one connection busy as the service's handlers do.
func BenchmarkSenderSentLog(b *testing.B) {
	for _, withLog := range []bool{false, true} {
		b.Run(fmt.Sprint("log=", withLog), func(b *testing.B) {
			db, dir := sqliteDB(b)
			srv := smtptest.Start(b)
			opts := []sender.Opt{}
			if withLog {
				opts = append(opts, sender.SentLog(openLog(b, filepath.Join(dir, "sent.log"))))
			}
			s := sender.New(db, smtpMailer(b, srv), opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go busyWriter(ctx, db)
			sendRounds(b, db, s, 1000)
		})
	}
}

// busyWriter runs small write transactions until ctx ends, as handlers under a steady load do.
func busyWriter(ctx context.Context, db *sql.DB) {
	for i := 0; ctx.Err() == nil; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			continue
		}
		_, _ = tx.ExecContext(ctx, `UPDATE notifications SET last_error = NULL WHERE message_id = $1`, fmt.Sprint("none-", i))
		_ = tx.Commit()
	}
}

// With a window above one, up to that many emails are committed at once, each recorded as soon
// as the server accepts it (in the sent log, or in the database), and never more are accepted
// and unrecorded.
func TestSenderCommitsUpToTheWindowAtOnce(t *testing.T) {
	t.Parallel()
	t.Run("recorded in the database", func(t *testing.T) {
		t.Parallel()
		db, shared := database(t)
		opts := []sender.Opt{}
		if shared {
			opts = append(opts, sender.Shared())
		}
		testWindow(t, db, func() int { return 0 }, opts...)
	})
	t.Run("recorded in the sent log", func(t *testing.T) {
		t.Parallel()
		db, dir := sqliteDB(t)
		l := openLog(t, filepath.Join(dir, "sent.log"))
		testWindow(t, db, l.Len, sender.SentLog(l))
	})
}

func testWindow(t *testing.T, db *sql.DB, logged func() int, opts ...sender.Opt) {
	const n, window = 60, 4
	queue(t, db, n)
	var (
		mu         sync.Mutex
		committing int
		most       int
		reached    = make(chan struct{})
		once       sync.Once
	)
	m := &twoStepMailer{}
	m.onCommit = func(msg mail.Message) {
		mu.Lock()
		committing++
		most = max(most, committing)
		if committing == window {
			once.Do(func() { close(reached) })
		}
		_, committed, _ := m.state()
		if unrecorded := committed - sentCount(t, db) - logged(); unrecorded >= window {
			t.Errorf("committing %s while %d emails are accepted and unrecorded, want fewer than %d", msg.ID, unrecorded, window)
		}
		mu.Unlock()
		// The first commits wait until the window is full, to show that it fills.
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		committing--
		mu.Unlock()
	}
	opts = append(opts, sender.Window(window), sender.Parallel(8))
	if err := sender.New(db, m, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if most != window {
		t.Errorf("at most %d emails committed at once, want %d", most, window)
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d recorded sent, want %d", got, n)
	}
}

// failingCommits is a twoStepMailer whose commit of every tenth email fails temporarily.
type failingCommits struct{ *twoStepMailer }

func (f failingCommits) Prepare(ctx context.Context, m mail.Message) (mail.Prepared, error) {
	p, err := f.twoStepMailer.Prepare(ctx, m)
	if err != nil {
		return nil, err
	}
	return failingCommit{Prepared: p, fail: strings.HasSuffix(strings.TrimSuffix(m.ID, "@test"), "0")}, nil
}

type failingCommit struct {
	mail.Prepared
	fail bool
}

func (c failingCommit) Commit(ctx context.Context) error {
	if c.fail {
		c.Prepared.Abort()
		return temporary{}
	}
	return c.Prepared.Commit(ctx)
}

// A failure is recorded in the database, sends in the log, and the log is folded while emails
// are still being sent: neither waits for the other (a committer that kept SQLite's connection
// after recording a failure, while a fold held the log, stalled both until the fold timed out).
func TestSenderFoldsWhileFailuresAreRecorded(t *testing.T) {
	t.Parallel()
	db, dir := sqliteDB(t)
	const n = 1200 // several full reads, so folds happen between them
	queue(t, db, n)
	l := openLog(t, filepath.Join(dir, "sent.log"))
	m := failingCommits{&twoStepMailer{}}
	// Stalled, the fold gives up after its own timeout and SendPending returns its error.
	if err := sender.New(db, m, sender.SentLog(l)).SendPending(context.Background()); err != nil {
		t.Fatalf("SendPending = %v, want nil", err)
	}
	if got, want := sentCount(t, db), n-n/10; got != want {
		t.Errorf("%d recorded sent, want %d (every tenth failed and waits for a retry)", got, want)
	}
}
