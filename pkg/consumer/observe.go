package consumer

import (
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// Outcome is what became of a consumed record.
type Outcome string

// Outcomes of a record, as Stats counts them and metrics label them.
const (
	OutcomeHandled   Outcome = "handled"   // applied by its handler
	OutcomeDuplicate Outcome = "duplicate" // already in the inbox: acknowledged without effect
	OutcomeParked    Outcome = "parked"    // sent to the dead-letter topic
	OutcomeRetried   Outcome = "retried"   // its handler failed transiently; it is tried again
	OutcomeIgnored   Outcome = "ignored"   // no handler of the group consumes its event
)

// Observation is one record's outcome, reported once it is final: after the transaction that
// applied (or parked, or acknowledged) the record committed, or when a retry is decided.
type Observation struct {
	// Handler that the record went to; "" for records parked before one was chosen (undecodable)
	// and ignored ones.
	Handler string
	Outcome Outcome
	// Took is how long the handler ran; zero when no handler ran.
	Took time.Duration
	// EventTime is the event's ce_time; zero when the record could not be decoded.
	EventTime time.Time
	// ChainTime is when the chain the event belongs to began (ce_chaintime, else ce_time).
	ChainTime time.Time
}

// Observer receives observations, from the partitions' workers concurrently. It must not block.
type Observer func(Observation)

// Observe adds fn to the observers of every record's outcome, for metrics. Default none.
func Observe(fn Observer) Opt { return func(o *options) { o.observers = append(o.observers, fn) } }

// Tracing makes the runner process each record in a consumer span, a child of the producer span
// in the record's traceparent header; the handler's context carries it, so what the handler emits
// continues the trace. Default nil: no spans.
func Tracing(t *telemetry.Tracer) Opt { return func(o *options) { o.tracer = t } }

// note is one record's result within a transaction, reported only once the transaction commits.
type note struct {
	result
	eventTime time.Time
	chainTime time.Time
	span      trace.Span // nil when tracing is off
}

// report counts and reports the outcomes of a committed transaction and ends their spans.
func (r *Runner) report(notes []note) {
	for i := range notes {
		n := &notes[i]
		if n.span != nil {
			r.endSpan(n, string(n.outcome))
		}
		if n.outcome == outcomeFailed {
			continue // counted when it is retried or parked
		}
		r.metrics.add(n.handler, func(s *Stats) {
			switch n.outcome {
			case OutcomeHandled:
				s.Handled++
			case OutcomeDuplicate:
				s.Duplicates++
			case OutcomeParked:
				s.Parked++
			case OutcomeIgnored:
				s.Ignored++
			}
		})
		r.observe(Observation{Handler: n.handler, Outcome: n.outcome, Took: n.took, EventTime: n.eventTime, ChainTime: n.chainTime})
	}
}

// abandon ends the spans of a transaction that rolled back: nothing of it happened.
func (r *Runner) abandon(notes []note) {
	for i := range notes {
		if n := &notes[i]; n.span != nil {
			r.endSpan(n, "rolled_back")
		}
	}
}

func (r *Runner) endSpan(n *note, outcome string) {
	if n.handler != "" {
		n.span.SetAttributes(telemetry.AttrHandler.String(n.handler))
	}
	n.span.SetAttributes(telemetry.AttrOutcome.String(outcome))
	if n.outcome == OutcomeDuplicate {
		n.span.SetAttributes(telemetry.AttrDuplicate.Bool(true))
	}
	telemetry.End(n.span, n.err)
}

func (r *Runner) observe(o Observation) {
	for _, fn := range r.opts.observers {
		fn(o)
	}
}

// membership follows the runner's place in its group, for readiness.
type membership struct {
	mu         sync.Mutex
	joined     bool
	partitions map[topicPartition]bool
	// lostGen is the group generation at the last loss of partitions: until the client reports
	// a later one (it rejoined), the generation does not count as membership.
	lostGen int32
}

func (m *membership) assign(tps map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.joined = true
	if m.partitions == nil {
		m.partitions = make(map[topicPartition]bool)
	}
	for t, ps := range tps {
		for _, p := range ps {
			m.partitions[topicPartition{t, p}] = true
		}
	}
}

// lose drops lost partitions and the membership with them: partitions are lost when the
// member was fenced or its session expired, so it is no longer in the group until it rejoins.
// A revoke (even of every partition) is an ordinary rebalance and keeps the membership.
func (m *membership) lose(tps map[string][]int32, gen int32) {
	m.remove(tps)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.joined, m.lostGen = false, gen
}

// state reports the membership, given the generation the client reports now.
func (m *membership) state(gen int32) (joined bool, partitions int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A classic member is given its generation when the join completes, and may own nothing.
	return m.joined || (gen > 0 && gen > m.lostGen), len(m.partitions)
}

func (m *membership) remove(tps map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, ps := range tps {
		for _, p := range ps {
			delete(m.partitions, topicPartition{t, p})
		}
	}
}

// Membership reports whether the runner has joined its group, and how many partitions it owns.
// Owning none is legitimate: a group with more members than partitions leaves some idle.
// A member whose partitions were lost (fenced, session expired) has not joined until it rejoins.
func (r *Runner) Membership() (joined bool, partitions int) {
	_, gen := r.client.GroupMetadata()
	return r.member.state(gen)
}
