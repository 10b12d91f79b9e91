package dlq

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
)

// ErrNotParked is returned for a record on a dead-letter topic that the consumer runner did not
// park: it lacks the choreo_dlq_topic header, so there is nowhere to replay it to. It is
// deadletter.ErrNotParked, which owns the format.
var ErrNotParked = deadletter.ErrNotParked

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

// Parked is a record on a dead-letter topic with what its choreo_dlq_* headers say about it
// (deadletter.Info).
type Parked struct {
	Position
	Key string `json:"key"`
	deadletter.Info
	// Record is the parked record itself, all headers included.
	Record *kgo.Record `json:"-"`
}

// Parse reads a record of a dead-letter topic.
func Parse(rec *kgo.Record) Parked {
	return Parked{Position: Position{rec.Partition, rec.Offset}, Key: string(rec.Key), Info: deadletter.Parse(rec), Record: rec}
}

// ReplayRecord returns the record that re-publishes p as it was consumed (deadletter.Original).
func (p Parked) ReplayRecord() (*kgo.Record, error) {
	rec, err := deadletter.Original(p.Record)
	if err != nil {
		return nil, fmt.Errorf("dlq record %s: %w", p.Position, err)
	}
	return rec, nil
}
