package sender

import (
	"context"
	"database/sql"
	"sync/atomic"
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

// Collector reports the email queue: how many emails are pending and failed (read from the
// database when scraped), and how many this process has sent. Sent emails are counted as they
// are sent rather than in the table, which only grows: counting them there cost a scan of the
// whole table per scrape, and replicas sharing a database would each have reported all of them.
type Collector struct {
	db       *sql.DB
	emails   *prometheus.Desc
	sentDesc *prometheus.Desc
	sent     atomic.Uint64
}

// NewCollector returns the email queue's collector for the service's registry.
func NewCollector(db *sql.DB, service string) *Collector {
	labels := prometheus.Labels{"service": service}
	return &Collector{
		db: db,
		emails: prometheus.NewDesc(MetricEmails,
			"Emails in the sender's queue by status: pending (not yet accepted by the mail server), failed (given up).",
			[]string{"status"}, labels),
		sentDesc: prometheus.NewDesc(MetricEmailsSent,
			"Emails the mail server accepted, sent by this process.", nil, labels),
	}
}

// Sent counts an email the mail server accepted.
func (c *Collector) Sent() { c.sent.Add(1) }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.emails; ch <- c.sentDesc }

// Collect implements prometheus.Collector; an unreadable database leaves the gauge out.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.sentDesc, prometheus.CounterValue, float64(c.sent.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pending, failed, err := store.Backlog(ctx, c.db)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.emails, prometheus.GaugeValue, float64(pending), store.StatusPending)
	ch <- prometheus.MustNewConstMetric(c.emails, prometheus.GaugeValue, float64(failed), store.StatusFailed)
}
