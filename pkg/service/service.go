// Package service is the runtime every choreo service runs in: it opens the service's database,
// registers the event schemas, provisions topics, and runs the outbox relay, the consumer runner
// and the HTTP API together, shutting them down in the order that loses nothing. The per-service
// mains and `choreo dev` both build services with it, so tests exercise production wiring.
package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/schemas"
)

// ErrUndeclaredEmit is returned by Emit for an event the service did not declare with Emits.
var ErrUndeclaredEmit = errors.New("service emits an event it did not declare")

// Service is one running choreo service.
type Service struct {
	// Name is the service's name in the catalog, e.g. "user-service".
	Name string
	// Config is the configuration it was opened with.
	Config Config
	// DB is the service's database: its own tables, the inbox and the outbox.
	DB *sql.DB
	// Codec encodes and decodes events with the registry's schema IDs.
	Codec *codec.Codec
	// Relay publishes the outbox.
	Relay *outbox.Relay
	// Log is the service's logger; records logged with a traced context carry trace_id and span_id.
	Log *slog.Logger
	// Metrics is the service's Prometheus registry, served on /metrics; services add their own
	// collectors to it.
	Metrics *prometheus.Registry
	// Tracer starts the service's spans; nil when tracing is off.
	Tracer *telemetry.Tracer

	catalog   *catalog.Catalog
	producer  *kgo.Client
	kafkaOpts []kgo.Opt // TLS and SASL, from Config.Conn
	runner    *consumer.Runner
	group     string // as named in the catalog, without the namespace
	emits     []string
	ln        net.Listener
	handler   http.Handler
	tasks     []func(context.Context) error
	metrics   *metrics
	health    health
}

// Go adds a background task that Run runs beside the consumer and stops (by cancelling its
// context) once the consumer has stopped.
func (s *Service) Go(task func(ctx context.Context) error) { s.tasks = append(s.tasks, task) }

// Open connects a service to its database, the schema registry and Kafka, then applies opts
// in order: the service's migrations, the events it emits, its consumer, its HTTP API (see
// Option). A service with every part given is ready to Run.
func Open(ctx context.Context, name string, cfg Config, log *slog.Logger, opts ...Option) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var p parts
	for _, o := range opts {
		o(&p)
	}
	migs := p.migs
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{Name: name, Config: cfg, Log: slog.New(telemetry.LogHandler(log.Handler())).With("service", name),
		Metrics: prometheus.NewRegistry(), Tracer: telemetry.NewTracer(cfg.TracerProvider)}
	s.metrics = newMetrics(s.Metrics, name)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	types, err := event.Load()
	if err != nil {
		return nil, err
	}
	if s.catalog, err = catalog.Load(schemas.FS); err != nil { // for topics and their settings
		return nil, err
	}
	types = types.WithNamespace(cfg.Namespace)
	src, err := cfg.Conn.Registry.RegistryClient(cfg.RegistryURL)
	if err != nil {
		return nil, err
	}
	if s.kafkaOpts, err = cfg.Conn.Kafka.Opts(); err != nil {
		return nil, err
	}
	// Every dependency must answer within this bound: a server that accepts connections and
	// never answers is a start-up failure naming its setting, not a hang.
	rctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if cfg.DatabaseURL != "" {
		if s.DB, err = postgres.Open(rctx, cfg.DatabaseURL, migs...); err != nil {
			return nil, err
		}
	} else if s.DB, err = sqlite.Open(rctx, filepath.Join(cfg.DataDir, name, name+".db"), migs...); err != nil {
		return nil, fmt.Errorf("%w (DATA_DIR=%s)", err, cfg.DataDir)
	}
	if s.Codec, err = codec.New(rctx, src, types); err != nil {
		return nil, fmt.Errorf("schema registry at %s (SCHEMA_REGISTRY_URL): %w", connect.RedactURL(cfg.RegistryURL), cfg.Conn.Registry.Explain(err))
	}
	if s.producer, err = kgo.NewClient(s.clientOpts(name, kafkaHooks(s.Metrics, "producer"))...); err != nil {
		return nil, fmt.Errorf("KAFKA_BROKERS %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	topics, err := serviceTopics(s.catalog, name, types)
	if err != nil {
		return nil, err
	}
	if err := s.ensureTopics(rctx, topics...); err != nil {
		return nil, err
	}
	relayOpts := []outbox.RelayOpt{outbox.Logger(s.Log), outbox.Tracing(s.Tracer)}
	if cfg.DatabaseURL != "" {
		relayOpts = append(relayOpts, outbox.Exclusive(postgres.RelayLock(s.DB, postgres.Schema(cfg.DatabaseURL))))
	}
	s.Relay = outbox.NewRelay(s.DB, s.producer, relayOpts...)
	s.Metrics.MustRegister(ReadAtMostEvery(ScrapeReadInterval, newOutboxCollector(s.DB, s.Relay, name, s.Log)))
	for _, st := range p.steps {
		if err := st(ctx, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serviceTopics returns the topics service name uses: those of the events the catalog says it
// produces or consumes, namespaced as types are. A service the catalog does not know (a test's)
// gets every topic. Only these are provisioned or checked at start-up: on a secured cluster a
// service may see no other topic.
func serviceTopics(cat *catalog.Catalog, name string, types *event.TypeSet) ([]string, error) {
	var topics []string
	add := func(t string) {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	svc, ok := cat.Service(name)
	if !ok {
		for _, t := range types.Types() {
			add(t.Topic)
		}
		return topics, nil
	}
	for _, ev := range slices.Concat(svc.Produces, svc.Consumes) {
		t, err := types.ByName(ev)
		if err != nil {
			return nil, err
		}
		add(t.Topic)
	}
	return topics, nil
}

// clientOpts returns the options of a Kafka client of this service: choreo's defaults, the
// connection settings (TLS, SASL), then extra.
func (s *Service) clientOpts(clientID string, extra ...kgo.Opt) []kgo.Opt {
	return kafka.ClientOpts(s.Config.Brokers, clientID, slices.Concat(s.kafkaOpts, extra)...)
}

// ensureTopics provisions topics (namespaced names) with the catalog's settings and the
// configured overrides, and logs what provisioning capped and what differs on existing topics.
func (s *Service) ensureTopics(ctx context.Context, names ...string) error {
	ts := make([]kafka.Topic, len(names))
	for i, n := range names {
		ts[i] = s.topic(n)
	}
	// A client of its own with a short metadata age: waiting for new topics' leaders polls the
	// metadata, which the producer's client would answer from a cache kept for seconds.
	adm, err := kgo.NewClient(s.clientOpts(s.Name+"-admin", kgo.MetadataMinAge(50*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s: %w", strings.Join(s.Config.Brokers, ","), err)
	}
	defer adm.Close()
	rep, err := kafka.EnsureTopics(ctx, kadm.NewClient(adm), ts...)
	for _, c := range rep.Capped {
		// Expected on a development broker; on a cluster, a sign that brokers are missing.
		level := slog.LevelWarn
		if rep.Brokers == 1 {
			level = slog.LevelInfo
		}
		s.Log.Log(ctx, level, "topic settings capped to the cluster", "detail", c)
	}
	for _, d := range rep.Warnings {
		s.Log.Warn("existing topic differs from the catalog", "topic", d.Topic, "setting", d.Setting, "have", d.Have, "declared", d.Want, "why", d.Why)
	}
	if len(rep.Created) > 0 {
		s.Log.Info("created topics", "topics", rep.Created, "brokers", rep.Brokers)
	}
	if err != nil {
		err = s.Config.Conn.Kafka.Explain(err)
		if errors.Is(err, connect.ErrAuthorization) {
			// On a secured cluster services do not create topics: an administrator does.
			err = fmt.Errorf("%w (on a secured cluster, choreo acls apply creates the topics, users and ACLs)", err)
		}
		return fmt.Errorf("provision topics %s on %s (KAFKA_BROKERS): %w", strings.Join(names, ", "), strings.Join(s.Config.Brokers, ","), err)
	}
	return nil
}

// topic returns how topic name (namespaced) is provisioned: as the catalog declares, with
// TOPIC_PARTITIONS and TOPIC_REPLICATION_FACTOR overriding.
func (s *Service) topic(name string) kafka.Topic {
	base := name
	if s.Config.Namespace != "" {
		base = strings.TrimPrefix(name, s.Config.Namespace+".")
	}
	set := s.catalog.TopicSettings(base)
	t := kafka.Topic{Name: name, Partitions: -1, ReplicationFactor: -1, Configs: map[string]*string{}}
	if set.Partitions > 0 {
		t.Partitions = int32(set.Partitions)
	}
	if s.Config.Partitions > 0 {
		t.Partitions = int32(s.Config.Partitions)
	}
	if set.Replication > 0 {
		t.ReplicationFactor = int16(set.Replication)
	}
	if s.Config.ReplicationFactor != 0 {
		t.ReplicationFactor = int16(s.Config.ReplicationFactor)
	}
	for k, v := range set.Configs() {
		if k == kafka.ConfigMinInsyncReplicas && t.ReplicationFactor < 0 {
			continue // the broker's default replication goes with the broker's min.insync.replicas
		}
		t.Configs[k] = &v
	}
	return t
}

// checkGroup reads the group's committed offsets once, so that a principal that may not use the
// group fails start-up instead of leaving the consumer retrying in the background. Only a denial
// fails it: anything else (a group not created yet) is the consumer's to handle.
func (s *Service) checkGroup(ctx context.Context, group string) error {
	ctx, cancel := context.WithTimeout(ctx, s.Config.StartTimeout)
	defer cancel()
	cl, err := kgo.NewClient(s.clientOpts(s.Name + "-admin")...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s: %w", strings.Join(s.Config.Brokers, ","), err)
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err == nil {
		err = resps.Error()
	}
	if err = s.Config.Conn.Kafka.Explain(err); errors.Is(err, connect.ErrAuthorization) {
		return fmt.Errorf("consumer group %s on %s (KAFKA_BROKERS): %w", group, strings.Join(s.Config.Brokers, ","), err)
	}
	return nil
}

// Consume makes the service a member of group, applying handlers to the topics they consume.
// Records that cannot be processed are parked on the group's dead-letter topic.
func (s *Service) Consume(ctx context.Context, group string, handlers []consumer.Handler, opts ...consumer.Opt) error {
	scoped := s.Config.Scoped(group)
	if err := s.ensureTopics(ctx, deadletter.Topic(scoped)); err != nil {
		return err
	}
	if err := s.checkGroup(ctx, scoped); err != nil {
		return err
	}
	r, err := consumer.New(consumer.Config{
		Service:    s.Name,
		Group:      scoped,
		DB:         s.DB,
		Codec:      s.Codec,
		Relay:      s.Relay,
		ClientOpts: s.clientOpts(s.Name, append(s.fetchOpts(), kafkaHooks(s.Metrics, "consumer"))...),
	}, handlers, append([]consumer.Opt{consumer.Logger(s.Log), consumer.Tracing(s.Tracer),
		consumer.Observe(s.metrics.observer(scoped))}, opts...)...)
	if err != nil {
		return err
	}
	s.Metrics.MustRegister(ReadAtMostEvery(ScrapeReadInterval, newLagCollector(kadm.NewClient(s.producer), scoped, r.DeadLetterTopic(), s.Log)))
	s.runner, s.group = r, group
	return nil
}

// fetchOpts bounds what the consumer fetches ahead of its handlers, as configured.
func (s *Service) fetchOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxBytes(int32(s.Config.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(s.Config.FetchMaxPartitionBytes)),
	}
}

// Emits declares the events the service emits outside its handlers (from its HTTP API).
func (s *Service) Emits(evs ...event.Event) {
	for _, ev := range evs {
		s.emits = append(s.emits, event.NameOf(ev))
	}
}

// Emit adds ev, with env, to the outbox within tx. Call Relay.Notify after tx commits.
func (s *Service) Emit(ctx context.Context, tx outbox.Execer, env envelope.Envelope, ev event.Event) error {
	if name := event.NameOf(ev); !slices.Contains(s.emits, name) {
		return fmt.Errorf("%s emits %s: %w", s.Name, name, ErrUndeclaredEmit)
	}
	if env.Source == "" {
		env.Source = "/" + s.Name
	}
	rec, err := s.Codec.Record(env, ev)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, rec)
}

// Serve listens on the configured HTTP address and will serve h (under /, beside /healthz and
// /stats) once Run starts.
func (s *Service) Serve(h http.Handler) error {
	ln, err := net.Listen("tcp", s.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", s.Config.HTTPAddr, err)
	}
	s.ln, s.handler = ln, h
	return nil
}

// HTTPAddr returns the address the HTTP API listens on ("" before Serve).
func (s *Service) HTTPAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Runner returns the service's consumer runner, nil if it consumes nothing.
func (s *Service) Runner() *consumer.Runner { return s.runner }

// Description is what the service registers in code, for checking against the catalog.
func (s *Service) Description() catalog.ServiceDescription {
	d := catalog.ServiceDescription{Name: s.Name, Emits: slices.Clone(s.emits)}
	if s.runner != nil {
		d.Group = s.group
		for _, h := range s.runner.Handlers() {
			d.Handlers = append(d.Handlers, catalog.HandlerDescription{
				Name: h.Name(), Consumes: h.Consumes(), Emits: h.EmitsEvents(), Effects: h.EffectNames(),
			})
		}
	}
	return d
}

// Run runs the relay, the consumer and the HTTP API until ctx is done or one of them fails,
// then shuts down in order: stop taking requests, finish and commit consumed records, publish
// what the outbox holds (bounded by a few seconds: what remains is published at the next start).
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan error, 1)
	go func() { relayDone <- s.Relay.Run(relayCtx) }()

	s.health.running.Store(true)
	errc := make(chan error, 2+len(s.tasks))
	consumerCtx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		if s.runner != nil {
			if err := s.runner.Run(consumerCtx); err != nil {
				errc <- fmt.Errorf("consumer: %w", err)
			}
		}
	}()
	tasksCtx, stopTasks := context.WithCancel(context.WithoutCancel(ctx))
	tasksDone := make(chan struct{}, len(s.tasks))
	for _, task := range s.tasks {
		go func() {
			defer func() { tasksDone <- struct{}{} }()
			if err := task(tasksCtx); err != nil {
				errc <- err
			}
		}()
	}
	var srv *http.Server
	if s.ln != nil {
		srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	stopConsumer()
	<-consumerDone
	stopTasks()
	for range s.tasks {
		<-tasksDone
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if ferr := s.Relay.Flush(fctx); ferr != nil {
		s.Log.Warn("outbox not empty at shutdown; it is published at the next start", "err", ferr)
	}
	cancel()
	stopRelay()
	<-relayDone
	return err
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LivenessPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		var st consumer.Stats
		if s.runner != nil {
			st = s.runner.Stats()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"service": s.Name, "consumer": st})
	})
	mux.HandleFunc("GET "+ReadinessPath, s.readyz)
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	if s.Config.Pprof {
		// pprof.Index serves the named profiles (heap, allocs, goroutine...) below its prefix.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if s.handler != nil {
		mux.Handle("/", s.Tracer.HTTP(s.handler))
	}
	return mux
}

// Close releases what Open acquired. Run calls it; call it yourself only if Run never ran.
func (s *Service) Close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.producer != nil {
		s.producer.Close()
		s.producer = nil
	}
	if s.DB != nil {
		_ = s.DB.Close()
		s.DB = nil
	}
}
