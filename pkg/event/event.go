// Package event holds choreo's domain events: Go types generated from the Avro schemas in
// schemas/ (see events.gen.go) and the TypeSet that ties each type to its schema and topic.
package event

//go:generate go tool avrogen -pkg event -encoders -tags json:camel -o events.gen.go ../../schemas/account_created.avsc ../../schemas/account_deleted.avsc ../../schemas/user_created.avsc ../../schemas/user_deleted.avsc ../../schemas/user_registration_rejected.avsc

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"sort"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

// Event is implemented by every generated event type. The schema's record name is the event's
// name in the catalog and in the ce_type header.
type Event interface {
	Schema() avro.Schema
}

// ErrUnknown is returned for an event name, schema or Go type that the registry does not know.
var ErrUnknown = errors.New("unknown event type")

// Type describes one event of the catalog.
type Type struct {
	// Name is the record name, e.g. "AccountCreated"; it is the CloudEvents ce_type.
	Name string
	// FullName is the namespaced record name, e.g. "choreo.account.v1.AccountCreated".
	FullName string
	// Topic is the Kafka topic the event is published to.
	Topic string
	// Key names the record field used as Kafka key.
	Key string
	// Schema is the Avro schema the event is written with and read as. Load sets it from the
	// .avsc file, with defaults and aliases (which schema resolution needs to read events
	// written with earlier versions); NewTypeSet from the generated code's canonical form.
	Schema *avro.RecordSchema
	// Text is the schema as written in its .avsc file, doc strings included: what the codec
	// registers, so that registry browsers show the documentation. Empty for a TypeSet not
	// built by Load; Schema.String() (the canonical form) is registered then.
	Text string

	new    func() Event
	goType reflect.Type
	keyIdx []int // index of the Go field tagged avro:"<Key>"
}

// KeyOf returns the value of ev's key field, the Kafka record key. ev must be of type t.
func (t *Type) KeyOf(ev Event) string {
	return reflect.ValueOf(ev).Elem().FieldByIndex(t.keyIdx).String()
}

// New returns a new zero value of the event's Go type.
func (t *Type) New() Event { return t.new() }

// Subject is the schema-registry subject of the event under the topic-record-name strategy,
// which lets one topic carry several event types (all events of one account stay in order).
func (t *Type) Subject() string { return t.Topic + "-" + t.FullName }

// TypeSet is the set of event types of a catalog: it maps event names, full names and Go types
// to Types (the schema registry is another thing: package registry serves it, and codec asks it
// for schema IDs). It is immutable once built and safe for concurrent use.
type TypeSet struct {
	byName     map[string]*Type
	byFullName map[string]*Type
	byGoType   map[reflect.Type]*Type
}

// constructors lists the generated Go types. A test checks it against the catalog, so an event
// added to the catalog without a Go type (or the reverse) fails the build's tests.
func constructors() []func() Event {
	return []func() Event{
		func() Event { return new(AccountCreated) },
		func() Event { return new(AccountDeleted) },
		func() Event { return new(UserCreated) },
		func() Event { return new(UserDeleted) },
		func() Event { return new(UserRegistrationRejected) },
	}
}

// Load builds the TypeSet of the catalog embedded in this binary.
func Load() (*TypeSet, error) {
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return nil, err
	}
	r, err := NewTypeSet(cat)
	if err != nil {
		return nil, err
	}
	for _, ce := range cat.Events {
		text, err := fs.ReadFile(schemas.FS, ce.Schema)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", ce.Name, err)
		}
		t := r.byName[ce.Name]
		parsed, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("event %s: schema %s: %w", ce.Name, ce.Schema, err)
		}
		rs, ok := parsed.(*avro.RecordSchema)
		if !ok || parsed.Fingerprint() != t.Schema.Fingerprint() {
			return nil, fmt.Errorf("event %s: %s differs from the generated Go type (run go generate ./...)", ce.Name, ce.Schema)
		}
		// The generated code holds the parsing canonical form, which drops defaults and
		// aliases: resolving an older writer schema needs the schema as written.
		t.Schema, t.Text = rs, string(text)
	}
	return r, nil
}

// NewTypeSet ties every event of cat to its generated Go type. It fails when an event of the
// catalog has no Go type, or a Go type no catalog entry.
func NewTypeSet(cat *catalog.Catalog) (*TypeSet, error) {
	r := &TypeSet{
		byName:     make(map[string]*Type),
		byFullName: make(map[string]*Type),
		byGoType:   make(map[reflect.Type]*Type),
	}
	var errs []error
	for _, mk := range constructors() {
		v := mk()
		rs, ok := v.Schema().(*avro.RecordSchema)
		if !ok {
			errs = append(errs, fmt.Errorf("%T: schema is not a record", v))
			continue
		}
		ce, ok := cat.Event(rs.Name())
		if !ok {
			errs = append(errs, fmt.Errorf("Go type %T has no event %q in the catalog: %w", v, rs.Name(), ErrUnknown))
			continue
		}
		t := &Type{
			Name: rs.Name(), FullName: rs.FullName(), Topic: ce.Topic, Key: ce.Key,
			Schema: rs, new: mk, goType: reflect.TypeOf(v),
		}
		r.byName[t.Name] = t
		if t.keyIdx = keyField(t.goType.Elem(), ce.Key); t.keyIdx == nil {
			errs = append(errs, fmt.Errorf("Go type %T has no string field tagged avro:%q (the catalog's key)", v, ce.Key))
			continue
		}
		r.byFullName[t.FullName] = t
		r.byGoType[t.goType] = t
	}
	for _, ce := range cat.Events {
		if _, ok := r.byName[ce.Name]; !ok {
			errs = append(errs, fmt.Errorf("catalog event %q has no generated Go type (run go generate ./...): %w", ce.Name, ErrUnknown))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func keyField(st reflect.Type, name string) []int {
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Tag.Get("avro") == name && f.Type.Kind() == reflect.String {
			return f.Index
		}
	}
	return nil
}

// WithNamespace returns a registry whose topics are prefixed with ns and a dot, so that several
// deployments (or tests) can share one Kafka cluster without reading each other's events.
// An empty ns returns r itself.
func (r *TypeSet) WithNamespace(ns string) *TypeSet {
	if ns == "" {
		return r
	}
	n := &TypeSet{
		byName:     make(map[string]*Type, len(r.byName)),
		byFullName: make(map[string]*Type, len(r.byName)),
		byGoType:   make(map[reflect.Type]*Type, len(r.byName)),
	}
	for _, t := range r.byName {
		c := *t
		c.Topic = ns + "." + t.Topic
		n.byName[c.Name] = &c
		n.byFullName[c.FullName] = &c
		n.byGoType[c.goType] = &c
	}
	return n
}

// ByName returns the Type named name (e.g. "AccountCreated").
func (r *TypeSet) ByName(name string) (*Type, error) {
	if t, ok := r.byName[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("%q: %w", name, ErrUnknown)
}

// ByFullName returns the Type whose record full name is name.
func (r *TypeSet) ByFullName(name string) (*Type, error) {
	if t, ok := r.byFullName[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("%q: %w", name, ErrUnknown)
}

// Of returns the Type of ev, which must be a pointer to a generated event type.
func (r *TypeSet) Of(ev Event) (*Type, error) {
	if t, ok := r.byGoType[reflect.TypeOf(ev)]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("Go type %T: %w", ev, ErrUnknown)
}

// Types returns every Type, sorted by name.
func (r *TypeSet) Types() []*Type {
	ts := make([]*Type, 0, len(r.byName))
	for _, t := range r.byName {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// NameOf returns the event name of ev from its schema, without a registry.
func NameOf(ev Event) string {
	if rs, ok := ev.Schema().(*avro.RecordSchema); ok {
		return rs.Name()
	}
	return fmt.Sprintf("%T", ev)
}
