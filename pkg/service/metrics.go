package service

import (
	"context"
	"database/sql"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/outbox"
)

// Names of the metrics a service exposes on /metrics, besides the Go runtime (go_*), process
// (process_*) and Kafka client (choreo_kafka_*, labelled client="producer" or "consumer") ones.
const (
	MetricRecords        = "choreo_consumer_records_total"
	MetricHandlerSeconds = "choreo_handler_duration_seconds"
	MetricEventAge       = "choreo_event_age_seconds"
	MetricChainLatency   = "choreo_chain_latency_seconds"
	MetricOutboxPending  = "choreo_outbox_pending"
	MetricOutboxOldest   = "choreo_outbox_oldest_age_seconds"
	MetricOutboxFailures = "choreo_outbox_publish_failures_total"
	MetricLag            = "kafka_consumergroup_lag"
	MetricDLQRecords     = "choreo_dlq_records"
	// KafkaClientNamespace prefixes franz-go's client metrics (kprom).
	KafkaClientNamespace = "choreo_kafka"
)

// latencyBuckets span a fast hop (a millisecond) to a chain held up by retries (minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

type metrics struct {
	records      *prometheus.CounterVec
	handlerTook  *prometheus.HistogramVec
	eventAge     *prometheus.HistogramVec
	chainLatency *prometheus.HistogramVec
}

// newMetrics registers the service's metrics on reg.
func newMetrics(reg *prometheus.Registry, service string) *metrics {
	labels := prometheus.Labels{"service": service}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRecords, ConstLabels: labels,
			Help: "Records consumed, by consumer group, handler and outcome (handled, duplicate, parked, retried, ignored).",
		}, []string{"group", "handler", "outcome"}),
		handlerTook: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricHandlerSeconds, ConstLabels: labels, Buckets: latencyBuckets,
			Help: "How long handlers ran, for records whose transaction committed.",
		}, []string{"group", "handler"}),
		eventAge: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricEventAge, ConstLabels: labels, Buckets: latencyBuckets,
			Help: "Age of events when handled: commit time minus the event's ce_time.",
		}, []string{"group", "handler"}),
		chainLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricChainLatency, ConstLabels: labels, Buckets: latencyBuckets,
			Help: "Time from a chain's first event (ce_chaintime) to an effect at its end, by effect.",
		}, []string{"effect"}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.records, m.handlerTook, m.eventAge, m.chainLatency)
	return m
}

// kafkaHooks returns the franz-go client metrics of one client, registered on reg while the
// client is open.
func kafkaHooks(reg prometheus.Registerer, client string) kgo.Opt {
	return kgo.WithHooks(kprom.NewMetrics(KafkaClientNamespace, kprom.Registerer(reg),
		kprom.WithStaticLabel(prometheus.Labels{"client": client})))
}

// observer counts a consumer group's record outcomes.
func (m *metrics) observer(group string) consumer.Observer {
	return func(o consumer.Observation) {
		m.records.WithLabelValues(group, o.Handler, string(o.Outcome)).Inc()
		if o.Took > 0 {
			m.handlerTook.WithLabelValues(group, o.Handler).Observe(o.Took.Seconds())
		}
		if o.Outcome == consumer.OutcomeHandled && !o.EventTime.IsZero() {
			m.eventAge.WithLabelValues(group, o.Handler).Observe(time.Since(o.EventTime).Seconds())
		}
	}
}

// EffectDone records that effect (as the catalog names it, e.g. "welcome email") happened at
// the end of a chain that began at chainStart.
func (s *Service) EffectDone(effect string, chainStart time.Time) {
	if !chainStart.IsZero() {
		s.metrics.chainLatency.WithLabelValues(effect).Observe(time.Since(chainStart).Seconds())
	}
}

// scrapeTimeout bounds what a scrape waits for the broker and the database: an unreachable one
// leaves its metrics out instead of holding the scrape.
const scrapeTimeout = 3 * time.Second

// ScrapeReadInterval is how long the figures a scrape read from the database or the broker are
// served again before they are read anew (see ReadAtMostEvery).
const ScrapeReadInterval = time.Second

// ReadAtMostEvery returns c, collected at most once every interval: a scrape within interval of
// the last collection gets that collection's metrics again. For collectors that query the
// database or the broker when scraped: each scrape costs queries there, and several Prometheus
// servers (an HA pair), a short scrape interval or a dashboard polling /metrics multiply them
// while the figures, read a moment apart, would hardly differ.
func ReadAtMostEvery(interval time.Duration, c prometheus.Collector) prometheus.Collector {
	return &readAtMost{c: c, every: interval}
}

type readAtMost struct {
	c     prometheus.Collector
	every time.Duration

	mu   sync.Mutex // held through a collection: concurrent scrapes share it
	at   time.Time
	last []prometheus.Metric
}

func (r *readAtMost) Describe(ch chan<- *prometheus.Desc) { r.c.Describe(ch) }

func (r *readAtMost) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	if r.at.IsZero() || time.Since(r.at) >= r.every {
		got := make(chan prometheus.Metric)
		go func() { r.c.Collect(got); close(got) }()
		var ms []prometheus.Metric
		for m := range got {
			ms = append(ms, m)
		}
		r.last, r.at = ms, time.Now()
	}
	ms := r.last
	r.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

// outboxCollector reports the outbox's backlog (rows not yet acknowledged and the oldest's
// age) and the relay's failed publish attempts.
type outboxCollector struct {
	db                       *sql.DB
	relay                    *outbox.Relay
	pending, older, failures *prometheus.Desc
	log                      *slog.Logger
}

func newOutboxCollector(db *sql.DB, relay *outbox.Relay, service string, log *slog.Logger) *outboxCollector {
	labels := prometheus.Labels{"service": service}
	return &outboxCollector{db: db, relay: relay, log: log,
		pending: prometheus.NewDesc(MetricOutboxPending, "Outbox rows committed but not yet acknowledged by Kafka.", nil, labels),
		older:   prometheus.NewDesc(MetricOutboxOldest, "Age of the oldest outbox row; 0 when the outbox is empty.", nil, labels),
		failures: prometheus.NewDesc(MetricOutboxFailures,
			"Failed attempts to publish the outbox, by reason (denied: no ACL to write the topic; other); the records stay in the outbox and are retried.",
			[]string{"reason"}, labels),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.older
	ch <- c.failures
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.relay.Failures()
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(f.Denied), "denied")
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(f.Total-f.Denied), "other")
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var (
		n      int64
		oldest sql.NullInt64
	)
	if err := c.db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM outbox`).Scan(&n, &oldest); err != nil {
		c.log.Debug("metrics: outbox not readable", "err", err)
		return
	}
	age := 0.0
	if oldest.Valid {
		age = max(0, time.Since(time.UnixMilli(oldest.Int64)).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.older, prometheus.GaugeValue, age)
}

// lagCollector reports the consumer group's lag per partition (kadm's calculation, under
// kafka_exporter's names) and the records on its dead-letter topic.
type lagCollector struct {
	adm        *kadm.Client
	group, dlq string
	lag, dlqN  *prometheus.Desc
	log        *slog.Logger
}

func newLagCollector(adm *kadm.Client, group, dlq string, log *slog.Logger) *lagCollector {
	return &lagCollector{adm: adm, group: group, dlq: dlq, log: log,
		lag: prometheus.NewDesc(MetricLag, "Records of the partition the consumer group has not committed yet (end offset minus committed offset).",
			[]string{"consumergroup", "topic", "partition"}, nil),
		dlqN: prometheus.NewDesc(MetricDLQRecords, "Records parked on the consumer group's dead-letter topic (end minus start offsets).",
			[]string{"consumergroup", "topic"}, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag; ch <- c.dlqN }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	lags, err := c.adm.Lag(ctx, c.group)
	if err != nil {
		c.log.Debug("metrics: consumer lag unavailable", "err", err)
	} else if l, ok := lags[c.group]; ok && l.Error() == nil {
		for _, m := range l.Lag.Sorted() {
			if m.Err == nil && m.Lag >= 0 {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(m.Lag),
					c.group, m.Topic, strconv.Itoa(int(m.Partition)))
			}
		}
	}
	starts, err := c.adm.ListStartOffsets(ctx, c.dlq)
	if err != nil {
		return
	}
	ends, err := c.adm.ListEndOffsets(ctx, c.dlq)
	if err != nil {
		return
	}
	var n int64
	ok := false
	ends.Each(func(e kadm.ListedOffset) {
		if s, found := starts.Lookup(e.Topic, e.Partition); found && e.Err == nil && s.Err == nil {
			n += e.Offset - s.Offset
			ok = true
		}
	})
	if ok {
		ch <- prometheus.MustNewConstMetric(c.dlqN, prometheus.GaugeValue, float64(n), c.group, c.dlq)
	}
}
