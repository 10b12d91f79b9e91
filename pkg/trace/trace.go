// Package trace follows one business operation through Kafka. In a choreography an operation is
// a chain of events emitted by different services; the catalog documents the chains as intended,
// a trace shows the chain an operation really took: the events that share its correlation ID
// (ce_correlationid), linked into a tree of what caused what (ce_causationid -> ce_id), with the
// records that consumer groups parked on their dead-letter topics as leaves, and compared with
// the catalog (Compare, Check).
package trace

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/avrojson"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
)

// ErrNotFound is returned when no record on the topics read carries the ID asked for, as its
// ce_id or its ce_correlationid.
var ErrNotFound = errors.New("no event with that ID")

// Trace is one operation as observed in Kafka: its events as a tree by causation.
type Trace struct {
	// CorrelationID identifies the operation: the ce_correlationid of its events, which is the
	// ce_id of its first event.
	CorrelationID string `json:"correlationId"`
	// Roots are the events without a cause in the trace, earliest first. An operation has one
	// root, its first event; more mean that causes are missing (see Check).
	Roots []*Node `json:"roots"`
	// Topics are the topics that were read, MissingTopics those asked for that do not exist
	// (set by Collect and FindByID).
	Topics        []string `json:"topics,omitempty"`
	MissingTopics []string `json:"missingTopics,omitempty"`
	// EffectsAsOf names the services asked for the operation's effects and when (set by
	// AttachEffects); Unplaced holds effects whose causing event is not in the trace.
	EffectsAsOf map[string]time.Time `json:"effectsAsOf,omitempty"`
	Unplaced    []Effect             `json:"unplacedEffects,omitempty"`
}

// Node is one event of a trace or, when Parked is set, one record a consumer group parked on its
// dead-letter topic. A parked record is a leaf under the event it is a copy of (same ce_id).
type Node struct {
	// Type is the event's name (ce_type, or its schema's record name).
	Type string `json:"type"`
	// ID is the ce_id; for a record published without one, the ID the consumers give it
	// (envelope.RecordID of its position).
	ID            string `json:"id"`
	Source        string `json:"source,omitempty"` // ce_source: "/" and the producing service
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	// Topic, Partition and Offset are where the record is: for a parked record, on the
	// dead-letter topic (Parked says where it came from).
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Time      time.Time `json:"time"` // ce_time, or the record's timestamp
	Key       string    `json:"key"`
	// Event is the decoded event in Avro's JSON encoding (what choreo encode takes); empty when
	// it could not be decoded (DecodeError).
	Event       json.RawMessage `json:"event,omitempty"`
	DecodeError string          `json:"decodeError,omitempty"`
	// Copies counts the further records of the same event (same ce_id) on the topics: an
	// at-least-once republication or a replay, which the consumers deduplicate.
	Copies   int     `json:"copies,omitempty"`
	Parked   *Parked `json:"parked,omitempty"`
	Children []*Node `json:"children,omitempty"`
	// Effects are what services did outside Kafka because of this event (AttachEffects).
	Effects []Effect `json:"effects,omitempty"`
}

// Parked is what a consumer group's runner wrote on a record it parked (choreo_dlq_* headers).
type Parked struct {
	Group    string    `json:"group"`
	Handler  string    `json:"handler,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Class    string    `json:"class,omitempty"`
	Error    string    `json:"error,omitempty"` // choreo_dlq_error
	Attempts int       `json:"attempts,omitempty"`
	At       time.Time `json:"at,omitzero"` // when it was parked
	// SourceTopic, SourcePartition and SourceOffset are where the record was consumed from.
	SourceTopic     string `json:"sourceTopic,omitempty"`
	SourcePartition int32  `json:"sourcePartition"`
	SourceOffset    int64  `json:"sourceOffset"`
	// HandledLater is set when the parking group's service emitted an event caused by the parked
	// one after all (the record was replayed, say): the chain went on.
	HandledLater bool `json:"handledLater,omitempty"`
}

// Service returns the producing service named by the ce_source: "user-service" for
// "/user-service".
func (n *Node) Service() string { return strings.TrimPrefix(n.Source, "/") }

// When is when the node happened: the event's time, or when it was parked.
func (n *Node) When() time.Time {
	if n.Parked != nil && !n.Parked.At.IsZero() {
		return n.Parked.At
	}
	return n.Time
}

// Root returns the first root, or nil for an empty trace.
func (t *Trace) Root() *Node {
	if len(t.Roots) == 0 {
		return nil
	}
	return t.Roots[0]
}

// Events returns every node of the trace, parked records included, parents before their
// children and siblings in time order.
func (t *Trace) Events() []*Node {
	var out []*Node
	var walk func([]*Node)
	walk = func(ns []*Node) {
		for _, n := range ns {
			out = append(out, n)
			walk(n.Children)
		}
	}
	walk(t.Roots)
	return out
}

// Event returns the event (not a parked record) with the given ce_id.
func (t *Trace) Event(id string) (*Node, bool) {
	for _, n := range t.Events() {
		if n.Parked == nil && n.ID == id {
			return n, true
		}
	}
	return nil, false
}

// identity reads a record's event ID and correlation ID from its headers without decoding it.
// A record without a ce_id gets the ID the consumers give it: its position, on its source topic
// for a parked record.
func identity(rec *kgo.Record) (id, corr string) {
	env := envelope.FromHeadersLenient(rec.Headers)
	switch {
	case env.ID != "":
		return env.ID, env.CorrelationID
	case deadletter.IsParked(rec):
		return deadletter.Parse(rec).ID, env.CorrelationID
	}
	return envelope.RecordID(rec.Topic, rec.Partition, rec.Offset), env.CorrelationID
}

// belongs reports whether an event is part of operation correlationID: it carries that
// correlation ID or, as the first event of a chain published without one, is that event.
func belongs(id, corr, correlationID string) bool {
	return corr == correlationID || corr == "" && id == correlationID
}

// FromRecords builds the trace of operation correlationID from records of event topics and
// dead-letter topics (records of other operations are left out). c decodes the events; with a
// nil c, or for a record that does not decode, a node carries what the headers say and the
// error in DecodeError. Records are never rejected: a trace is for looking at what went wrong.
func FromRecords(ctx context.Context, c *codec.Codec, correlationID string, recs []*kgo.Record) *Trace {
	var nodes []*Node
	for _, rec := range recs {
		if id, corr := identity(rec); !belongs(id, corr, correlationID) {
			continue
		}
		nodes = append(nodes, newNode(ctx, c, rec))
	}
	return build(correlationID, nodes)
}

func newNode(ctx context.Context, c *codec.Codec, rec *kgo.Record) *Node {
	n := &Node{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: string(rec.Key),
		Time: rec.Timestamp.UTC(),
	}
	env, err := envelope.FromHeaders(rec.Headers)
	if err != nil {
		n.DecodeError = err.Error()
		env = envelope.FromHeadersLenient(rec.Headers)
	}
	if deadletter.IsParked(rec) {
		p := deadletter.Parse(rec)
		n.Parked = &Parked{
			Group: p.Group, Handler: p.Handler, Reason: p.Reason, Class: p.Class, Error: p.Error,
			Attempts: p.Attempts, At: p.Time.UTC(),
			SourceTopic: p.SourceTopic, SourcePartition: p.SourcePartition, SourceOffset: p.SourceOffset,
		}
		if env.ID == "" {
			env.ID = p.ID
		}
		if c != nil && n.DecodeError == "" {
			// The value is the event as it arrived on its source topic: decode it alone, the
			// topic check of DecodeRecord would fail on the dead-letter topic.
			if len(rec.Value) == 0 {
				n.DecodeError = codec.ErrEmptyValue.Error()
			} else if ev, t, err := c.Unmarshal(ctx, rec.Value); err != nil {
				n.DecodeError = err.Error()
			} else {
				env.Type = cmp.Or(env.Type, t.Name)
				n.Event, _ = avrojson.Marshal(t.Schema, ev)
			}
		}
	} else if c != nil && n.DecodeError == "" {
		if d, err := c.DecodeRecord(ctx, rec); err != nil {
			n.DecodeError = err.Error()
		} else {
			env = d.Envelope
			n.Event, _ = avrojson.Marshal(d.Type.Schema, d.Event)
		}
	}
	if env.ID == "" && n.Parked == nil {
		env.ID = envelope.RecordID(rec.Topic, rec.Partition, rec.Offset)
	}
	n.Type, n.ID, n.Source = env.Type, env.ID, env.Source
	n.CorrelationID, n.CausationID = env.CorrelationID, env.CausationID
	if !env.Time.IsZero() {
		n.Time = env.Time.UTC()
	}
	return n
}

// byTime orders nodes by when they happened, then by where they are in the log.
func byTime(a, b *Node) int {
	return cmp.Or(a.When().Compare(b.When()), strings.Compare(a.Topic, b.Topic),
		cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// build links nodes into a tree: an event under the event its ce_causationid names, a parked
// record under the event it is a copy of. Events without a cause in the set are roots; a cycle
// of causes (which only a broken producer makes) is broken at its earliest event.
func build(correlationID string, nodes []*Node) *Trace {
	// In time order, so that of several copies of one event the first is kept.
	slices.SortStableFunc(nodes, byTime)
	byID := make(map[string]*Node)
	var events, parked []*Node
	for _, n := range nodes {
		switch {
		case n.Parked != nil:
			parked = append(parked, n)
		case byID[n.ID] != nil:
			byID[n.ID].Copies++
		default:
			byID[n.ID] = n
			events = append(events, n)
		}
	}
	parent := make(map[*Node]*Node)
	for _, n := range events {
		if p := byID[n.CausationID]; p != nil && p != n {
			parent[n] = p
		}
	}
	for _, n := range parked {
		if p := byID[n.ID]; p != nil {
			parent[n] = p
		} else if p := byID[n.CausationID]; p != nil {
			parent[n] = p
		}
	}
	// Break cycles of causes, each at its earliest event, which becomes a root.
	index := make(map[*Node]int, len(events))
	for i, n := range events {
		index[n] = i
	}
	for _, n := range events {
		for {
			seen := map[*Node]bool{}
			m := n
			for m != nil && !seen[m] {
				seen[m] = true
				m = parent[m]
			}
			if m == nil {
				break
			}
			first := m // m is on a cycle
			for x := parent[m]; x != m; x = parent[x] {
				if index[x] < index[first] {
					first = x
				}
			}
			delete(parent, first)
		}
	}
	t := &Trace{CorrelationID: correlationID}
	for _, n := range append(events, parked...) {
		if p := parent[n]; p != nil {
			p.Children = append(p.Children, n)
		} else {
			t.Roots = append(t.Roots, n)
		}
	}
	for _, n := range append(events, parked...) {
		slices.SortStableFunc(n.Children, byTime)
	}
	slices.SortStableFunc(t.Roots, byTime)
	for _, n := range parked {
		if p := parent[n]; p != nil && p.ID == n.ID {
			n.Parked.HandledLater = slices.ContainsFunc(p.Children, func(c *Node) bool {
				return c.Parked == nil && groupOf(n.Parked.Group, c.Service())
			})
		}
	}
	return t
}

// groupOf reports whether group is the consumer group of service: choreo names a service's
// group after it, with the namespace in front ("<ns>.user-service").
func groupOf(group, service string) bool {
	return service != "" && (group == service || strings.HasSuffix(group, "."+service))
}
