package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/outbox"
)

// Headers added to a parked record, beside its original key, value and headers.
const (
	HeaderDLQTopic     = "choreo_dlq_topic"
	HeaderDLQPartition = "choreo_dlq_partition"
	HeaderDLQOffset    = "choreo_dlq_offset"
	HeaderDLQGroup     = "choreo_dlq_group"
	HeaderDLQHandler   = "choreo_dlq_handler"
	HeaderDLQReason    = "choreo_dlq_reason" // "decode" or "handler"
	HeaderDLQError     = "choreo_dlq_error"
	HeaderDLQTime      = "choreo_dlq_time"
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
	dlq        string
	middleware []Middleware
	log        *slog.Logger
	maxPoll    int
	now        func() time.Time
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

// Clock sets the time source for emitted events' ce_time. Default time.Now.
func Clock(now func() time.Time) Opt { return func(o *options) { o.now = now } }

// Stats counts what a runner did with the records it consumed.
type Stats struct {
	Handled    int64 // applied by a handler
	Duplicates int64 // already in the inbox: acknowledged without effect
	Parked     int64 // sent to the dead-letter topic
	Ignored    int64 // an event of the topic that no handler of this group consumes
}

// Runner consumes a service's topics with one consumer group and applies its handlers.
type Runner struct {
	cfg      Config
	opts     options
	source   string
	handlers map[string]*Handler // by consumed event name
	topics   []string
	client   *kgo.Client

	handled, duplicates, parked, ignored atomic.Int64
}

// New validates the handlers against the codec's event registry and connects the consumer.
func New(cfg Config, handlers []Handler, opts ...Opt) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{maxPoll: 10000, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dlq == "" {
		o.dlq = DeadLetterTopicOf(cfg.Group)
	}
	r := &Runner{cfg: cfg, opts: o, source: "/" + cfg.Service, handlers: make(map[string]*Handler)}
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
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			// Everything polled was finished before the rebalance was allowed to run.
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				r.opts.log.Warn("commit on revoke failed; the next owner re-reads (inbox deduplicates)", "err", err)
			}
		}),
	)
	cl, err := kgo.NewClient(copts...)
	if err != nil {
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
	slices.SortFunc(hs, func(a, b Handler) int { return cmpString(a.name, b.name) })
	return hs
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	return Stats{
		Handled: r.handled.Load(), Duplicates: r.duplicates.Load(),
		Parked: r.parked.Load(), Ignored: r.ignored.Load(),
	}
}

// Run consumes until ctx is done, then commits what it finished and leaves the group.
func (r *Runner) Run(ctx context.Context) error {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.client.CommitMarkedOffsets(cctx); err != nil {
			r.opts.log.Warn("final commit failed; the next start re-reads (inbox deduplicates)", "err", err)
		}
		r.client.Close()
	}()
	for {
		fetches := r.client.PollRecords(ctx, r.opts.maxPoll)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			r.client.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			r.opts.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var done []*kgo.Record
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.processPartition(ctx, p.Records); err != nil {
					return // only when ctx is done: not marked, so redelivered to the next owner
				}
				mu.Lock()
				done = append(done, p.Records[len(p.Records)-1])
				mu.Unlock()
			}()
		})
		wg.Wait()
		r.client.MarkCommitRecords(done...)
		r.client.AllowRebalance()
	}
}

type decoded struct {
	codec.Decoded
	err error // the record cannot be decoded: park it (reason "decode")
	// poisoned is set when the handler's error ended the whole transaction, so the record is
	// parked on the next attempt without running the handler again.
	poisoned error
}

// errPoisoned reports that record index's handler failed in a way that rolled back the whole
// transaction (not just its savepoint): the batch is retried with that record parked.
type errPoisoned struct {
	index int
	err   error
}

func (e *errPoisoned) Error() string { return e.err.Error() }

// processPartition applies one partition's records in one transaction. A failure of the
// database itself (not of a handler) is retried with backoff until ctx is done: the records
// stay unapplied and uncommitted meanwhile, and order within the partition is kept.
func (r *Runner) processPartition(ctx context.Context, recs []*kgo.Record) error {
	ds, err := r.decode(ctx, recs)
	if err != nil {
		return err
	}
	backoff := 10 * time.Millisecond
	for {
		err := r.apply(ctx, recs, ds)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var poisoned *errPoisoned
		if errors.As(err, &poisoned) {
			ds[poisoned.index].poisoned = poisoned.err
			continue
		}
		r.opts.log.Error("applying records failed; retrying", "topic", recs[0].Topic,
			"partition", recs[0].Partition, "offset", recs[0].Offset, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// decode decodes recs. A record whose schema the registry could not be asked about is not
// undecodable, only not decodable yet: decoding is retried with backoff (holding the partition,
// which keeps its order) until the registry answers or ctx is done.
func (r *Runner) decode(ctx context.Context, recs []*kgo.Record) ([]decoded, error) {
	ds := make([]decoded, len(recs))
	for i, rec := range recs {
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

func (r *Runner) apply(ctx context.Context, recs []*kgo.Record, ds []decoded) (err error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var s Stats
	now := r.opts.now().UnixMilli()
	for i, rec := range recs {
		d := ds[i]
		if d.err != nil {
			if err := r.park(ctx, tx, rec, "", "decode", d.err); err != nil {
				return err
			}
			s.Parked++
			continue
		}
		h := r.handlers[d.Type.Name]
		if h == nil {
			s.Ignored++
			continue
		}
		if d.poisoned != nil {
			if err := r.park(ctx, tx, rec, h.name, "handler", d.poisoned); err != nil {
				return err
			}
			s.Parked++
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT handler`); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			r.cfg.Group, d.Envelope.ID, d.Type.Name, now)
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("inbox: %w", err)
		} else if n == 0 {
			s.Duplicates++
			if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT handler`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
			continue
		}
		herr := h.fn(ctx, &Tx{sql: tx, r: r, h: h, cause: d.Envelope}, d.Event)
		if herr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT handler`); err != nil {
				// The handler's failure took the whole transaction with it.
				return &errPoisoned{index: i, err: herr}
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT handler`); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		if herr != nil {
			r.opts.log.Warn("handler failed; parking record", "handler", h.name, "event", d.Envelope.ID, "err", herr)
			if err := r.park(ctx, tx, rec, h.name, "handler", herr); err != nil {
				return err
			}
			s.Parked++
			continue
		}
		s.Handled++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	r.cfg.Relay.Notify()
	r.handled.Add(s.Handled)
	r.duplicates.Add(s.Duplicates)
	r.parked.Add(s.Parked)
	r.ignored.Add(s.Ignored)
	return nil
}

// park puts rec on the dead-letter topic through the outbox, so parking commits with the rest
// of the batch: the record is never lost and never parked without its offset moving on.
func (r *Runner) park(ctx context.Context, tx *sql.Tx, rec *kgo.Record, handler, reason string, cause error) error {
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+8)
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
	add(HeaderDLQError, cause.Error())
	add(HeaderDLQTime, r.opts.now().UTC().Format(time.RFC3339Nano))
	if err := outbox.Add(ctx, tx, &kgo.Record{Topic: r.opts.dlq, Key: rec.Key, Value: rec.Value, Headers: hs}); err != nil {
		return fmt.Errorf("park %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	return nil
}
