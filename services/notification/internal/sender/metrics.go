package sender

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// Metric names of the email queue.
const (
	// MetricEmails is the gauge of emails in the queue by status: pending and failed.
	MetricEmails = "choreo_emails"
	// MetricEmailsSent is the counter of emails the mail server accepted.
	MetricEmailsSent = "choreo_emails_sent_total"
)

// Collector reports the email queue: how many emails are pending and failed, read from the
// database when scraped. Sent emails are not counted there but as they are sent
// (NewSentCounter): the table only grows, counting them cost a scan of all of it per scrape,
// and replicas sharing a database would each have reported all of them.
type Collector struct {
	db   *sql.DB
	desc *prometheus.Desc
}

// NewCollector returns the email queue's collector for the service's registry.
func NewCollector(db *sql.DB, service string) *Collector {
	return &Collector{db: db, desc: prometheus.NewDesc(MetricEmails,
		"Emails in the sender's queue by status: pending (not yet accepted by the mail server), failed (given up).",
		[]string{"status"}, prometheus.Labels{"service": service})}
}

// NewSentCounter returns the counter of emails the mail server accepted from this process, for
// the service's registry; count with Delivered.
func NewSentCounter(service string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: MetricEmailsSent,
		Help: "Emails the mail server accepted, sent by this process.", ConstLabels: prometheus.Labels{"service": service}})
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; an unreadable database leaves the metric out.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pending, failed, err := store.Backlog(ctx, c.db)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(pending), store.StatusPending)
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(failed), store.StatusFailed)
}
