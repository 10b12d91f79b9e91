// Package envelope carries an event's identity and lineage in Kafka record headers, following the
// CloudEvents Kafka protocol binding (binary content mode) plus two extensions that let a chain of
// events be followed: ce_correlationid (one business operation) and ce_causationid (the event that
// caused this one).
package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of the CloudEvents Kafka binding and choreo's extensions.
const (
	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderType          = "ce_type"
	HeaderSource        = "ce_source"
	HeaderTime          = "ce_time"
	HeaderCorrelationID = "ce_correlationid"
	HeaderCausationID   = "ce_causationid"
	// HeaderChainTime is when the chain began: the ce_time of its first event, carried along so
	// that the latency of an effect at the end of a chain can be measured from its start.
	HeaderChainTime   = "ce_chaintime"
	HeaderContentType = "content-type"
)

// SpecVersion is the CloudEvents version choreo writes.
const SpecVersion = "1.0"

// ContentType is the content type of choreo's record values: Avro binary in the Confluent
// wire format (magic byte and schema ID first).
const ContentType = "application/avro"

// ErrMalformed is returned when headers are present but unusable: a header given twice with
// different values, a ce_time that is not RFC 3339, an unsupported spec version.
var ErrMalformed = errors.New("malformed event headers")

// namespace scopes choreo's name-based (UUIDv5) identifiers.
var namespace = uuid.MustParse("6f1c1b8e-5c8e-4b7e-9a59-0c3b3e0f2a11")

// Envelope is an event's metadata.
type Envelope struct {
	ID            string
	Type          string
	Source        string
	Time          time.Time
	CorrelationID string
	CausationID   string
	ContentType   string
	// ChainTime is the time of the chain's first event; zero on that first event itself.
	ChainTime time.Time
}

// ChainStart returns when e's chain began: ChainTime, or e's own Time for a chain's first event.
func (e Envelope) ChainStart() time.Time {
	if !e.ChainTime.IsZero() {
		return e.ChainTime
	}
	return e.Time
}

// NewID returns a new random event ID for an event that starts a chain.
func NewID() string { return uuid.NewString() }

// DeriveID returns the ID of the event of type typ that the event causeID causes, distinguished
// by discriminator where one cause leads to several events of one type. Deterministic so that
// reprocessing a cause re-emits the same fact, which downstream deduplicates, never a new one.
func DeriveID(causeID, typ, discriminator string) string {
	return uuid.NewSHA1(namespace, []byte(causeID+"\x00"+typ+"\x00"+discriminator)).String()
}

// DeriveUUID returns a stable UUID for name within scope, e.g. the user ID of an account.
func DeriveUUID(scope, name string) string {
	return uuid.NewSHA1(namespace, []byte(scope+"\x00"+name)).String()
}

// RecordID is the identity of a record that carries no ce_id (say, published by hand with kcat):
// its position in the log, which is unique and stable across redeliveries.
func RecordID(topic string, partition int32, offset int64) string {
	return DeriveUUID("record", topic+"/"+strconv.Itoa(int(partition))+"@"+strconv.FormatInt(offset, 10))
}

// Caused returns the envelope of an event of type typ caused by e: same correlation, causation
// pointing at e, and an ID derived from e's.
func (e Envelope) Caused(typ, source, discriminator string, now time.Time) Envelope {
	corr := e.CorrelationID
	if corr == "" {
		corr = e.ID
	}
	return Envelope{
		ID:            DeriveID(e.ID, typ, discriminator),
		Type:          typ,
		Source:        source,
		Time:          now.UTC(),
		CorrelationID: corr,
		CausationID:   e.ID,
		ContentType:   ContentType,
		ChainTime:     e.ChainStart().UTC(),
	}
}

// AppendHeaders appends e's headers to hs.
func (e Envelope) AppendHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	add := func(k, v string) {
		if v != "" {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	addTime := func(k string, t time.Time) {
		if !t.IsZero() { // formatted straight into the header's bytes: no string in between
			hs = append(hs, kgo.RecordHeader{Key: k, Value: t.UTC().AppendFormat(make([]byte, 0, len(time.RFC3339Nano)), time.RFC3339Nano)})
		}
	}
	add(HeaderSpecVersion, SpecVersion)
	add(HeaderID, e.ID)
	add(HeaderType, e.Type)
	add(HeaderSource, e.Source)
	addTime(HeaderTime, e.Time)
	add(HeaderCorrelationID, e.CorrelationID)
	add(HeaderCausationID, e.CausationID)
	addTime(HeaderChainTime, e.ChainTime)
	ct := e.ContentType
	if ct == "" {
		ct = ContentType
	}
	add(HeaderContentType, ct)
	return hs
}

// FromHeaders reads the envelope from record headers. Absent headers leave their field empty:
// the consumer fills ID and Type from the record's position and schema. Headers that are present
// but contradict each other or do not parse are an error wrapping ErrMalformed.
func FromHeaders(hs []kgo.RecordHeader) (Envelope, error) {
	var (
		e Envelope
		// The value of each envelope header met so far, by slot: an array, not a map, as this
		// runs for every record consumed.
		seen [9]struct {
			v  []byte
			ok bool
		}
	)
	for _, h := range hs {
		var (
			dst  *string
			slot int
		)
		switch h.Key {
		case HeaderID:
			dst, slot = &e.ID, 0
		case HeaderType:
			dst, slot = &e.Type, 1
		case HeaderSource:
			dst, slot = &e.Source, 2
		case HeaderCorrelationID:
			dst, slot = &e.CorrelationID, 3
		case HeaderCausationID:
			dst, slot = &e.CausationID, 4
		case HeaderContentType:
			dst, slot = &e.ContentType, 5
		case HeaderSpecVersion:
			slot = 6
		case HeaderTime:
			slot = 7
		case HeaderChainTime:
			slot = 8
		default:
			continue
		}
		if prev := &seen[slot]; prev.ok {
			if !bytes.Equal(prev.v, h.Value) {
				return e, fmt.Errorf("header %s given twice (%q, %q): %w", h.Key, prev.v, h.Value, ErrMalformed)
			}
			continue // the same value again: already taken
		}
		seen[slot].v, seen[slot].ok = h.Value, true
		if h.Key == HeaderSpecVersion {
			if string(h.Value) != SpecVersion { // compared without a copy
				return e, fmt.Errorf("header %s=%q, want %q: %w", h.Key, h.Value, SpecVersion, ErrMalformed)
			}
			continue
		}
		v := string(h.Value)
		switch h.Key {
		case HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return e, fmt.Errorf("header %s=%q is not RFC 3339: %w", h.Key, v, ErrMalformed)
			}
			e.Time = t
		case HeaderChainTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return e, fmt.Errorf("header %s=%q is not RFC 3339: %w", h.Key, v, ErrMalformed)
			}
			e.ChainTime = t
		default:
			*dst = v
		}
	}
	if e.ID != "" && len(e.ID) > 256 {
		return e, fmt.Errorf("header %s is %d bytes, at most 256: %w", HeaderID, len(e.ID), ErrMalformed)
	}
	return e, nil
}

// FromHeadersLenient reads what it can of the envelope of headers that FromHeaders refuses, for
// showing a malformed record rather than processing it: the first value of each header counts,
// and a time that does not parse is left zero.
func FromHeadersLenient(hs []kgo.RecordHeader) Envelope {
	var e Envelope
	set := func(dst *string, v []byte) {
		if *dst == "" {
			*dst = string(v)
		}
	}
	setTime := func(dst *time.Time, v []byte) {
		if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil && dst.IsZero() {
			*dst = t
		}
	}
	for _, h := range hs {
		switch h.Key {
		case HeaderID:
			set(&e.ID, h.Value)
		case HeaderType:
			set(&e.Type, h.Value)
		case HeaderSource:
			set(&e.Source, h.Value)
		case HeaderCorrelationID:
			set(&e.CorrelationID, h.Value)
		case HeaderCausationID:
			set(&e.CausationID, h.Value)
		case HeaderContentType:
			set(&e.ContentType, h.Value)
		case HeaderTime:
			setTime(&e.Time, h.Value)
		case HeaderChainTime:
			setTime(&e.ChainTime, h.Value)
		}
	}
	return e
}
