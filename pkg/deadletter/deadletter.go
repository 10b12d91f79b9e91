// Package deadletter owns the dead-letter record format: where a consumer group parks the records
// it cannot process ("<group>.dlq"), the choreo_dlq_* headers that say why, and building and
// parsing such records. The consumer runner writes it; dlq (inspect, replay) and trace read it.
//
// A parked record is the consumed record unchanged (key, value, headers) plus the choreo_dlq_*
// headers, so that a replay can re-publish it exactly as it first arrived.
package deadletter

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
)

// Headers added to a parked record, beside its original key, value and headers.
const (
	HeaderTopic     = "choreo_dlq_topic"     // the topic it was consumed from
	HeaderPartition = "choreo_dlq_partition" // its partition there
	HeaderOffset    = "choreo_dlq_offset"    // its offset there
	HeaderGroup     = "choreo_dlq_group"     // the consumer group that parked it
	HeaderHandler   = "choreo_dlq_handler"   // the handler that failed; absent when none saw it
	// HeaderReason says what failed: "handler", or for a record no handler saw, "decode",
	// "empty", "headers", "contract" (wrong topic or type) or "too-large".
	HeaderReason       = "choreo_dlq_reason"
	HeaderClass        = "choreo_dlq_class" // "permanent" or "transient" (retries exhausted)
	HeaderError        = "choreo_dlq_error"
	HeaderTime         = "choreo_dlq_time" // when it was parked, RFC 3339
	HeaderAttempts     = "choreo_dlq_attempts"
	HeaderFirstFailure = "choreo_dlq_first_failure"
	HeaderLastFailure  = "choreo_dlq_last_failure"
)

// headerPrefix is what every header of the format starts with.
const headerPrefix = "choreo_dlq_"

// Reasons a record is parked, the values of HeaderReason.
const (
	ReasonHandler  = "handler"   // its handler failed permanently, or past the retry policy
	ReasonDecode   = "decode"    // its value is not an event of a known schema
	ReasonEmpty    = "empty"     // it has no value
	ReasonHeaders  = "headers"   // its envelope headers are malformed
	ReasonContract = "contract"  // its event does not belong on its topic, or contradicts ce_type
	ReasonTooLarge = "too-large" // its value exceeds what the consumer accepts
)

// Classes of a failure, the values of HeaderClass.
const (
	ClassPermanent = "permanent" // retrying cannot fix it
	ClassTransient = "transient" // it might have passed, but the retries ran out
)

// ErrNotParked is returned for a record that the consumer runner did not park: it lacks the
// choreo_dlq_topic header, so there is nowhere to replay it to.
var ErrNotParked = errors.New("not a parked record (no " + HeaderTopic + " header)")

// Topic returns the dead-letter topic of a consumer group: "<group>.dlq". Every tool that looks
// for parked records (ACLs, topic creation, dlq, trace) derives the topic from the group with it.
func Topic(group string) string { return group + ".dlq" }

// Info is what the choreo_dlq_* headers say about a parked record. Parse leaves the fields of
// missing or unparsable headers zero.
type Info struct {
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
}

// Build returns the record that parks rec on topic: rec's key, value and headers, then the
// choreo_dlq_* headers of info. Source position, Type and ID are taken from rec, not info.
func Build(topic string, rec *kgo.Record, info Info) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers)+12)
	hs = append(hs, rec.Headers...)
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	stamp := func(k string, t time.Time) { add(k, t.UTC().Format(time.RFC3339Nano)) }
	add(HeaderTopic, rec.Topic)
	add(HeaderPartition, strconv.Itoa(int(rec.Partition)))
	add(HeaderOffset, strconv.FormatInt(rec.Offset, 10))
	add(HeaderGroup, info.Group)
	if info.Handler != "" {
		add(HeaderHandler, info.Handler)
	}
	add(HeaderReason, info.Reason)
	add(HeaderClass, info.Class)
	add(HeaderError, info.Error)
	stamp(HeaderTime, info.Time)
	add(HeaderAttempts, strconv.Itoa(info.Attempts))
	stamp(HeaderFirstFailure, info.FirstFailure)
	stamp(HeaderLastFailure, info.LastFailure)
	return &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: hs}
}

// IsParked reports whether rec carries the headers of a parked record.
func IsParked(rec *kgo.Record) bool {
	for _, h := range rec.Headers {
		if h.Key == HeaderTopic {
			return true
		}
	}
	return false
}

// Parse reads the choreo_dlq_* headers of a parked record, and its ce_type and ce_id.
func Parse(rec *kgo.Record) Info {
	var (
		info                    Info
		srcPartition, srcOffset string
	)
	parseTime := func(v string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, v)
		return t
	}
	for _, h := range rec.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderTopic:
			info.SourceTopic = v
		case HeaderPartition:
			srcPartition = v
		case HeaderOffset:
			srcOffset = v
		case HeaderGroup:
			info.Group = v
		case HeaderHandler:
			info.Handler = v
		case HeaderReason:
			info.Reason = v
		case HeaderClass:
			info.Class = v
		case HeaderError:
			info.Error = v
		case HeaderAttempts:
			info.Attempts, _ = strconv.Atoi(v)
		case HeaderTime:
			info.Time = parseTime(v)
		case HeaderFirstFailure:
			info.FirstFailure = parseTime(v)
		case HeaderLastFailure:
			info.LastFailure = parseTime(v)
		case envelope.HeaderType:
			info.Type = v
		case envelope.HeaderID:
			info.ID = v
		}
	}
	p, perr := strconv.ParseInt(srcPartition, 10, 32)
	if perr == nil {
		info.SourcePartition = int32(p)
	}
	o, oerr := strconv.ParseInt(srcOffset, 10, 64)
	if oerr == nil {
		info.SourceOffset = o
	}
	if info.ID == "" && info.SourceTopic != "" && perr == nil && oerr == nil {
		info.ID = envelope.RecordID(info.SourceTopic, info.SourcePartition, info.SourceOffset)
	}
	return info
}

// Original returns the record as it was consumed before rec parked it: on its source topic, with
// its key, value and headers, every choreo_dlq_* header removed. A record that came without a
// ce_id gets one: the ID the consumer derived from its original position, which a
// re-publication at a new position would otherwise change, so that the consumer's inbox still
// recognises it. It fails with ErrNotParked for a record without the choreo_dlq_topic header.
func Original(rec *kgo.Record) (*kgo.Record, error) {
	info := Parse(rec)
	if info.SourceTopic == "" {
		return nil, ErrNotParked
	}
	hs := make([]kgo.RecordHeader, 0, len(rec.Headers))
	hasID := false
	for _, h := range rec.Headers {
		if strings.HasPrefix(h.Key, headerPrefix) {
			continue
		}
		hasID = hasID || h.Key == envelope.HeaderID
		hs = append(hs, h)
	}
	if !hasID && info.ID != "" {
		hs = append(hs, kgo.RecordHeader{Key: envelope.HeaderID, Value: []byte(info.ID)})
	}
	return &kgo.Record{Topic: info.SourceTopic, Key: rec.Key, Value: rec.Value, Headers: hs}, nil
}
