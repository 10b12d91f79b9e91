// Package codec encodes and decodes choreo events as Avro binary in the Confluent wire format
// (magic byte 0, big-endian schema ID, Avro body), with schemas registered in a Confluent-compatible
// schema registry under the topic-record-name subject strategy. Its API is shaped like
// encoding/json: Marshal an event, Unmarshal bytes.
package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/event"
)

// Errors returned by Unmarshal. Each means the record can never be decoded by this build, so a
// consumer parks it rather than retrying, except ErrRegistryUnavailable, which may pass.
var (
	// ErrFraming: the value is too short or does not start with the Confluent magic byte.
	ErrFraming = errors.New("not a Confluent-framed Avro value")
	// ErrUnknownSchema: the schema ID is not in the registry, or names a record this build does
	// not know, or cannot be resolved to the event's current schema.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrBody: the Avro body does not decode with its schema (truncated, corrupt).
	ErrBody = errors.New("undecodable Avro body")
	// ErrRegistryUnavailable: the registry could not be asked about an unseen schema ID.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
)

// SchemaRegistry is the part of a schema registry client the codec uses; *sr.Client implements it.
type SchemaRegistry interface {
	CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
}

var _ SchemaRegistry = (*sr.Client)(nil)

type decoder struct {
	typ    *event.Type
	schema avro.Schema // the event's schema, or the writer schema resolved against it
}

// Codec encodes and decodes the events of a TypeSet. It is safe for concurrent use.
type Codec struct {
	types  *event.TypeSet
	reg    SchemaRegistry
	header sr.ConfluentHeader
	ids    map[*event.Type]int // immutable after New

	readers sync.Pool // *avro.Reader, reused across Unmarshal calls
	writers sync.Pool // *avro.Writer, reused across Marshal calls

	mu       sync.Mutex        // serialises lookups of unseen schema IDs
	notFound map[int]time.Time // IDs the registry did not know, and when it said so; under mu
	decs     atomic.Pointer[map[int]decoder]
}

// notFoundTTL is how long an ID the registry did not know is answered from memory: garbage
// records with random IDs must not become a registry request each.
const notFoundTTL = time.Minute

// New registers the schema of every event type in reg (idempotent: the registry returns the
// existing ID for a known schema) and returns a Codec that writes with those IDs.
func New(ctx context.Context, reg SchemaRegistry, types *event.TypeSet) (*Codec, error) {
	c := &Codec{types: types, reg: reg, ids: make(map[*event.Type]int), notFound: make(map[int]time.Time)}
	decs := make(map[int]decoder)
	for _, t := range types.Types() {
		text := t.Text
		if text == "" {
			text = t.Schema.String()
		}
		ss, err := reg.CreateSchema(ctx, t.Subject(), sr.Schema{Schema: text, Type: sr.TypeAvro})
		if err != nil {
			return nil, fmt.Errorf("register schema of %s under subject %s: %w", t.Name, t.Subject(), err)
		}
		c.ids[t] = ss.ID
		decs[ss.ID] = decoder{typ: t, schema: t.Schema}
	}
	c.decs.Store(&decs)
	return c, nil
}

// Types returns the event types the codec was built with.
func (c *Codec) Types() *event.TypeSet { return c.types }

// SchemaID returns the registry ID the codec writes t with.
func (c *Codec) SchemaID(t *event.Type) int { return c.ids[t] }

// Marshal returns ev in the Confluent wire format.
func (c *Codec) Marshal(ev event.Event) ([]byte, error) { return c.AppendMarshal(nil, ev) }

// AppendMarshal appends ev in the Confluent wire format to b.
func (c *Codec) AppendMarshal(b []byte, ev event.Event) ([]byte, error) {
	t, err := c.types.Of(ev)
	if err != nil {
		return b, err
	}
	// A pooled Writer, not avro.Marshal: the body is built in a reused buffer and copied once
	// behind the header, instead of allocated, then copied into a grown slice.
	w, _ := c.writers.Get().(*avro.Writer)
	if w == nil {
		w = avro.NewWriter(nil, 256)
	}
	defer func() {
		if cap(w.Buffer()) <= maxPooledBuffer {
			w.Reset(nil)
			c.writers.Put(w)
		}
	}()
	w.Reset(nil)
	w.WriteVal(t.Schema, ev)
	if err := w.Error; err != nil {
		w.Error = nil
		return b, fmt.Errorf("encode %s: %w", t.Name, err)
	}
	body := w.Buffer()
	if b == nil {
		b = make([]byte, 0, 5+len(body))
	}
	out, err := c.header.AppendEncode(b, c.ids[t], nil)
	if err != nil {
		return b, err
	}
	return append(out, body...), nil
}

// maxPooledBuffer bounds the encoding buffers kept for reuse: one huge event must not pin its
// buffer for the process's life.
const maxPooledBuffer = 64 << 10

// Unmarshal decodes a Confluent-framed value into a new event of the type its schema names.
// A schema ID this codec has not seen is fetched from the registry once; a writer schema that
// differs from the event's current schema is resolved against it (Avro schema evolution).
func (c *Codec) Unmarshal(ctx context.Context, data []byte) (event.Event, *event.Type, error) {
	id, body, err := c.header.DecodeID(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFraming, err)
	}
	d, err := c.decoder(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ev := d.typ.New()
	// A Reader, not avro.Unmarshal: Unmarshal treats running out of input inside a number as
	// the end of the value, so a truncated body would decode into an event with zero fields.
	r, _ := c.readers.Get().(*avro.Reader)
	if r == nil {
		r = avro.NewReader(nil, 0)
	}
	r.Reset(body)
	r.ReadVal(d.schema, ev)
	err = r.Error
	r.Error = nil
	r.Reset(nil)
	c.readers.Put(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s with schema %d: %w", ErrBody, d.typ.Name, id, err)
	}
	return ev, d.typ, nil
}

func (c *Codec) decoder(ctx context.Context, id int) (decoder, error) {
	if d, ok := (*c.decs.Load())[id]; ok {
		return d, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := (*c.decs.Load())[id]; ok {
		return d, nil
	}
	if at, ok := c.notFound[id]; ok && time.Since(at) < notFoundTTL {
		return decoder{}, fmt.Errorf("%w: schema ID %d is not in the registry", ErrUnknownSchema, id)
	}
	s, err := c.reg.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == 404 {
			if len(c.notFound) > 10000 {
				clear(c.notFound)
			}
			c.notFound[id] = time.Now()
			return decoder{}, fmt.Errorf("%w: schema ID %d is not in the registry", ErrUnknownSchema, id)
		}
		return decoder{}, fmt.Errorf("%w: look up schema ID %d: %w", ErrRegistryUnavailable, id, err)
	}
	if s.Type != sr.TypeAvro {
		return decoder{}, fmt.Errorf("%w: schema ID %d is %s, not Avro", ErrUnknownSchema, id, s.Type)
	}
	writer, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return decoder{}, fmt.Errorf("%w: schema ID %d does not parse: %w", ErrUnknownSchema, id, err)
	}
	ws, ok := writer.(*avro.RecordSchema)
	if !ok {
		return decoder{}, fmt.Errorf("%w: schema ID %d is not a record", ErrUnknownSchema, id)
	}
	t, err := c.types.ByFullName(ws.FullName())
	if err != nil {
		return decoder{}, fmt.Errorf("%w: schema ID %d: %w", ErrUnknownSchema, id, err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(t.Schema, writer)
	if err != nil {
		return decoder{}, fmt.Errorf("%w: schema ID %d cannot be read as %s: %w", ErrUnknownSchema, id, t.Name, err)
	}
	d := decoder{typ: t, schema: resolved}
	next := make(map[int]decoder, len(*c.decs.Load())+1)
	for k, v := range *c.decs.Load() {
		next[k] = v
	}
	next[id] = d
	c.decs.Store(&next)
	return d, nil
}
