package dlq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
)

// headerPrefix is what every header the runner adds to a parked record starts with.
const headerPrefix = "choreo_dlq_"

// ErrNotParked is returned for a record on a dead-letter topic that the consumer runner did not
// park: it lacks the choreo_dlq_topic header, so there is nowhere to replay it to.
var ErrNotParked = errors.New("not a parked record (no " + consumer.HeaderDLQTopic + " header)")

// Position is where a record sits on the dead-letter topic.
type Position struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// String returns "<partition>/<offset>", the key of the position's replay marker.
func (p Position) String() string {
	return strconv.Itoa(int(p.Partition)) + "/" + strconv.FormatInt(p.Offset, 10)
}

// ParsePosition parses what String returns.
func ParsePosition(s string) (Position, error) {
	ps, offs, ok := strings.Cut(s, "/")
	p, perr := strconv.ParseInt(ps, 10, 32)
	o, oerr := strconv.ParseInt(offs, 10, 64)
	if !ok || perr != nil || oerr != nil || p < 0 || o < 0 {
		return Position{}, fmt.Errorf("dlq: position %q is not <partition>/<offset>", s)
	}
	return Position{Partition: int32(p), Offset: o}, nil
}

// Parked is a record on a dead-letter topic with what the runner's choreo_dlq_* headers say
// about it. Headers that are missing or do not parse leave their field zero.
type Parked struct {
	Position
	Key             string    `json:"key"`
	SourceTopic     string    `json:"sourceTopic"`
	SourcePartition int32     `json:"sourcePartition"`
	SourceOffset    int64     `json:"sourceOffset"`
	Group           string    `json:"group,omitempty"`
	Handler         string    `json:"handler,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Class           string    `json:"class,omitempty"`
	Error           string    `json:"error,omitempty"`
	Attempts        int       `json:"attempts,omitempty"`
	Time            time.Time `json:"time,omitzero"`
	FirstFailure    time.Time `json:"firstFailure,omitzero"`
	LastFailure     time.Time `json:"lastFailure,omitzero"`
	// Type is the ce_type header; empty for a record published without one (decode the value).
	Type string `json:"type,omitempty"`
	// ID is the event's identity as the consumer saw it: the ce_id header or, for a record
	// without one, the record's position on its source topic (envelope.RecordID).
	ID string `json:"id,omitempty"`
	// Record is the parked record itself, all headers included.
	Record *kgo.Record `json:"-"`
}

// Parse reads a record of a dead-letter topic.
func Parse(rec *kgo.Record) Parked {
	p := Parked{Position: Position{rec.Partition, rec.Offset}, Key: string(rec.Key), Record: rec}
	var srcPartition, srcOffset string
	parseTime := func(v string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, v)
		return t
	}
	for _, h := range rec.Headers {
		v := string(h.Value)
		switch h.Key {
		case consumer.HeaderDLQTopic:
			p.SourceTopic = v
		case consumer.HeaderDLQPartition:
			srcPartition = v
		case consumer.HeaderDLQOffset:
			srcOffset = v
		case consumer.HeaderDLQGroup:
			p.Group = v
		case consumer.HeaderDLQHandler:
			p.Handler = v
		case consumer.HeaderDLQReason:
			p.Reason = v
		case consumer.HeaderDLQClass:
			p.Class = v
		case consumer.HeaderDLQError:
			p.Error = v
		case consumer.HeaderDLQAttempts:
			p.Attempts, _ = strconv.Atoi(v)
		case consumer.HeaderDLQTime:
			p.Time = parseTime(v)
		case consumer.HeaderDLQFirstFailure:
			p.FirstFailure = parseTime(v)
		case consumer.HeaderDLQLastFailure:
			p.LastFailure = parseTime(v)
		case envelope.HeaderType:
			p.Type = v
		case envelope.HeaderID:
			p.ID = v
		}
	}
	if n, err := strconv.ParseInt(srcPartition, 10, 32); err == nil {
		p.SourcePartition = int32(n)
	}
	if n, err := strconv.ParseInt(srcOffset, 10, 64); err == nil {
		p.SourceOffset = n
	}
	if p.ID == "" && p.SourceTopic != "" && srcPartition != "" && srcOffset != "" {
		p.ID = envelope.RecordID(p.SourceTopic, p.SourcePartition, p.SourceOffset)
	}
	return p
}

// ReplayRecord returns the record that re-publishes p: on its source topic, with its original
// key, value and headers, every choreo_dlq_* header removed. A record that came without a ce_id
// gets one: the ID the consumer derived from its original position, which a re-publication at
// a new position would otherwise change, so that the consumer's inbox still recognises it.
func (p Parked) ReplayRecord() (*kgo.Record, error) {
	if p.SourceTopic == "" {
		return nil, fmt.Errorf("dlq record %s: %w", p.Position, ErrNotParked)
	}
	hs := make([]kgo.RecordHeader, 0, len(p.Record.Headers))
	hasID := false
	for _, h := range p.Record.Headers {
		if strings.HasPrefix(h.Key, headerPrefix) {
			continue
		}
		hasID = hasID || h.Key == envelope.HeaderID
		hs = append(hs, h)
	}
	if !hasID && p.ID != "" {
		hs = append(hs, kgo.RecordHeader{Key: envelope.HeaderID, Value: []byte(p.ID)})
	}
	return &kgo.Record{Topic: p.SourceTopic, Key: p.Record.Key, Value: p.Record.Value, Headers: hs}, nil
}
