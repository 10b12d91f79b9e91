package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// chain is one AccountCreated ready to publish and the address its welcome email goes to.
type chain struct {
	email string
	rec   *kgo.Record
}

// chains encodes n AccountCreated of phase, each with its own account, username and address.
func chains(cd *codec.Codec, system, phase string, n int) ([]chain, error) {
	out := make([]chain, n)
	for i := range out {
		id := envelope.NewID()
		email := fmt.Sprintf("%s-%s-%d@bench.example", system, phase, i)
		rec, err := cd.Record(envelope.Envelope{
			ID: id, Type: "AccountCreated", Source: "/choreo-bench", Time: time.Now().UTC(), CorrelationID: id,
		}, &event.AccountCreated{
			AccountID: id, Username: fmt.Sprintf("%s_%s_%d", system, phase, i), Email: email,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Locale: "en",
		})
		if err != nil {
			return nil, fmt.Errorf("encode AccountCreated: %w", err)
		}
		out[i] = chain{email: email, rec: rec}
	}
	return out, nil
}

// tracker matches accepted emails to the chains published, by recipient address.
type tracker struct {
	mu        sync.Mutex
	pending   map[string]time.Time
	latencies []time.Duration
	first     time.Time // first and last email of the phase
	last      time.Time
	extra     int // emails to no pending address: duplicates, or another phase's
	done      chan struct{}
}

func newTracker() *tracker { return &tracker{pending: map[string]time.Time{}} }

// begin starts a phase of n chains; done closes when all n have their email.
func (t *tracker) begin(n int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.pending)
	t.latencies = make([]time.Duration, 0, n)
	t.first, t.last, t.extra = time.Time{}, time.Time{}, 0
	t.done = make(chan struct{})
	return t.done
}

func (t *tracker) published(email string, at time.Time) {
	t.mu.Lock()
	t.pending[email] = at
	t.mu.Unlock()
}

// deliver is the SMTP sink's callback.
func (t *tracker) deliver(to []string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, addr := range to {
		sent, ok := t.pending[addr]
		if !ok {
			t.extra++
			continue
		}
		delete(t.pending, addr)
		t.latencies = append(t.latencies, at.Sub(sent))
		if t.first.IsZero() {
			t.first = at
		}
		t.last = at
		if len(t.pending) == 0 && t.done != nil && len(t.latencies) == cap(t.latencies) {
			close(t.done)
			t.done = nil
		}
	}
}

// phaseResult is what one phase measured.
type phaseResult struct {
	n, got, extra int
	start         time.Time // first publication
	published     time.Time // last publication
	first, last   time.Time // first and last email
	latencies     []time.Duration
}

func (r phaseResult) complete() bool { return r.got == r.n }

// chainsPerSec is n over the time from the first publication to the last email.
func (r phaseResult) chainsPerSec() float64 {
	if r.got == 0 {
		return 0
	}
	return float64(r.got) / r.last.Sub(r.start).Seconds()
}

// emailsPerSec is the emails' own rate, from the first to the last.
func (r phaseResult) emailsPerSec() float64 {
	if r.got < 2 {
		return 0
	}
	return float64(r.got-1) / r.last.Sub(r.first).Seconds()
}

func (r phaseResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// run publishes cs, all at once when rate is 0 and rate per second otherwise, and waits until
// every chain's email is accepted or drain has passed since the last publication.
func (t *tracker) run(ctx context.Context, cl *kgo.Client, cs []chain, rate int, drain time.Duration) (phaseResult, error) {
	done := t.begin(len(cs))
	var (
		errMu   sync.Mutex
		prodErr error
	)
	onAck := func(_ *kgo.Record, err error) {
		if err != nil {
			errMu.Lock()
			prodErr = err
			errMu.Unlock()
		}
	}
	res := phaseResult{n: len(cs), start: time.Now()}
	for i, c := range cs {
		if rate > 0 {
			due := res.start.Add(time.Duration(i) * time.Second / time.Duration(rate))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		now := time.Now()
		stamp(c.rec, now)
		t.published(c.email, now)
		cl.Produce(ctx, c.rec, onAck)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	res.published = time.Now()
	select {
	case <-done:
	case <-time.After(drain):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	res.got, res.extra = len(t.latencies), t.extra
	res.first, res.last, res.latencies = t.first, t.last, slices.Clone(t.latencies)
	if !res.complete() {
		missing := make([]string, 0, 3)
		for a := range t.pending {
			if missing = append(missing, a); len(missing) == 3 {
				break
			}
		}
		errMu.Lock()
		defer errMu.Unlock()
		return res, fmt.Errorf("%d of %d emails within %s of the last publication (missing e.g. %s; last produce error: %v)",
			res.got, res.n, drain, strings.Join(missing, ", "), prodErr)
	}
	return res, nil
}

// stamp sets rec's ce_time to at, the moment it is published: the records are encoded before a
// phase begins, and the services measure an event's age, and a chain's latency, from it.
func stamp(rec *kgo.Record, at time.Time) {
	for i, h := range rec.Headers {
		if h.Key == envelope.HeaderTime {
			rec.Headers[i].Value = at.UTC().AppendFormat(h.Value[:0], time.RFC3339Nano)
		}
	}
}
