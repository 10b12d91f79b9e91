package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// Headers added to a parked record, beside its original key, value and headers.
const (
	HeaderDLQTopic     = "choreo_dlq_topic"
	HeaderDLQPartition = "choreo_dlq_partition"
	HeaderDLQOffset    = "choreo_dlq_offset"
	HeaderDLQGroup     = "choreo_dlq_group"
	HeaderDLQHandler   = "choreo_dlq_handler"
	// HeaderDLQReason says what failed: "handler", or for a record no handler saw, "decode",
	// "empty", "headers", "contract" (wrong topic or type) or "too-large".
	HeaderDLQReason       = "choreo_dlq_reason"
	HeaderDLQClass        = "choreo_dlq_class" // "permanent" or "transient" (retries exhausted)
	HeaderDLQError        = "choreo_dlq_error"
	HeaderDLQTime         = "choreo_dlq_time"
	HeaderDLQAttempts     = "choreo_dlq_attempts"
	HeaderDLQFirstFailure = "choreo_dlq_first_failure"
	HeaderDLQLastFailure  = "choreo_dlq_last_failure"
)

// DeadLetterTopicOf returns the default dead-letter topic of a consumer group.
func DeadLetterTopicOf(group string) string { return group + ".dlq" }

// Config is what a Runner cannot run without.
type Config struct {
	// Service names the service; emitted events carry it as ce_source.
	Service string
	// Group is the Kafka consumer group. It owns the committed offsets and the inbox records:
	// a new group name re-reads every topic from the start.
	Group string
	// DB holds the service's state, inbox and outbox.
	DB *sql.DB
	// Codec decodes consumed records and encodes emitted events.
	Codec *codec.Codec
	// Relay publishes the outbox; the runner wakes it after each commit.
	Relay *outbox.Relay
	// ClientOpts configure the Kafka client (at least kgo.SeedBrokers); the runner adds its
	// consumer-group options.
	ClientOpts []kgo.Opt
}

// Validate reports the first missing setting.
func (c Config) Validate() error {
	switch {
	case c.Service == "":
		return errors.New("consumer: Config.Service is empty")
	case c.Group == "":
		return errors.New("consumer: Config.Group is empty")
	case c.DB == nil:
		return errors.New("consumer: Config.DB is nil")
	case c.Codec == nil:
		return errors.New("consumer: Config.Codec is nil")
	case c.Relay == nil:
		return errors.New("consumer: Config.Relay is nil")
	}
	return nil
}

type options struct {
	dlq         string
	middleware  []Middleware
	log         *slog.Logger
	maxPoll     int
	maxBytes    int
	retry       RetryPolicy
	now         func() time.Time
	afterCommit []func()
	observers   []Observer
	tracer      *telemetry.Tracer
}

// Opt configures a Runner.
type Opt func(*options)

// DeadLetterTopic sets where records that cannot be processed are parked. Default: "<group>.dlq".
func DeadLetterTopic(topic string) Opt { return func(o *options) { o.dlq = topic } }

// WithMiddleware wraps every handler, first given outermost. Recover always wraps them all.
func WithMiddleware(mw ...Middleware) Opt {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// Logger sets the runner's logger. Default: discarded.
func Logger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// MaxPollRecords bounds the records taken per poll. Default 10000.
func MaxPollRecords(n int) Opt { return func(o *options) { o.maxPoll = n } }

// MaxRecordBytes bounds the value size a handler accepts; a larger record is parked unread.
// Default 1 MiB.
func MaxRecordBytes(n int) Opt { return func(o *options) { o.maxBytes = n } }

// AfterCommit adds fn to what runs after each committed transaction (the relay is always
// woken): for work that must wait for the handlers' changes to be durable, such as sending the
// emails they queued. fn must not block.
func AfterCommit(fn func()) Opt {
	return func(o *options) { o.afterCommit = append(o.afterCommit, fn) }
}

// Retry sets how transient handler failures are retried. Default DefaultRetryPolicy().
func Retry(p RetryPolicy) Opt { return func(o *options) { o.retry = p } }

// Clock sets the time source for emitted events' ce_time. Default time.Now.
func Clock(now func() time.Time) Opt { return func(o *options) { o.now = now } }

// Stats counts what a runner did with the records it consumed.
type Stats struct {
	Handled    int64 // applied by a handler
	Duplicates int64 // already in the inbox: acknowledged without effect
	Parked     int64 // sent to the dead-letter topic
	Ignored    int64 // an event of the topic that no handler of this group consumes
	Retried    int64 // transient failures retried
}

// Runner consumes a service's topics with one consumer group and applies its handlers.
type Runner struct {
	cfg      Config
	opts     options
	source   string
	handlers map[string]*Handler // by consumed event name
	topics   []string
	client   *kgo.Client
	metrics  *metrics
	stmts    *stmts
	member   membership

	mu      sync.Mutex
	workers map[topicPartition]*worker
}

// New validates the handlers against the codec's event registry and connects the consumer.
func New(cfg Config, handlers []Handler, opts ...Opt) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{maxPoll: 10000, maxBytes: 1 << 20, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	o.retry = o.retry.normalized()
	if o.dlq == "" {
		o.dlq = DeadLetterTopicOf(cfg.Group)
	}
	r := &Runner{
		cfg: cfg, opts: o, source: "/" + cfg.Service, handlers: make(map[string]*Handler),
		metrics: newMetrics(), workers: make(map[topicPartition]*worker),
	}
	names := map[string]bool{}
	for _, h := range handlers {
		if h.name == "" || names[h.name] {
			return nil, fmt.Errorf("consumer: handler name %q is empty or registered twice", h.name)
		}
		names[h.name] = true
		if prev, dup := r.handlers[h.consumes]; dup {
			return nil, fmt.Errorf("consumer: handlers %s and %s both consume %s", prev.name, h.name, h.consumes)
		}
		t, err := cfg.Codec.Types().ByName(h.consumes)
		if err != nil {
			return nil, fmt.Errorf("consumer: handler %s: %w", h.name, err)
		}
		for _, e := range h.emits {
			if _, err := cfg.Codec.Types().ByName(e); err != nil {
				return nil, fmt.Errorf("consumer: handler %s emits: %w", h.name, err)
			}
		}
		fn := h.fn
		for i := len(o.middleware) - 1; i >= 0; i-- {
			fn = o.middleware[i](fn)
		}
		h.fn = Recover(fn)
		r.handlers[h.consumes] = &h
		if !slices.Contains(r.topics, t.Topic) {
			r.topics = append(r.topics, t.Topic)
		}
	}
	if len(r.handlers) == 0 {
		return nil, errors.New("consumer: no handlers")
	}
	slices.Sort(r.topics)
	copts := append(slices.Clone(cfg.ClientOpts),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(r.topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // a new group must not miss earlier facts
		kgo.AutoCommitMarks(),
		// A member that dies without leaving (kill -9, a lost machine) holds its partitions
		// until the session times out: 10s instead of Kafka's 45s, so work moves on quickly.
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			r.member.assign(assigned)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			r.member.remove(revoked)
			// Stop the partitions' workers (work in flight is rolled back, never half applied),
			// then commit what they finished: the next owner starts right after it.
			r.stopWorkers(revoked)
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				r.opts.log.Warn("commit on revoke failed; the next owner re-reads (inbox deduplicates)", "err", err)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
			_, gen := cl.GroupMetadata()
			r.member.lose(lost, gen)
			r.stopWorkers(lost) // another member owns them already: nothing to commit
		}),
	)
	var err error
	if r.stmts, err = prepare(context.Background(), cfg.DB); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	cl, err := kgo.NewClient(copts...)
	if err != nil {
		r.stmts.close()
		return nil, fmt.Errorf("consumer: %w", err)
	}
	r.client = cl
	return r, nil
}

// Topics returns the topics the runner consumes.
func (r *Runner) Topics() []string { return slices.Clone(r.topics) }

// DeadLetterTopic returns where the runner parks records.
func (r *Runner) DeadLetterTopic() string { return r.opts.dlq }

// Handlers returns the registered handlers.
func (r *Runner) Handlers() []Handler {
	hs := make([]Handler, 0, len(r.handlers))
	for _, h := range r.handlers {
		hs = append(hs, *h)
	}
	slices.SortFunc(hs, func(a, b Handler) int { return strings.Compare(a.name, b.name) })
	return hs
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats { return r.metrics.total() }

// HandlerStats returns the counters of each handler by name; records parked before a handler
// was chosen (undecodable ones) count under "".
func (r *Runner) HandlerStats() map[string]Stats { return r.metrics.byHandler() }

// Group returns the runner's consumer group.
func (r *Runner) Group() string { return r.cfg.Group }

// Run consumes until ctx is done, then stops the partition workers (work in flight is rolled
// back and redelivered later), commits what they finished and leaves the group.
func (r *Runner) Run(ctx context.Context) error {
	defer func() {
		r.stopWorkers(nil)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.client.CommitMarkedOffsets(cctx); err != nil {
			r.opts.log.Warn("final commit failed; the next start re-reads (inbox deduplicates)", "err", err)
		}
		r.client.Close()
		r.stmts.close()
	}()
	for {
		fetches := r.client.PollRecords(ctx, r.opts.maxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			r.opts.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				r.worker(ctx, topicPartition{p.Topic, p.Partition}).enqueue(p.Records)
			}
		})
	}
}

type decoded struct {
	codec.Decoded
	err error // the record cannot be decoded: park it
	// park is set once the record's handler has failed for good: the next apply parks the
	// record without calling the handler again.
	park                      error
	attempts                  int
	firstFailure, lastFailure time.Time
}

// failure is a transient handler failure that stopped an apply at index.
type failure struct {
	index   int
	handler string
	err     error
}

// errPoisoned reports that record index's handler failed in a way that rolled back the whole
// transaction (not just its savepoint): nothing of the batch was applied.
type errPoisoned struct {
	index   int
	handler string
	err     error
}

func (e *errPoisoned) Error() string { return e.err.Error() }

// processPartition applies one partition's records, in order, each batch in one transaction,
// and marks what committed for the next offset commit. A transient handler failure commits the
// records before it, waits (the partition's worker only), and retries the failing record within
// the RetryPolicy; a permanent one, or one past the policy, parks the record. A failure of the
// database itself is retried until ctx is done. It returns only ctx's error.
func (r *Runner) processPartition(ctx context.Context, recs []*kgo.Record) error {
	ds, err := r.decode(ctx, recs)
	if err != nil {
		return err
	}
	dbBackoff := 10 * time.Millisecond
	guarded := false
	for i := 0; i < len(recs); {
		n, fail, err := r.apply(ctx, recs[i:], ds[i:], guarded)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var poisoned *errPoisoned
			if !errors.As(err, &poisoned) {
				r.opts.log.Error("applying records failed; retrying", "topic", recs[i].Topic,
					"partition", recs[i].Partition, "offset", recs[i].Offset, "err", err, "backoff", dbBackoff)
				if !sleep(ctx, dbBackoff) {
					return ctx.Err()
				}
				dbBackoff = min(2*dbBackoff, 5*time.Second)
				continue
			}
			n, fail = 0, &failure{index: poisoned.index, handler: poisoned.handler, err: poisoned.err}
			guarded = true // from now on each record under a savepoint
		}
		dbBackoff = 10 * time.Millisecond
		if n > 0 {
			r.client.MarkCommitRecords(recs[i+n-1])
			i += n
		}
		if fail == nil {
			continue
		}
		d := &ds[i+fail.index-n]
		now := r.opts.now()
		d.attempts++
		if d.firstFailure.IsZero() {
			d.firstFailure = now
		}
		d.lastFailure = now
		wait := r.opts.retry.backoff(d.attempts)
		if IsPermanent(fail.err) || d.attempts >= r.opts.retry.MaxAttempts || now.Add(wait).Sub(d.firstFailure) > r.opts.retry.MaxElapsed {
			d.park = fail.err // the next apply parks it without calling the handler
			continue
		}
		r.metrics.add(fail.handler, func(s *Stats) { s.Retried++ })
		r.observe(Observation{Handler: fail.handler, Outcome: OutcomeRetried, EventTime: d.Envelope.Time, ChainTime: d.Envelope.ChainStart()})
		r.opts.log.Warn("handler failed; retrying", "handler", fail.handler, "event", d.Envelope.ID,
			"attempt", d.attempts, "backoff", wait, "err", fail.err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	return nil
}

// sleep waits d or until ctx is done, and reports whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// decode decodes recs. A record whose schema the registry could not be asked about is not
// undecodable, only not decodable yet: decoding is retried with backoff (holding the partition,
// which keeps its order) until the registry answers or ctx is done.
func (r *Runner) decode(ctx context.Context, recs []*kgo.Record) ([]decoded, error) {
	ds := make([]decoded, len(recs))
	for i, rec := range recs {
		if len(rec.Value) > r.opts.maxBytes {
			ds[i].err = fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(rec.Value), r.opts.maxBytes)
			continue
		}
		ds[i].Decoded, ds[i].err = r.cfg.Codec.DecodeRecord(ctx, rec)
	}
	backoff := 50 * time.Millisecond
	for {
		pending := false
		for i, rec := range recs {
			if errors.Is(ds[i].err, codec.ErrRegistryUnavailable) {
				if ds[i].Decoded, ds[i].err = r.cfg.Codec.DecodeRecord(ctx, rec); errors.Is(ds[i].err, codec.ErrRegistryUnavailable) {
					pending = true
				}
			}
		}
		if !pending {
			return ds, nil
		}
		r.opts.log.Warn("schema registry unavailable; retrying", "topic", recs[0].Topic, "partition", recs[0].Partition, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// apply applies recs in one transaction, each record under a savepoint. It stops before the
// first record whose handler fails transiently, commits what came before, and returns how many
// records it committed and the failure. Permanent failures and undecodable records are parked
// in the same transaction.
//
// Unguarded, records get no savepoints: the common case, where every handler succeeds, saves
// two statements a record. The first handler failure then rolls back the whole batch (as
// errPoisoned), and the caller applies it again guarded. Handlers change only the database
// (effects outside it go through outboxes), so running them again is safe.
func (r *Runner) apply(ctx context.Context, recs []*kgo.Record, ds []decoded, guarded bool) (n int, fail *failure, err error) {
	r.stmts.prepareWanted(ctx)
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	st := r.stmts.bind(ctx, tx)
	notes := make([]note, 0, len(recs))
	defer func() {
		if err != nil {
			r.abandon(notes)
		}
	}()
	now := r.opts.now().UnixMilli()
	for i, rec := range recs {
		d := &ds[i]
		notes = append(notes, note{eventTime: d.Envelope.Time, chainTime: d.Envelope.ChainStart()})
		nt := &notes[len(notes)-1]
		rctx := ctx
		if r.opts.tracer != nil {
			rctx, nt.span = r.opts.tracer.StartProcess(ctx, rec, r.cfg.Group)
		}
		if d.err != nil {
			nt.err = d.err
			if err := r.park(rctx, st, rec, "", decodeClass(d.err), d, d.err); err != nil {
				return 0, nil, err
			}
			nt.outcome = OutcomeParked
			continue
		}
		h := r.handlers[d.Type.Name]
		if h == nil {
			nt.outcome = OutcomeIgnored
			continue
		}
		nt.handler = h.name
		if d.park != nil {
			nt.err = d.park
			if err := r.park(rctx, st, rec, h.name, "handler", d, d.park); err != nil {
				return 0, nil, err
			}
			nt.outcome = OutcomeParked
			continue
		}
		if guarded {
			if _, err := st.savepoint.ExecContext(ctx); err != nil {
				return 0, nil, fmt.Errorf("savepoint: %w", err)
			}
		}
		res, err := st.inbox.ExecContext(ctx, r.cfg.Group, d.Envelope.ID, d.Type.Name, now)
		if err != nil {
			return 0, nil, fmt.Errorf("inbox: %w", err)
		}
		if inserted, err := res.RowsAffected(); err != nil {
			return 0, nil, fmt.Errorf("inbox: %w", err)
		} else if inserted == 0 {
			if guarded {
				if _, err := st.release.ExecContext(ctx); err != nil {
					return 0, nil, fmt.Errorf("release savepoint: %w", err)
				}
			}
			nt.outcome = OutcomeDuplicate
			continue
		}
		start := time.Now()
		herr := h.fn(rctx, &Tx{sql: tx, stmts: st, r: r, h: h, cause: d.Envelope}, d.Event)
		nt.took, nt.err = time.Since(start), herr
		if herr != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			if !guarded {
				// Nothing of the batch can be kept without savepoints: report the failure as
				// one that took the whole transaction, and go on guarded.
				return 0, nil, &errPoisoned{index: i, handler: h.name, err: herr}
			}
			if _, err := st.rollbackTo.ExecContext(ctx); err != nil {
				// The handler's failure took the whole transaction with it.
				return 0, nil, &errPoisoned{index: i, handler: h.name, err: herr}
			}
		}
		if guarded {
			if _, err := st.release.ExecContext(ctx); err != nil {
				return 0, nil, fmt.Errorf("release savepoint: %w", err)
			}
		}
		if herr != nil && !IsPermanent(herr) {
			fail = &failure{index: i, handler: h.name, err: herr}
			recs = recs[:i] // commit what came before; the caller retries from here
			break
		}
		if herr != nil {
			d.attempts++
			d.firstFailure, d.lastFailure = r.opts.now(), r.opts.now()
			r.opts.log.WarnContext(rctx, "handler failed permanently; parking record", "handler", h.name, "event", d.Envelope.ID, "err", herr)
			if err := r.park(rctx, st, rec, h.name, "handler", d, herr); err != nil {
				return 0, nil, err
			}
			nt.outcome = OutcomeParked
			continue
		}
		nt.outcome = OutcomeHandled
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("commit: %w", err)
	}
	r.cfg.Relay.Notify()
	for _, fn := range r.opts.afterCommit {
		fn()
	}
	r.report(notes)
	return len(recs), fail, nil
}

// park puts rec on the dead-letter topic through the outbox, so parking commits with the rest
// of the batch: the record is never lost and never parked without its offset moving on.
func (r *Runner) park(ctx context.Context, st *stmts, rec *kgo.Record, handler, reason string, d *decoded, cause error) error {
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+12)
	hs = append(hs, rec.Headers...)
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderDLQTopic, rec.Topic)
	add(HeaderDLQPartition, strconv.Itoa(int(rec.Partition)))
	add(HeaderDLQOffset, strconv.FormatInt(rec.Offset, 10))
	add(HeaderDLQGroup, r.cfg.Group)
	if handler != "" {
		add(HeaderDLQHandler, handler)
	}
	add(HeaderDLQReason, reason)
	class := "permanent"
	if handler != "" && !IsPermanent(cause) {
		class = "transient"
	}
	add(HeaderDLQClass, class)
	add(HeaderDLQError, cause.Error())
	now := r.opts.now().UTC()
	add(HeaderDLQTime, now.Format(time.RFC3339Nano))
	attempts, first, last := max(d.attempts, 1), d.firstFailure, d.lastFailure
	if first.IsZero() {
		first, last = now, now
	}
	add(HeaderDLQAttempts, strconv.Itoa(attempts))
	add(HeaderDLQFirstFailure, first.UTC().Format(time.RFC3339Nano))
	add(HeaderDLQLastFailure, last.UTC().Format(time.RFC3339Nano))
	if err := outbox.AddPrepared(ctx, st.outbox, &kgo.Record{Topic: r.opts.dlq, Key: rec.Key, Value: rec.Value, Headers: hs}); err != nil {
		return fmt.Errorf("park %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	return nil
}
