package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/telemetry"
)

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

// WithMiddleware wraps every handler, first given outermost, for cross-cutting concerns
// (logging, metrics, a circuit breaker). Recover always wraps them all. Default none.
func WithMiddleware(mw ...Middleware) Opt {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// Logger sets the runner's logger. Default: discarded.
func Logger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// MaxPollRecords bounds the records taken per poll, and so the records of a partition applied
// in one transaction. Default 1000: a transaction holds its records, their decoded events and
// the outbox rows they emit in memory until it commits, one per partition at once, so under a
// backlog the bound is most of a service's heap (the User Service on PostgreSQL peaked at
// 77-88 MiB RSS in a burst with 10000, 64-69 MiB with 1000, at the same rate within the
// machine's noise).
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
	dlq      string              // deadletter.Topic of the group
	handlers map[string]*Handler // by consumed event name
	topics   []string
	client   *kgo.Client
	metrics  *metrics
	stmts    *stmts
	params   outbox.Params // of cfg.DB, for multi-row statements
	member   membership

	mu      sync.Mutex
	workers map[topicPartition]*worker
}

// New validates the handlers against the codec's event types and connects the consumer.
func New(cfg Config, handlers []Handler, opts ...Opt) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{maxPoll: 1000, maxBytes: 1 << 20, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	o.retry = o.retry.normalized()
	r := &Runner{
		cfg: cfg, opts: o, source: "/" + cfg.Service, dlq: deadletter.Topic(cfg.Group),
		handlers: make(map[string]*Handler), metrics: newMetrics(), workers: make(map[topicPartition]*worker),
		params: outbox.ParamsOf(cfg.DB),
	}
	if err := r.register(handlers); err != nil {
		return nil, err
	}
	var err error
	if r.stmts, err = prepare(context.Background(), cfg.DB); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	if r.client, err = kgo.NewClient(r.clientOpts()...); err != nil {
		r.stmts.close()
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return r, nil
}

// register checks handlers against the codec's event types, wraps them in the middleware
// and notes the topics they consume.
func (r *Runner) register(handlers []Handler) error {
	types := r.cfg.Codec.Types()
	names := map[string]bool{}
	for _, h := range handlers {
		if h.name == "" || names[h.name] {
			return fmt.Errorf("consumer: handler name %q is empty or registered twice", h.name)
		}
		names[h.name] = true
		if prev, dup := r.handlers[h.consumes]; dup {
			return fmt.Errorf("consumer: handlers %s and %s both consume %s", prev.name, h.name, h.consumes)
		}
		t, err := types.ByName(h.consumes)
		if err != nil {
			return fmt.Errorf("consumer: handler %s: %w", h.name, err)
		}
		for _, e := range h.emits {
			if _, err := types.ByName(e); err != nil {
				return fmt.Errorf("consumer: handler %s emits: %w", h.name, err)
			}
		}
		fn := h.fn
		for i := len(r.opts.middleware) - 1; i >= 0; i-- {
			fn = r.opts.middleware[i](fn)
		}
		h.fn = Recover(fn)
		r.handlers[h.consumes] = &h
		if !slices.Contains(r.topics, t.Topic) {
			r.topics = append(r.topics, t.Topic)
		}
	}
	if len(r.handlers) == 0 {
		return errors.New("consumer: no handlers")
	}
	slices.Sort(r.topics)
	return nil
}

// clientOpts are the Config's client options plus the consumer group's.
func (r *Runner) clientOpts() []kgo.Opt {
	return append(slices.Clone(r.cfg.ClientOpts),
		kgo.ConsumerGroup(r.cfg.Group),
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
}

// Topics returns the topics the runner consumes.
func (r *Runner) Topics() []string { return slices.Clone(r.topics) }

// DeadLetterTopic returns where the runner parks records: deadletter.Topic of its group.
func (r *Runner) DeadLetterTopic() string { return r.dlq }

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
//
// Each poll's records go to their partition's worker (worker.go), which applies them in order:
// processPartition (process.go) decodes a batch, applies it in one transaction and retries or
// parks what failed.
func (r *Runner) Run(ctx context.Context) error {
	defer r.shutdown(ctx)
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

// shutdown stops the workers, commits what they finished and closes the client.
func (r *Runner) shutdown(ctx context.Context) {
	r.stopWorkers(nil)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.client.CommitMarkedOffsets(cctx); err != nil {
		r.opts.log.Warn("final commit failed; the next start re-reads (inbox deduplicates)", "err", err)
	}
	r.client.Close()
	r.stmts.close()
}
