package codec

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// Errors of DecodeRecord besides Unmarshal's; all mean the record breaks the catalog's contract.
var (
	// ErrEmptyValue: the record has no value (a tombstone or an empty message).
	ErrEmptyValue = errors.New("empty record value")
	// ErrTypeMismatch: the ce_type header names another event than the value's schema.
	ErrTypeMismatch = errors.New("ce_type does not match the value's schema")
	// ErrWrongTopic: the event belongs on another topic according to the catalog.
	ErrWrongTopic = errors.New("event on the wrong topic")
)

// Decoded is a record decoded into its event and envelope.
type Decoded struct {
	Event    event.Event
	Type     *event.Type
	Envelope envelope.Envelope
}

// Record returns the Kafka record of ev with env's headers: on ev's topic, keyed by its key field.
func (c *Codec) Record(env envelope.Envelope, ev event.Event) (*kgo.Record, error) {
	t, err := c.types.Of(ev)
	if err != nil {
		return nil, err
	}
	if env.Type == "" {
		env.Type = t.Name
	}
	if env.Type != t.Name {
		return nil, fmt.Errorf("envelope type %s for a %s: %w", env.Type, t.Name, ErrTypeMismatch)
	}
	value, err := c.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic:   t.Topic,
		Key:     []byte(t.KeyOf(ev)),
		Value:   value,
		Headers: env.AppendHeaders(make([]kgo.RecordHeader, 0, 8)),
	}, nil
}

// DecodeRecord decodes rec's value and headers. A record without CloudEvents headers (published
// by hand, say) still decodes: its type comes from the schema and its ID from its position in
// the log. Errors wrap the codec's and envelope's sentinels.
func (c *Codec) DecodeRecord(ctx context.Context, rec *kgo.Record) (Decoded, error) {
	env, err := envelope.FromHeaders(rec.Headers)
	if err != nil {
		return Decoded{}, err
	}
	if len(rec.Value) == 0 {
		return Decoded{}, ErrEmptyValue
	}
	ev, t, err := c.Unmarshal(ctx, rec.Value)
	if err != nil {
		return Decoded{}, err
	}
	if env.Type == "" {
		env.Type = t.Name
	} else if env.Type != t.Name {
		return Decoded{}, fmt.Errorf("ce_type %q, schema %s: %w", env.Type, t.Name, ErrTypeMismatch)
	}
	if t.Topic != rec.Topic {
		return Decoded{}, fmt.Errorf("%s belongs on %s, found on %s: %w", t.Name, t.Topic, rec.Topic, ErrWrongTopic)
	}
	if env.ID == "" {
		env.ID = envelope.RecordID(rec.Topic, rec.Partition, rec.Offset)
	}
	if env.Time.IsZero() {
		env.Time = rec.Timestamp
	}
	return Decoded{Event: ev, Type: t, Envelope: env}, nil
}
