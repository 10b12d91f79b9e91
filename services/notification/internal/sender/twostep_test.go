package sender_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// twoStepMailer is a mail.Preparer double: it counts prepared messages (neither committed nor
// aborted yet), records commits in order and aborts, and runs the hooks a test sets.
type twoStepMailer struct {
	onPrepare func(m mail.Message) // in Prepare, before the message counts as prepared
	onCommit  func(m mail.Message) // in Commit, before the message counts as committed

	mu        sync.Mutex
	open      int // prepared, neither committed nor aborted
	mostOpen  int
	committed []mail.Message
	aborted   []mail.Message
}

var _ mail.Preparer = (*twoStepMailer)(nil)

func (f *twoStepMailer) Send(ctx context.Context, m mail.Message) error {
	p, err := f.Prepare(ctx, m)
	if err != nil {
		return err
	}
	return p.Commit(ctx)
}

func (f *twoStepMailer) Prepare(_ context.Context, m mail.Message) (mail.Prepared, error) {
	if f.onPrepare != nil {
		f.onPrepare(m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open++
	f.mostOpen = max(f.mostOpen, f.open)
	return &twoStep{f: f, m: m}, nil
}

func (f *twoStepMailer) state() (open, committed, aborted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open, len(f.committed), len(f.aborted)
}

type twoStep struct {
	f *twoStepMailer
	m mail.Message
}

func (p *twoStep) Commit(context.Context) error {
	if p.f.onCommit != nil {
		p.f.onCommit(p.m)
	}
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.f.open--
	p.f.committed = append(p.f.committed, p.m)
	return nil
}

func (p *twoStep) Abort() {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.f.open--
	p.f.aborted = append(p.f.aborted, p.m)
}

// index returns i for the message ID msgID(i).
func index(t *testing.T, id string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(id, "id-%d@test", &i); err != nil {
		t.Fatalf("message ID %q: %v", id, err)
	}
	return i
}

// eventually waits for cond, up to a generous deadline, and reports whether it came.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func sentCount(t testing.TB, db *sql.DB) int {
	t.Helper()
	counts, err := store.Counts(context.Background(), db)
	if err != nil {
		t.Error(err)
		return -1
	}
	return int(counts[store.StatusSent])
}

// With the default batch size, emails are prepared in parallel up to the bound, but each is
// committed only once every email committed before it is recorded: at most one is ever accepted
// and unrecorded. Emails to one address are committed in the order they were queued.
func TestSenderPreparesInParallelAndCommitsOneAtATime(t *testing.T) {
	t.Parallel()
	db, shared, reopen := reopenable(t)
	observer := reopen() // the sender may hold its handle's connection during a commit
	const n, perRecipient, parallel = 48, 4, 8
	queueTo(t, db, n, perRecipient)
	var (
		gate     sync.Mutex
		entered  int
		full     = make(chan struct{})
		fullOnce sync.Once
	)
	m := &twoStepMailer{}
	m.onPrepare = func(mail.Message) {
		// The first prepares wait until the bound is reached, to show that it is; later ones
		// take a little random time, so that workers overtake one another.
		gate.Lock()
		entered++
		if entered == parallel {
			fullOnce.Do(func() { close(full) })
		}
		first := entered <= parallel
		gate.Unlock()
		if first {
			select {
			case <-full:
			case <-time.After(10 * time.Second):
			}
			return
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	}
	var committing atomic.Bool
	m.onCommit = func(msg mail.Message) {
		if !committing.CompareAndSwap(false, true) {
			t.Errorf("committing %s while another commit runs", msg.ID)
			return
		}
		defer committing.Store(false)
		time.Sleep(100 * time.Microsecond) // room for a second commit, were one let in
		_, committed, _ := m.state()
		if got := sentCount(t, observer); got != committed {
			t.Errorf("committing %s while %d emails are recorded sent after %d commits: more than one unrecorded", msg.ID, got, committed)
		}
	}
	opts := []sender.Opt{sender.Parallel(parallel)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	if err := sender.New(db, m, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.mostOpen != parallel {
		t.Errorf("at most %d emails prepared at once, want %d", m.mostOpen, parallel)
	}
	if len(m.committed) != n || len(m.aborted) != 0 {
		t.Fatalf("%d committed, %d aborted; want %d committed", len(m.committed), len(m.aborted), n)
	}
	last := map[string]int{}
	for _, msg := range m.committed {
		i := index(t, msg.ID)
		if prev, ok := last[msg.To]; ok && prev > i {
			t.Errorf("email %d to %s committed before email %d, which was queued before it", prev, msg.To, i)
		}
		last[msg.To] = i
	}
	for i := range n {
		if status, attempts := state(t, db, i); status != "sent" || attempts != 1 {
			t.Errorf("email %d: %s after %d attempts, want sent after 1", i, status, attempts)
		}
	}
}

// A stop while emails are prepared abandons them: the commit under way finishes and is recorded,
// the prepared ones are aborted, not counted as attempts, and sent by the next start.
func TestSenderStopAbandonsPreparedEmails(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	const n, parallel = 10, 4
	queue(t, db, n)
	var (
		committing = make(chan string, 1)
		release    = make(chan struct{})
		once       sync.Once
	)
	m := &twoStepMailer{onCommit: func(msg mail.Message) {
		once.Do(func() {
			committing <- msg.ID
			<-release
		})
	}}
	opts := []sender.Opt{sender.Parallel(parallel)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sender.New(db, m, opts...).SendPending(ctx) }()
	first := <-committing
	// Every worker holds an email: the one committing and one prepared each.
	if !eventually(func() bool { open, _, _ := m.state(); return open == parallel }) {
		t.Fatal("the workers did not all prepare an email within 20s")
	}
	cancel()
	close(release)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("SendPending: %v", err)
	}
	if open, committed, aborted := m.state(); open != 0 || committed != 1 || aborted != parallel-1 {
		t.Fatalf("after the stop: %d prepared, %d committed, %d aborted; want 0, 1, %d", open, committed, aborted, parallel-1)
	}
	for i := range n {
		status, attempts := state(t, db, i)
		if msgID(i) == first {
			if status != "sent" || attempts != 1 {
				t.Errorf("the email committing at the stop: %s after %d attempts, want sent after 1", status, attempts)
			}
		} else if status != "pending" || attempts != 0 {
			t.Errorf("email %d: %s after %d attempts, want pending after 0", i, status, attempts)
		}
	}
	// The next start sends the rest, each once. Claimed emails wait for their lease to end: the
	// restart's clock is past it.
	again := &twoStepMailer{}
	opts = append(opts, sender.Clock(func() time.Time { return time.Now().Add(2 * time.Minute) }))
	if err := sender.New(db, again, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(again.committed) != n-1 || slices.ContainsFunc(again.committed, func(m mail.Message) bool { return m.ID == first }) {
		t.Errorf("the restart committed %d emails, want the %d others", len(again.committed), n-1)
	}
}

// crashMailer is an SMTPMailer whose process "dies" in the crashAt-th commit, after the server
// accepted the message and before the sender records it: the connections of the other prepared
// messages close, as the kernel closes a dead process's sockets, and the committing goroutine
// stops until freeze is closed.
type crashMailer struct {
	*mail.SMTPMailer
	crashAt int
	crashed chan string   // receives the ID of the message in doubt
	freeze  chan struct{} // closed when the test no longer needs the "dead" process stopped
	inDoubt func() int    // emails accepted and not recorded, read at the crash
	errorf  func(format string, args ...any)

	mu       sync.Mutex
	prepared map[*crashPrepared]bool // neither committed nor aborted
	commits  int
	dead     bool
}

func (c *crashMailer) Prepare(ctx context.Context, m mail.Message) (mail.Prepared, error) {
	p, err := c.SMTPMailer.Prepare(ctx, m)
	if err != nil {
		return nil, err
	}
	cp := &crashPrepared{Prepared: p, c: c, id: m.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		p.Abort()
		return nil, errors.New("the process is dead")
	}
	c.prepared[cp] = true
	return cp, nil
}

func (c *crashMailer) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.prepared)
}

type crashPrepared struct {
	mail.Prepared
	c  *crashMailer
	id string
}

func (p *crashPrepared) Commit(ctx context.Context) error {
	c := p.c
	c.mu.Lock()
	delete(c.prepared, p)
	c.commits++
	k := c.commits
	c.mu.Unlock()
	err := p.Prepared.Commit(ctx)
	if k != c.crashAt {
		return err
	}
	// Die once the other workers hold prepared messages, so the crash finds them at DATA.
	if !eventually(func() bool { return c.open() == parallelCrash-1 }) {
		c.errorf("%d messages prepared at the crash after 20s, want %d", c.open(), parallelCrash-1)
	}
	n := c.inDoubt()
	c.mu.Lock()
	c.dead = true
	for o := range c.prepared {
		o.Prepared.Abort()
	}
	c.mu.Unlock()
	c.crashed <- fmt.Sprint(p.id, " ", n)
	<-c.freeze
	return err
}

func (p *crashPrepared) Abort() {
	p.c.mu.Lock()
	delete(p.c.prepared, p)
	p.c.mu.Unlock()
	p.Prepared.Abort()
}

// parallelCrash is the sender's parallelism in the crash test.
const parallelCrash = 8

// A crash between the server's acceptance of an email and its record, while other emails are
// prepared on their connections, leaves exactly that one email accepted and unrecorded: the
// prepared ones are not delivered (their connections close before the final dot), and the next
// start sends each email that is not recorded, so only the one in doubt arrives twice.
func TestSenderCrashLeavesAtMostOneEmailInDoubt(t *testing.T) {
	t.Parallel()
	t.Run("recorded in the database", func(t *testing.T) { t.Parallel(); testCrash(t, false) })
	if os.Getenv("TEST_DATABASE_URL") == "" { // senders on PostgreSQL are Shared, where no log is kept
		t.Run("recorded in the sent log", func(t *testing.T) { t.Parallel(); testCrash(t, true) })
	}
}

func testCrash(t *testing.T, withLog bool) {
	db, shared, reopen := reopenable(t)
	const n, crashAt = 60, 20
	queue(t, db, n)
	srv := smtptest.Start(t)
	// The crashing process has a database handle of its own; the test observes through db.
	dying := reopen()
	sm, err := mail.NewSMTPMailer(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	var (
		logPath = filepath.Join(t.TempDir(), "sent.log")
		logged  = func() int { return 0 } // emails recorded in the dying process's sent log
		opts    = []sender.Opt{sender.Parallel(parallelCrash)}
	)
	if shared {
		opts = append(opts, sender.Shared())
	}
	dyingOpts := opts
	if withLog {
		l := openLog(t, logPath)
		logged = l.Len
		dyingOpts = append(slices.Clip(opts), sender.SentLog(l))
	}
	m := &crashMailer{SMTPMailer: sm, crashAt: crashAt, crashed: make(chan string, 1), freeze: make(chan struct{}),
		prepared: map[*crashPrepared]bool{}, inDoubt: func() int { return srv.Count() - sentCount(t, db) - logged() }, errorf: t.Errorf}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sender.New(dying, m, dyingOpts...).SendPending(ctx) }()
	defer func() {
		// The "dead" process never runs again in a real crash; here it is stopped first.
		cancel()
		close(m.freeze)
		<-done
	}()
	var (
		inDoubt string
		count   int
	)
	if _, err := fmt.Sscan(<-m.crashed, &inDoubt, &count); err != nil {
		t.Fatal(err)
	}
	if count != 1 {
		t.Errorf("at the crash %d emails were accepted and not recorded, want 1", count)
	}
	if got := srv.Count(); got != crashAt {
		t.Errorf("the server accepted %d emails, want the %d committed before the crash", got, crashAt)
	}
	if got := sentCount(t, db) + logged(); got != crashAt-1 {
		t.Errorf("%d emails recorded sent, want %d", got, crashAt-1)
	}
	if withLog && logged() != crashAt-1 {
		t.Errorf("%d emails in the sent log at the crash, want all %d recorded ones (one read)", logged(), crashAt-1)
	}

	// The restart (past any lease the dead process held) sends every email not recorded.
	sm2, err := mail.NewSMTPMailer(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm2.Close() })
	opts = append(opts, sender.Clock(func() time.Time { return time.Now().Add(2 * time.Minute) }))
	if withLog {
		opts = append(opts, sender.SentLog(openLog(t, logPath))) // what the dead process logged
	}
	if err := sender.New(db, sm2, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d emails recorded sent after the restart, want %d", got, n)
	}
	if got := srv.Count(); got != n+1 {
		t.Errorf("%d deliveries, want %d: each email once and the one in doubt twice", got, n+1)
	}
	if rep := srv.Repeats(); len(rep) != 1 || rep[inDoubt] != 2 {
		t.Errorf("delivered more than once: %v, want only %s, twice", rep, inDoubt)
	}
}

// Reads overlap sends: with more emails due than one read takes, the next read is taken while
// the first read's emails are in flight. An email read while an earlier one to its address is
// in flight waits for it, so each address still gets its emails in the order they were queued,
// and no email is sent twice.
func TestSenderKeepsOrderPerAddressAcrossOverlappingReads(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	const n, addresses = 700, 7 // every read holds emails to every address
	ctx := context.Background()
	queueEach(t, db, 0, n, func(i int) string { return fmt.Sprint("r", i%addresses, "@mail.com") })
	m := &twoStepMailer{}
	m.onPrepare = func(mail.Message) { time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) }
	opts := []sender.Opt{sender.Parallel(4)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	if err := sender.New(db, m, opts...).SendPending(ctx); err != nil {
		t.Fatal(err)
	}
	if len(m.committed) != n {
		t.Fatalf("%d committed, want %d", len(m.committed), n)
	}
	last, seen := map[string]int{}, map[string]bool{}
	for _, msg := range m.committed {
		if seen[msg.ID] {
			t.Errorf("%s committed twice", msg.ID)
		}
		seen[msg.ID] = true
		i := index(t, msg.ID)
		if prev, ok := last[msg.To]; ok && prev > i {
			t.Errorf("email %d to %s committed before email %d, which was queued before it", prev, msg.To, i)
		}
		last[msg.To] = i
	}
	if got := sentCount(t, db); got != n {
		t.Errorf("%d recorded sent, want %d", got, n)
	}
}

// A backlog to one address is sent in order, each email once, while the reads wait for that
// address's worker instead of queueing the whole backlog behind it.
func TestSenderSendsABacklogToOneAddressInOrder(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	const n = 1000 // several reads' worth
	queueEach(t, db, 0, n, func(int) string { return "one@mail.com" })
	m := &twoStepMailer{}
	opts := []sender.Opt{sender.Parallel(4)}
	if shared {
		opts = append(opts, sender.Shared())
	}
	if err := sender.New(db, m, opts...).SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.committed) != n {
		t.Fatalf("%d committed, want %d", len(m.committed), n)
	}
	for i, msg := range m.committed {
		if got := index(t, msg.ID); got != i {
			t.Fatalf("commit %d is email %d, want the order queued", i, got)
		}
	}
}
