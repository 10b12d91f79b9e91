package sender_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/choreo-dev/choreo/services/notification/internal/sender"
)

func TestCollectorReportsTheBacklogAndCountsSends(t *testing.T) {
	t.Parallel()
	db, shared := database(t)
	queue(t, db, 4) // emails 0..3
	m := &fakeMailer{fail: []error{errors.New("550 no such user")}}
	c, sent := sender.NewCollector(db, "notification-service"), sender.NewSentCounter("notification-service")
	opts := []sender.Opt{sender.Delivered(func(string, time.Time) { sent.Inc() })}
	if shared {
		opts = append(opts, sender.Shared())
	}
	s := sender.New(db, m, opts...)
	if err := s.SendPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	queueRange(t, db, 4, 2, 0) // two more, still pending
	want := `
# HELP choreo_emails Emails in the sender's queue by status: pending (not yet accepted by the mail server), failed (given up).
# TYPE choreo_emails gauge
choreo_emails{service="notification-service",status="failed"} 1
choreo_emails{service="notification-service",status="pending"} 2
# HELP choreo_emails_sent_total Emails the mail server accepted, sent by this process.
# TYPE choreo_emails_sent_total counter
choreo_emails_sent_total{service="notification-service"} 3
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c, sent)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
