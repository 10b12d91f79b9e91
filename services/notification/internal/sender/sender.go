// Package sender delivers the emails that the Notification Service's handlers queue: woken by
// the commit that queued them, it reads the due emails and sends them in parallel up to a bound.
// By default each email passes the mail server's point of no return alone and its outcome is
// recorded before the next passes; with a larger batch size, a batch is sent and then recorded
// in one transaction; with a larger window, that many pass it at once.
package sender

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sentlog"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// Sender delivers queued emails: at least once, with the Message-ID as idempotency key. An
// email is sent twice only if the process dies after the mail server accepted it and before
// the transaction recording it commits; the resend carries the same Message-ID. The batch size
// bounds those resends: with the default of one, a crash resends at most one email.
//
// With the default, sends still overlap when the mailer is a [mail.Preparer] (SMTP, files): up
// to the parallel bound of emails are prepared at once (for SMTP, everything up to the final dot
// of DATA, on a connection each), and one at a time each is committed (the dot and the server's
// verdict) and its outcome recorded, in one statement or one line of the SentLog, before the
// next is committed (or, with a Window, before that many more are). A crash drops the prepared
// ones' connections, so the server discards them; they are still pending and sent after the
// restart. Emails to one recipient are sent in the order queued, by one worker, also when they
// come in different reads.
//
// On a database that several replicas share (Shared), each batch is claimed in one statement
// (FOR UPDATE SKIP LOCKED) for a lease, so two replicas never both send one email; what a
// replica that dies had claimed is sent again once the lease ends.
type Sender struct {
	db     *sql.DB
	mailer mail.Mailer
	cfg    config
	wake   chan struct{}

	mu        sync.Mutex
	nextRetry time.Time // the earliest retry this sender scheduled and has not yet woken for
}

type config struct {
	log         *slog.Logger
	now         func() time.Time
	maxAttempts int
	parallel    int
	batch       int
	window      int
	shared      bool
	lease       time.Duration
	poll        time.Duration
	sentLog     *sentlog.Log
	tracer      *telemetry.Tracer
	transport   string
	from        string
	delivered   func(kind string, chainStart time.Time)
}

// Opt configures a Sender.
type Opt func(*config)

// Logger sets where failed sends are reported. Default: discarded.
func Logger(l *slog.Logger) Opt { return func(c *config) { c.log = l } }

// Clock sets the sender's clock. Default time.Now.
func Clock(now func() time.Time) Opt { return func(c *config) { c.now = now } }

// MaxAttempts bounds the tries of an email a server keeps refusing temporarily. Default 10; a
// value below 1 keeps the default.
func MaxAttempts(n int) Opt {
	return func(c *config) {
		if n > 0 {
			c.maxAttempts = n
		}
	}
}

// Parallel bounds the emails being sent at once: with the default batch size, how many are
// prepared at once (for SMTP, connections held); with a larger one, how many of a batch are sent
// at once. Default 16; a value below 1 keeps the default.
func Parallel(n int) Opt {
	return func(c *config) {
		if n > 0 {
			c.parallel = n
		}
	}
}

// BatchSize sets how many emails are sent before their outcomes are recorded, together, in one
// transaction. It is also how many emails a crash can send twice: those the mail server
// accepted before the record committed (the second copy carries the same Message-ID). Default
// 1: each email is committed and recorded alone, while up to Parallel others are prepared; raise
// it where a resend is harmless (the file mailer replaces the file with the same bytes) or
// acceptable, to record many outcomes in one transaction. A value below 1 keeps the default.
func BatchSize(n int) Opt {
	return func(c *config) {
		if n > 0 {
			c.batch = n
		}
	}
}

// Window sets how many emails may be past the mail server's point of no return and unrecorded
// at once: with n, up to n are committed at the same time, each recorded as soon as the server
// accepts it (where BatchSize waits for a whole batch before recording it). It is how many
// emails a crash can send twice. Default 1; a value below 1 keeps the default; at most Parallel
// (more could never be prepared at once). Ignored with a BatchSize above 1.
func Window(n int) Opt {
	return func(c *config) {
		if n > 0 {
			c.window = n
		}
	}
}

// Shared makes the sender claim emails so that replicas sharing the database (PostgreSQL)
// never send one email twice. Default off: one sender per database, as with SQLite, which has
// no FOR UPDATE SKIP LOCKED.
func Shared() Opt { return func(c *config) { c.shared = true } }

// Lease sets how long claimed emails are the sender's alone (Shared). No send begins in the
// lease's last quarter, which must exceed one send's time (the SMTP mailer gives up on one email
// after 10s). It is also how long the emails a replica that died had claimed wait before another
// sends them. Default 1 minute; a value at or below zero keeps the default.
func Lease(d time.Duration) Opt {
	return func(c *config) {
		if d > 0 {
			c.lease = d
		}
	}
}

// PollInterval sets how often the sender looks for due emails when nothing woke it: the
// safety net for emails another replica left behind. Emails retried later wake the sender when
// they fall due. Default 1s; a value at or below zero keeps the default.
func PollInterval(d time.Duration) Opt {
	return func(c *config) {
		if d > 0 {
			c.poll = d
		}
	}
}

// SentLog records each email the mail server accepts in l, a file of the sender's own, instead
// of in the database, and folds l into the database in one statement every few dozen emails
// and whenever sending pauses (and first, for what a previous process left in it). At most one
// email (or Window emails) is still accepted and unrecorded at a time; what changes is that
// committing the next no longer waits for the database, whose one SQLite connection the
// handlers hold most of the time under load. A failed append falls back to the database.
// Ignored with Shared: a replica's file is its own, and the emails a dead replica claimed are
// sent again by others. Default: none, each email is recorded in the database.
func SentLog(l *sentlog.Log) Opt { return func(c *config) { c.sentLog = l } }

// Tracing traces each delivery in a span whose parent is the handler that queued the email;
// transport names how mail leaves (smtp, file). Default: no spans.
func Tracing(t *telemetry.Tracer, transport string) Opt {
	return func(c *config) { c.tracer, c.transport = t, transport }
}

// From sets the From address of the emails. Default handlers.From.
func From(addr string) Opt { return func(c *config) { c.from = addr } }

// Delivered sets what is called for every email sent, with its kind and when its chain began
// (zero if unknown), for the chain latency metric. Default: nothing.
func Delivered(fn func(kind string, chainStart time.Time)) Opt {
	return func(c *config) { c.delivered = fn }
}

// New returns a Sender of the emails queued in db, delivered through m.
func New(db *sql.DB, m mail.Mailer, opts ...Opt) *Sender {
	cfg := config{log: slog.New(slog.DiscardHandler), now: time.Now, maxAttempts: 10, parallel: 16, batch: 1, window: 1, lease: time.Minute,
		poll: time.Second, from: handlers.From}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.shared {
		cfg.sentLog = nil
	}
	cfg.window = min(cfg.window, cfg.parallel) // no more can be prepared at once
	return &Sender{db: db, mailer: m, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake tells the sender that emails may have been queued. It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends queued emails until ctx is done: woken by Wake, when the earliest email waiting for
// a retry falls due, and at the poll interval.
func (s *Sender) Run(ctx context.Context) error {
	s.findRetry(ctx) // retries scheduled before this start
	t := time.NewTimer(s.cfg.poll)
	defer t.Stop()
	for {
		if err := s.SendPending(ctx); err != nil && ctx.Err() == nil {
			s.cfg.log.Warn("sending queued emails failed; will retry", "err", err)
		}
		t.Reset(s.nextWait(ctx))
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// noteRetry notes that an email falls due again at at.
func (s *Sender) noteRetry(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextRetry.IsZero() || at.Before(s.nextRetry) {
		s.nextRetry = at
	}
}

// findRetry notes the earliest retry in the database, for those this sender did not schedule
// itself (before a restart, or behind the earliest it had noted).
func (s *Sender) findRetry(ctx context.Context) {
	if at, ok, err := store.NextDue(ctx, s.db, s.cfg.now()); err == nil && ok {
		s.noteRetry(at)
	}
}

// nextWait returns how long to sleep when nothing wakes the sender: until the earliest retry
// falls due, at most the poll interval. Retries the sender schedules are noted as it records
// them, so a wake costs no query; once the noted one is due, the next is looked up.
func (s *Sender) nextWait(ctx context.Context) time.Duration {
	s.mu.Lock()
	next := s.nextRetry
	s.mu.Unlock()
	if next.IsZero() {
		return s.cfg.poll
	}
	d := next.Sub(s.cfg.now())
	if d <= 0 {
		// Due now: SendPending has just sent it or will at once. Look up the one after.
		s.mu.Lock()
		if s.nextRetry.Equal(next) {
			s.nextRetry = time.Time{}
		}
		s.mu.Unlock()
		s.findRetry(ctx)
		return 0
	}
	return min(d, s.cfg.poll)
}

// SendPending sends every email that is due and records the outcome of each.
func (s *Sender) SendPending(ctx context.Context) error {
	if s.cfg.batch == 1 {
		return s.stream(ctx)
	}
	for {
		full, err := s.sendDue(ctx)
		if err != nil || !full {
			return err
		}
	}
}

// readAhead is how many due emails the sender reads (or claims) at once, to send in batches:
// one query instead of one a batch.
const readAhead = 256

// outcome is what became of one email taken for sending.
type outcome struct {
	email store.Pending
	tried bool // false: not sent because the sender is stopping; it stays pending
	err   error
}

// sendDue sends the emails due now, up to one read, and reports whether the read was full (more
// may be due).
func (s *Sender) sendDue(ctx context.Context) (full bool, err error) {
	var (
		due   []store.Pending
		n     = max(s.cfg.batch, readAhead)
		now   = s.cfg.now()
		until time.Time // zero: no lease
	)
	if due, until, err = s.read(ctx, now, n); err != nil {
		return false, err
	}
	for batch := range slices.Chunk(due, s.cfg.batch) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if s.leaseEnding(until) {
			return false, nil // the rest falls due again when the lease ends
		}
		if err := s.deliver(ctx, batch); err != nil {
			return false, err
		}
	}
	return len(due) == n, ctx.Err()
}

// read reads (or, Shared, claims) up to n emails due at now; until is when the sends of claimed
// ones must have begun (zero: no lease).
func (s *Sender) read(ctx context.Context, now time.Time, n int) (due []store.Pending, until time.Time, err error) {
	if !s.cfg.shared {
		due, err = store.Due(ctx, s.db, now, n)
		return due, time.Time{}, err
	}
	// Claimed emails not yet sent are in no doubt (a crash only delays them until the lease
	// ends), so a claim may hold more than a batch.
	due, err = store.Claim(ctx, s.db, now, now.Add(s.cfg.lease), n)
	// Sends begin only while the lease leaves time for one: past that point another replica may
	// claim what is left.
	return due, now.Add(s.cfg.lease - s.cfg.lease/4), err
}

// leaseEnding reports whether the lease of claimed emails that allows sends until until (zero:
// no lease) has come too near its end for another send to begin.
func (s *Sender) leaseEnding(until time.Time) bool {
	return !until.IsZero() && !s.cfg.now().Before(until)
}

// group is emails to one recipient, in the order they are to be sent, and until when their
// sends may begin (zero: no lease).
type group struct {
	emails []store.Pending
	until  time.Time
}

// stream sends the emails due, one at a time through a committer (or Window at a time) with
// up to cfg.parallel prepared meanwhile, until none is due or in flight. Reads overlap sends:
// the next read is taken while earlier emails are still being sent, when a wake says more were
// queued (or at once after a full read), so the committer does not idle for a read. Emails to
// one recipient go through one worker in the order read: those read while the recipient has a
// worker are left to that worker, after what it holds. After a failed record nothing more is
// committed: the email it was for is accepted and unrecorded.
func (s *Sender) stream(ctx context.Context) error {
	// What the sent log holds (left by an earlier stream, or process) is pending in the
	// database, and a read would return it: it is folded first.
	if err := s.fold(ctx); err != nil {
		return err
	}
	var (
		st      = flight{busy: map[string][]group{}, taken: map[string]bool{}, withLog: s.cfg.sentLog != nil}
		work    = make(chan group)
		done    = make(chan struct{}, 1) // a recipient's worker is done
		broken  atomic.Bool              // a record failed
		commits = make(chan *commit, s.cfg.parallel)
		wg, cwg sync.WaitGroup
	)
	// The committers: Window of them take the prepared emails in turn, so the next commit
	// follows the last record without waiting for a worker to be scheduled.
	for range s.cfg.window {
		cwg.Go(func() {
			for c := range commits {
				c.done <- s.commit(c, &broken)
			}
		})
	}
	defer func() {
		close(commits) // the workers are done: nothing more is sent on it
		cwg.Wait()
	}()
	for range s.cfg.parallel {
		wg.Go(func() {
			for g := range work {
				for {
					complete, err := s.sendGroup(ctx, g, commits, &broken)
					next, ok := st.finish(g, complete, err)
					if !ok {
						break
					}
					g = next
				}
				select {
				case done <- struct{}{}:
				default:
				}
			}
		})
	}
	err := s.feed(ctx, &st, work, done, &broken)
	close(work)
	wg.Wait()
	// Folded now rather than at the next read, so the database soon shows them sent.
	err = errors.Join(err, errors.Join(st.errs...), s.fold(context.WithoutCancel(ctx)))
	if err != nil {
		return err
	}
	return ctx.Err()
}

// sendGroup sends g's emails in order, until one fails to be recorded, ctx ends, a record failed
// elsewhere or g's lease nears its end; the rest stay pending (claimed ones fall due again when
// the lease ends). complete says none was left.
func (s *Sender) sendGroup(ctx context.Context, g group, commits chan<- *commit, broken *atomic.Bool) (complete bool, err error) {
	for _, p := range g.emails {
		if ctx.Err() != nil || broken.Load() || s.leaseEnding(g.until) {
			return false, nil
		}
		if err := s.sendOne(ctx, p, g.until, commits); err != nil {
			return false, err
		}
	}
	return true, nil
}

// foldAt is how many entries the sent log gathers, while the sender streams without a pause,
// before they are folded into the database.
const foldAt = 64

// feed reads due emails and hands them to the workers until none is due or in flight, ctx
// ends, or a record fails. It reads again after a full read (more are due), when a wake says
// emails were queued, and, to see that none is left, when nothing is in flight any more; but
// not while a read's worth of emails waits for busy recipients.
func (s *Sender) feed(ctx context.Context, st *flight, work chan<- group, done <-chan struct{}, broken *atomic.Bool) error {
	more := true
	for {
		if ctx.Err() != nil || broken.Load() {
			return nil
		}
		if more && !st.backlogged() {
			if s.cfg.sentLog != nil && s.cfg.sentLog.Len() >= foldAt {
				if err := s.foldFlight(ctx, st); err != nil {
					return err
				}
			}
			gs, full, err := s.next(ctx, st)
			if err != nil {
				return err
			}
			for i, g := range gs {
				select {
				case work <- g:
				case <-ctx.Done():
					for _, g := range gs[i:] {
						st.drop(g)
					}
					return nil
				}
			}
			if len(gs) == 0 && !full && st.idle() {
				return nil
			}
			more = full
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
			more = true
		case <-done:
			if st.idle() {
				more = true
			}
		}
	}
}

// next reads the due emails not yet taken, takes them, and returns them grouped by recipient,
// but for those to a recipient that has a worker, which are left to it. full says the read was
// full: more may be due.
func (s *Sender) next(ctx context.Context, st *flight) (gs []group, full bool, err error) {
	st.mu.Lock()
	// Emails recorded in the database before this read are not returned by it, so they need
	// not be remembered any more; those recorded while it runs may be, and stay taken.
	for _, id := range st.recorded {
		delete(st.taken, id)
	}
	st.recorded = st.recorded[:0]
	n := readAhead
	if !s.cfg.shared {
		n += len(st.taken) // the taken ones are still pending, and the oldest: the read returns them too
	}
	st.mu.Unlock()
	due, until, err := s.read(ctx, s.cfg.now(), n)
	if err != nil {
		return nil, false, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	fresh := due[:0]
	for _, p := range due {
		if !st.taken[p.MessageID] {
			st.taken[p.MessageID] = true
			fresh = append(fresh, p)
		}
	}
	for _, ps := range byRecipient(fresh) {
		g := group{emails: ps, until: until}
		if later, ok := st.busy[ps[0].To]; ok {
			st.busy[ps[0].To] = append(later, g)
			st.queued += len(ps)
			continue
		}
		st.busy[ps[0].To] = nil
		st.inflight++
		gs = append(gs, g)
	}
	return gs, len(due) == n, nil
}

// foldFlight folds the sent log and forgets the emails it held: they are recorded, and a read
// no longer returns them.
func (s *Sender) foldFlight(ctx context.Context, st *flight) error {
	st.mu.Lock()
	logged := st.logged
	st.logged = nil
	st.mu.Unlock()
	if err := s.fold(ctx); err != nil {
		st.mu.Lock()
		st.logged = append(st.logged, logged...)
		st.mu.Unlock()
		return err
	}
	st.mu.Lock()
	for _, id := range logged {
		delete(st.taken, id)
	}
	st.mu.Unlock()
	return nil
}

// flight is what a stream has taken.
type flight struct {
	withLog  bool // sends go to the sent log: a read returns them as pending until a fold
	mu       sync.Mutex
	busy     map[string][]group // recipients with a worker, and the groups read for them since
	queued   int                // emails in busy's groups, waiting for their recipient's worker
	taken    map[string]bool    // emails taken that a read may still return as pending
	logged   []string           // taken emails in the sent log, forgotten after the next fold
	recorded []string           // other taken emails done, forgotten at the next read
	inflight int                // recipients with a worker
	errs     []error
}

// finish notes that g is done, after err, and returns the next group for its recipient's
// worker, if any (ok); if none, the recipient no longer has a worker. If g stopped short of its
// end (complete false), the groups read since for its recipient are not sent either, so that
// no later email to it overtakes the ones left: they stay pending.
func (st *flight) finish(g group, complete bool, err error) (next group, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.errs = append(st.errs, err)
	}
	for _, p := range g.emails {
		if st.withLog {
			st.logged = append(st.logged, p.MessageID)
		} else {
			st.recorded = append(st.recorded, p.MessageID)
		}
	}
	to := g.emails[0].To
	later := st.busy[to]
	if complete && len(later) > 0 {
		st.busy[to] = later[1:]
		st.queued -= len(later[0].emails)
		return later[0], true
	}
	for _, l := range later { // g stopped short: not sent now, pending, to be read again
		st.queued -= len(l.emails)
		st.recorded = append(st.recorded, ids(l)...)
	}
	delete(st.busy, to)
	st.inflight--
	return group{}, false
}

// ids returns the message IDs of g's emails.
func ids(g group) []string {
	out := make([]string, len(g.emails))
	for i, p := range g.emails {
		out[i] = p.MessageID
	}
	return out
}

// drop notes that g, not handed out, and the groups read since for its recipient are done
// without a send: they stay pending.
func (st *flight) drop(g group) {
	st.finish(g, false, nil)
}

// backlogged reports whether a read's worth of emails waits for busy recipients: reading more
// would only queue more behind them.
func (st *flight) backlogged() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.queued >= readAhead
}

// idle reports whether no recipient has a worker.
func (st *flight) idle() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.inflight == 0
}

// byRecipient groups due by recipient (as written, which is how handlers queue them), in the
// order of each recipient's first email, each group in due's order.
func byRecipient(due []store.Pending) [][]store.Pending {
	at := make(map[string]int, len(due))
	groups := make([][]store.Pending, 0, len(due))
	for _, p := range due {
		i, ok := at[p.To]
		if !ok {
			i = len(groups)
			at[p.To] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], p)
	}
	return groups
}

// commit is a prepared email waiting for a committer: its turn at the mail server's point of
// no return.
type commit struct {
	ctx   context.Context // the email's (its span's)
	p     store.Pending
	prep  mail.Prepared
	until time.Time
	done  chan committed
}

// committed is what became of a commit.
type committed struct {
	abandoned bool  // not committed: the sender is stopping; it stays pending
	err       error // the mail server's refusal, recorded
	rerr      error // the record's failure
}

// sendOne prepares p, then hands it to a committer, which commits it and records the outcome.
// A prepared email is abandoned, and stays pending, if ctx ends, a record failed or the lease
// runs out before its turn; a commit once begun runs to its end and is recorded.
func (s *Sender) sendOne(ctx context.Context, p store.Pending, until time.Time, commits chan<- *commit) error {
	ctx, span := s.startSpan(ctx, p)
	prep, err := s.prepare(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			s.endSpan(span, err)
			return nil // stopping: not an attempt, it stays pending
		}
		err = s.record(context.WithoutCancel(ctx), s.db, []outcome{{email: p, tried: true, err: err}})
		s.endSpan(span, err)
		return err
	}
	c := &commit{ctx: ctx, p: p, prep: prep, until: until, done: make(chan committed, 1)}
	commits <- c
	res := <-c.done
	switch {
	case res.abandoned:
		s.endSpan(span, errors.New("abandoned before delivery: the sender is stopping"))
	case res.err != nil:
		s.endSpan(span, res.err)
	default:
		s.endSpan(span, res.rerr)
		if res.rerr == nil && s.cfg.delivered != nil {
			s.cfg.delivered(p.Kind, p.ChainStart)
		}
	}
	return res.rerr
}

// commit commits c and records its outcome, unless the sender is stopping, a record failed or
// c's lease nears its end.
func (s *Sender) commit(c *commit, broken *atomic.Bool) committed {
	if c.ctx.Err() != nil || broken.Load() || s.leaseEnding(c.until) {
		c.prep.Abort()
		return committed{abandoned: true}
	}
	ctx := context.WithoutCancel(c.ctx)
	err := c.prep.Commit(ctx)
	rerr := s.recordOne(ctx, outcome{email: c.p, tried: true, err: err})
	if rerr != nil {
		broken.Store(true)
	}
	return committed{err: err, rerr: rerr}
}

// recordOne records the outcome of one email: a send in the sent log if there is one, anything
// else (and a send the log failed to take) in the database, in one statement. No connection is
// kept between records: with a sent log only failures need one, and a fold, which holds the log
// while it waits for SQLite's connection, would stall the next append.
func (s *Sender) recordOne(ctx context.Context, o outcome) error {
	if o.err == nil && s.cfg.sentLog != nil {
		err := s.cfg.sentLog.Append(o.email.MessageID, s.cfg.now())
		if err == nil {
			return nil
		}
		s.cfg.log.Warn("recording a sent email in the database instead of the sent log", "message", o.email.MessageID, "err", err)
	}
	return s.record(ctx, s.db, []outcome{o})
}

// fold records in the database the sends the sent log holds, if there is one.
func (s *Sender) fold(ctx context.Context) error {
	if s.cfg.sentLog == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.cfg.sentLog.Fold(func(es []sentlog.Entry) error {
		sent := make([]store.Sent, len(es))
		for i, e := range es {
			sent[i] = store.Sent{MessageID: e.MessageID, At: e.At}
		}
		return store.RecordSent(ctx, s.db, sent)
	})
}

// prepare prepares p's message with the mailer; a mailer that cannot prepare sends it whole at
// the commit.
func (s *Sender) prepare(ctx context.Context, p store.Pending) (mail.Prepared, error) {
	m := s.message(p)
	if pr, ok := s.mailer.(mail.Preparer); ok {
		return pr.Prepare(ctx, m)
	}
	return sendAtCommit{mailer: s.mailer, m: m}, nil
}

// sendAtCommit is the Prepared of a Mailer that is no Preparer: Commit is the whole send.
type sendAtCommit struct {
	mailer mail.Mailer
	m      mail.Message
}

func (c sendAtCommit) Commit(ctx context.Context) error { return c.mailer.Send(ctx, c.m) }
func (sendAtCommit) Abort()                             {}

// deliver sends a batch and records the outcomes.
func (s *Sender) deliver(ctx context.Context, batch []store.Pending) error {
	outs := s.sendAll(ctx, batch)
	if err := s.record(context.WithoutCancel(ctx), s.db, outs); err != nil {
		return err
	}
	if s.cfg.delivered != nil {
		for _, o := range outs {
			if o.tried && o.err == nil {
				s.cfg.delivered(o.email.Kind, o.email.ChainStart)
			}
		}
	}
	return nil
}

// sendAll sends due, at most cfg.parallel at a time. Once ctx is done no send begins; one begun
// is not cancelled (a stop would otherwise cut it off after the server accepted the message and
// leave it unrecorded, to be sent again at the next start): the mailer's own timeout bounds it.
func (s *Sender) sendAll(ctx context.Context, due []store.Pending) []outcome {
	outs := make([]outcome, len(due))
	sem := make(chan struct{}, s.cfg.parallel)
	var wg sync.WaitGroup
	for i, p := range due {
		outs[i].email = p
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		outs[i].tried = true
		wg.Go(func() {
			defer func() { <-sem }()
			outs[i].err = s.send(context.WithoutCancel(ctx), p)
		})
	}
	wg.Wait()
	return outs
}

func (s *Sender) send(ctx context.Context, p store.Pending) error {
	ctx, span := s.startSpan(ctx, p)
	err := s.mailer.Send(ctx, s.message(p))
	s.endSpan(span, err)
	return err
}

// message is the email p.
func (s *Sender) message(p store.Pending) mail.Message {
	return mail.Message{
		ID: p.MessageID, From: s.cfg.from, To: p.To, Subject: p.Subject, Text: p.Body, Date: p.Date,
		Headers: map[string]string{"X-Choreo-Event-Id": p.EventID, "X-Choreo-Correlation-Id": p.CorrelationID},
	}
}

// startSpan starts the span of p's delivery, if tracing is on and p was queued in a trace; the
// span is nil otherwise.
func (s *Sender) startSpan(ctx context.Context, p store.Pending) (context.Context, trace.Span) {
	if s.cfg.tracer == nil || p.Traceparent == "" {
		return ctx, nil
	}
	return s.cfg.tracer.Start(telemetry.WithTraceparent(ctx, p.Traceparent, p.Tracestate),
		"send "+p.Kind+" email", trace.SpanKindClient, telemetry.AttrEmailKind.String(p.Kind),
		telemetry.AttrEmailMessageID.String(p.MessageID), telemetry.AttrEmailTransport.String(s.cfg.transport))
}

func (s *Sender) endSpan(span trace.Span, err error) {
	if span != nil {
		telemetry.End(span, err)
	}
}

// record writes the outcomes of a batch in one transaction on the database; the outcome of a
// single email is one statement, which needs none, on one.
func (s *Sender) record(ctx context.Context, one store.Execer, outs []outcome) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		ex = one
		tx *sql.Tx
	)
	if len(outs) > 1 {
		var err error
		if tx, err = s.db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("record sent emails: %w", err)
		}
		defer func() { _ = tx.Rollback() }() // after Commit, a no-op
		ex = tx
	}
	now := s.cfg.now()
	sent := make([]store.Sent, 0, len(outs))
	var errs []error
	for _, o := range outs {
		p := o.email
		switch {
		case !o.tried:
		case o.err == nil:
			sent = append(sent, store.Sent{MessageID: p.MessageID, At: now})
		case mail.IsTemporary(o.err) && p.Attempts+1 < s.cfg.maxAttempts:
			wait := time.Duration(1<<min(p.Attempts, 8)) * time.Second
			s.cfg.log.Warn("email not sent; will retry", "message", p.MessageID, "attempt", p.Attempts+1, "in", wait, "err", o.err)
			errs = append(errs, store.MarkRetry(ctx, ex, p.MessageID, o.err.Error(), now.Add(wait)))
			s.noteRetry(now.Add(wait))
		default:
			s.cfg.log.Error("email cannot be sent; giving up", "message", p.MessageID, "attempts", p.Attempts+1, "err", o.err)
			errs = append(errs, store.MarkFailed(ctx, ex, p.MessageID, o.err.Error()))
		}
	}
	if len(sent) > 0 {
		errs = append(errs, store.RecordSent(ctx, ex, sent))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("record sent emails: %w", err)
		}
	}
	return nil
}
