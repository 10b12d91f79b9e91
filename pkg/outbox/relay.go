package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

var noSpan trace.Span = noop.Span{}

// ErrUnacknowledged is wrapped by Stuck's error about a batch the broker has not acknowledged
// for too long.
var ErrUnacknowledged = errors.New("publish not acknowledged")

// Relay publishes the outbox of one database. Run it once per database: it publishes in seq
// order, one batch at a time, so records of one key keep their order.
type Relay struct {
	db     *sql.DB
	client *kgo.Client
	cfg    relayConfig
	params Params
	wake   chan struct{}

	mu           sync.Mutex
	waiters      []chan struct{} // Flush callers waiting for an empty outbox
	failingSince time.Time       // zero while drains succeed
	lastErr      error
	// batchSince is when the batch in flight was read, zero between drains: the producer retries
	// without a delivery timeout (a timeout could drop or reorder records), so on a partial
	// outage a batch waits for acknowledgements indefinitely and no drain outcome is recorded.
	batchSince time.Time

	failed, denied atomic.Int64
}

// Failures counts failed publish attempts of a relay. Each failed attempt leaves its records
// in the outbox, to be retried.
type Failures struct {
	// Total counts every failed attempt, Denied those the broker refused for want of an ACL
	// (a topic the service may not write): retrying does not help those until an
	// administrator grants the ACL or the code stops writing the topic.
	Total, Denied int64
}

// Failures returns the relay's failed publish attempts so far.
func (r *Relay) Failures() Failures {
	return Failures{Total: r.failed.Load(), Denied: r.denied.Load()}
}

// isDenied reports whether err is the broker refusing a write for want of an ACL.
func isDenied(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

type relayConfig struct {
	batch    int
	interval time.Duration
	log      *slog.Logger
	lock     Locker
	tracer   *telemetry.Tracer
}

// Tracing makes the relay start a producer span for each record whose row holds a trace
// context, as that context's child. Default nil: no spans.
func Tracing(t *telemetry.Tracer) RelayOpt { return func(c *relayConfig) { c.tracer = t } }

// Locker takes a lock that lets one relay publish a database's outbox at a time; ok false means
// another relay holds it. unlock is called after each drain.
type Locker func(ctx context.Context) (unlock func(), ok bool, err error)

// Exclusive makes the relay publish only while it holds lock, for databases that several
// replicas share. A relay that finds the lock held tries again every LockRetry until it takes
// it: the holder may have read the outbox for the last time before this relay's records
// committed, and nothing else would wake it for them before the next poll. Default: no lock (one
// relay per database, as with SQLite).
func Exclusive(lock Locker) RelayOpt { return func(c *relayConfig) { c.lock = lock } }

// LockRetry is how soon a relay that found the Exclusive lock held tries again.
const LockRetry = 20 * time.Millisecond

// errLockHeld reports that another relay holds the Exclusive lock.
var errLockHeld = errors.New("outbox: another relay holds the lock")

// RelayOpt configures a Relay.
type RelayOpt func(*relayConfig)

// BatchSize sets how many records the relay reads and publishes at a time. Default 1024; a
// value below 1 keeps the default.
func BatchSize(n int) RelayOpt {
	return func(c *relayConfig) {
		if n > 0 {
			c.batch = n
		}
	}
}

// PollInterval sets how often the relay looks at the outbox when nobody woke it: the safety net
// for records committed by another process or left by a failed publish. Default 1s; a value
// below or at zero keeps the default.
func PollInterval(d time.Duration) RelayOpt {
	return func(c *relayConfig) {
		if d > 0 {
			c.interval = d
		}
	}
}

// Logger sets where the relay reports failed publishes. Default: discarded.
func Logger(l *slog.Logger) RelayOpt { return func(c *relayConfig) { c.log = l } }

// NewRelay returns a relay that publishes db's outbox with client, which should be an
// idempotent producer (franz-go's default) so that retries cannot reorder or duplicate.
func NewRelay(db *sql.DB, client *kgo.Client, opts ...RelayOpt) *Relay {
	cfg := relayConfig{batch: 1024, interval: time.Second, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	return &Relay{db: db, client: client, cfg: cfg, params: ParamsOf(db), wake: make(chan struct{}, 1)}
}

// Notify tells the relay that a transaction with outbox records committed. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is done. Publish failures are logged and retried with backoff; the
// records stay in the outbox until acknowledged.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.interval)
	defer t.Stop()
	backoff := 50 * time.Millisecond
	for {
		waiters := r.takeWaiters() // only those who asked before this drain began
		r.progress(true)
		err := r.drain(ctx)
		r.progress(false)
		if errors.Is(err, errLockHeld) {
			// Another relay is publishing: nothing failed, but nothing is known to be
			// published either, so the waiters wait for the next try.
			r.putBack(waiters)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(LockRetry):
			}
			continue
		}
		r.record(err, ctx.Err())
		switch {
		case err == nil:
			backoff = 50 * time.Millisecond
			for _, ch := range waiters {
				close(ch)
			}
		case ctx.Err() != nil:
			return nil
		case isDenied(err):
			r.failed.Add(1)
			r.denied.Add(1)
			r.cfg.log.Error("outbox relay: the broker denies this service writing a topic (authorization error: an ACL is missing, or the service writes a topic the catalog does not give it); the records stay in the outbox and are retried", "err", err, "backoff", backoff)
		default:
			r.failed.Add(1)
			r.cfg.log.Warn("outbox relay: publish failed; will retry", "err", err, "backoff", backoff)
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			r.putBack(waiters)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-t.C:
		}
	}
}

// Flush waits until the relay has found the outbox empty after this call, or ctx is done.
func (r *Relay) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters = append(r.waiters, ch)
	r.mu.Unlock()
	r.Notify()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record notes the outcome of a drain for Stuck; a drain cut short by shutdown says nothing.
func (r *Relay) record(err, ctxErr error) {
	if ctxErr != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = err
	switch {
	case err == nil:
		r.failingSince = time.Time{}
	case r.failingSince.IsZero():
		r.failingSince = time.Now()
	}
}

// progress notes that a batch starts now (busy) or that the drain has ended.
func (r *Relay) progress(busy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if busy {
		r.batchSince = time.Now()
	} else {
		r.batchSince = time.Time{}
	}
}

// Stuck returns an error when every drain has failed for longer than d (the broker refuses the
// records, the database cannot be read), naming the last failure, or when one batch has waited
// for the broker's acknowledgements for longer than d (the producer retries without end, e.g.
// NOT_ENOUGH_REPLICAS); nil otherwise.
func (r *Relay) Stuck(d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.batchSince.IsZero() && time.Since(r.batchSince) > d {
		return fmt.Errorf("outbox relay: a batch has waited for the broker's acknowledgement since %s: %w",
			r.batchSince.UTC().Format(time.RFC3339), ErrUnacknowledged)
	}
	if r.failingSince.IsZero() || time.Since(r.failingSince) <= d {
		return nil
	}
	return fmt.Errorf("outbox relay failing since %s: %w", r.failingSince.UTC().Format(time.RFC3339), r.lastErr)
}

func (r *Relay) takeWaiters() []chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.waiters
	r.waiters = nil
	return ws
}

func (r *Relay) putBack(ws []chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiters = append(r.waiters, ws...)
}

// drain publishes batches until the outbox is empty; errLockHeld if another relay holds the
// Exclusive lock.
func (r *Relay) drain(ctx context.Context) error {
	if r.cfg.lock != nil {
		unlock, ok, err := r.cfg.lock(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errLockHeld
		}
		defer unlock()
	}
	for {
		r.progress(true)
		n, err := r.publishBatch(ctx)
		if err != nil || n < r.cfg.batch {
			return err
		}
	}
}

type pending struct {
	seq                     int64
	rec                     *kgo.Record
	traceparent, tracestate sql.NullString
}

func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	batch, err := r.read(ctx)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done = make([]int64, 0, len(batch))
	)
	wg.Add(len(batch))
	for _, p := range batch {
		seq := p.seq
		span := noSpan
		if r.cfg.tracer != nil && p.traceparent.String != "" {
			span = r.cfg.tracer.StartSend(telemetry.WithTraceparent(ctx, p.traceparent.String, p.tracestate.String), p.rec)
		}
		r.client.Produce(ctx, p.rec, func(rec *kgo.Record, err error) {
			defer wg.Done()
			telemetry.EndSend(span, rec, err)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("publish to %s: %w", rec.Topic, err))
				return
			}
			done = append(done, seq)
		})
	}
	wg.Wait()
	if err := r.delete(ctx, done); err != nil {
		return 0, err
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return len(batch), nil
}

func (r *Relay) read(ctx context.Context) ([]pending, error) {
	rows, err := r.db.QueryContext(ctx,
		`SELECT seq, topic, key, value, headers, traceparent, tracestate FROM outbox ORDER BY seq LIMIT $1`, r.cfg.batch)
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	var batch []pending
	for rows.Next() {
		var (
			p       pending
			rec     kgo.Record
			headers []byte
		)
		if err := rows.Scan(&p.seq, &rec.Topic, &rec.Key, &rec.Value, &headers, &p.traceparent, &p.tracestate); err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		if rec.Headers, err = decodeHeaders(headers); err != nil {
			return nil, fmt.Errorf("outbox: record %d: %w", p.seq, err)
		}
		p.rec = &rec
		batch = append(batch, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	return batch, nil
}

// delete removes published records. It runs with its own short deadline even when ctx is done:
// records acknowledged by the broker should not be published a second time on the next start.
func (r *Relay) delete(ctx context.Context, seqs []int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for len(seqs) > 0 {
		n := NextRows(len(seqs))
		args := make([]any, n)
		for i, s := range seqs[:n] {
			args[i] = s
		}
		var q strings.Builder
		q.WriteString(`DELETE FROM outbox WHERE seq IN `)
		r.params.Rows(&q, 1, n)
		if _, err := r.db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("outbox: delete published: %w", err)
		}
		seqs = seqs[n:]
	}
	return nil
}
