package stacktest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/stack"
)

// WithSMTP points cfg's notification-service at a test SMTP server of t's own and returns it:
// every email the service sends is recorded there, a second delivery of one email included.
func WithSMTP(t testing.TB, cfg *stack.Config) *smtptest.Server {
	t.Helper()
	srv := smtptest.Start(t)
	cfg.SMTPAddr = srv.Addr()
	return srv
}

// Settled waits, up to timeout, until the stack has provably finished all the work it was
// given: every consumer group has committed offsets up to the end of each of its topics, every
// service's outbox is empty, and no email is waiting to be sent. Only then can a test assert that
// something did not happen: an effect still on its way would otherwise arrive after the check.
// The clock matters only as a deadline.
func Settled(t testing.TB, s *stack.Stack, timeout time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	Eventually(t, timeout, func() error { return unsettled(s, adm) })
}

// unsettled returns what work the stack has not finished, or nil.
func unsettled(s *stack.Stack, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, name := range stack.Services() {
		svc := s.Service(name)
		if svc == nil {
			return fmt.Errorf("%s is not running", name)
		}
		var n int
		if err := svc.DB.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			return fmt.Errorf("%s outbox: %w", name, err)
		}
		if n > 0 {
			errs = append(errs, fmt.Errorf("%s: %d records in the outbox", name, n))
		}
		r := svc.Runner()
		if r == nil {
			continue
		}
		ends, err := adm.ListEndOffsets(ctx, r.Topics()...)
		if err != nil {
			return fmt.Errorf("%s end offsets: %w", name, err)
		}
		committed, err := adm.FetchOffsets(ctx, r.Group())
		if err != nil {
			return fmt.Errorf("%s committed offsets: %w", name, err)
		}
		var behind []string
		ends.Each(func(e kadm.ListedOffset) {
			if e.Err != nil {
				behind = append(behind, fmt.Sprintf("%s/%d: %v", e.Topic, e.Partition, e.Err))
				return
			}
			if e.Offset == 0 {
				return
			}
			c, ok := committed.Lookup(e.Topic, e.Partition)
			if !ok || c.Err != nil || c.At < e.Offset {
				behind = append(behind, fmt.Sprintf("%s/%d committed %d of %d", e.Topic, e.Partition, c.At, e.Offset))
			}
		})
		if len(behind) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", r.Group(), strings.Join(behind, ", ")))
		}
	}
	var pending int
	if err := s.Service("notification-service").DB.QueryRowContext(ctx,
		`SELECT count(*) FROM notifications WHERE status = 'pending'`).Scan(&pending); err != nil {
		return fmt.Errorf("pending emails: %w", err)
	}
	if pending > 0 {
		errs = append(errs, fmt.Errorf("%d emails not sent yet", pending))
	}
	return errors.Join(errs...)
}

// Deliveries checks what srv received against what was expected: exactly one email to each
// address of want and none to any other address. It returns one line per departure, naming the
// Message-ID of each second delivery.
func Deliveries(srv *smtptest.Server, want ...string) []string {
	got := srv.ByRecipient()
	var bad []string
	wanted := map[string]bool{}
	for _, to := range want {
		wanted[to] = true
		switch ms := got[to]; len(ms) {
		case 1:
		case 0:
			bad = append(bad, "no email delivered to "+to)
		default:
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.MessageID()
			}
			bad = append(bad, fmt.Sprintf("%d emails delivered to %s, Message-IDs %v", len(ms), to, ids))
		}
	}
	for to, ms := range got {
		if !wanted[to] {
			bad = append(bad, fmt.Sprintf("%d unexpected emails delivered to %s", len(ms), to))
		}
	}
	return bad
}
