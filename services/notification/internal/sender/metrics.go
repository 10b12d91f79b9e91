package sender

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// MetricEmails is the gauge of queued emails by status (pending, sent, failed).
const MetricEmails = "choreo_emails"

// Collector reports the email queue: how many emails are pending, sent and failed.
type Collector struct {
	db   *sql.DB
	desc *prometheus.Desc
}

// NewCollector returns the email queue's collector for the service's registry.
func NewCollector(db *sql.DB, service string) *Collector {
	return &Collector{db: db, desc: prometheus.NewDesc(MetricEmails,
		"Emails in the sender's queue by status: pending (not yet accepted by the mail server), sent, failed (given up).",
		[]string{"status"}, prometheus.Labels{"service": service})}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; an unreadable database leaves the metric out.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	counts, err := store.Counts(ctx, c.db)
	if err != nil {
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
}
