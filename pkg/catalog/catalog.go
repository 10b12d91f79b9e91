// Package catalog is choreo's event catalog: the single document of every event, every service and
// every event chain (business operation). The catalog lives in schemas/catalog.yaml next to the Avro
// schemas it names. It is checked three ways so that it cannot drift from the system it describes:
// against itself (Parse), against the schemas (CheckSchemas) and against the handlers each service
// registers in code (CheckService). Analyze checks its flow as a whole (cycles, events that cannot
// be published or that no chain uses), Impact answers what depends on an event or a service, and
// WriteMarkdown (one CATALOG.md) or Site (linked pages, for big catalogs) render it.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

// FileName is the name of the catalog in the schemas file system. Load reads it.
const FileName = "catalog.yaml"

// ErrInvalid is wrapped by every error that reports a problem with the catalog itself, so that
// callers can tell a wrong catalog (fix the YAML, a schema or a handler) from a failure to read it:
// errors.Is(err, catalog.ErrInvalid).
var ErrInvalid = errors.New("invalid event catalog")

// Catalog is the decoded catalog.yaml. The slices keep the order of the file, which is the order
// of the rendered documentation. A Catalog returned by Parse or Load is valid; one built by hand
// is not checked until CheckSchemas or CheckService is called.
type Catalog struct {
	Events   []Event   `yaml:"events"`
	Services []Service `yaml:"services"`
	Chains   []Chain   `yaml:"chains"`
	// TopicDefaults are the Kafka settings of every topic, dead-letter topics included, unless
	// an entry of TopicSpecs overrides them.
	TopicDefaults TopicSettings `yaml:"topicDefaults"`
	// TopicSpecs override TopicDefaults for event topics (the topics list of catalog.yaml).
	TopicSpecs []Topic `yaml:"topics"`
}

// Event is one kind of fact that a service publishes to Kafka. Its name is the name of its Avro
// record, so a record can be matched to its catalog entry without a lookup table.
type Event struct {
	// Name is the event name and the Avro record name (without namespace).
	Name string `yaml:"name"`
	// Topic is the Kafka topic the event is published to. Several events may share a topic to keep
	// the order of the facts of one entity; they must then share the key.
	Topic string `yaml:"topic"`
	// Key is the record field whose value is the Kafka record key. It must be a string field.
	Key string `yaml:"key"`
	// Schema is the path of the event's .avsc file in the schemas file system.
	Schema string `yaml:"schema"`
	// Producer is the only service that may publish the event.
	Producer string `yaml:"producer"`
	// Description says what happened, in the past tense.
	Description string `yaml:"description"`
	// Compatibility is the rule every new version of the schema must keep towards the earlier
	// ones (a Confluent compatibility level); `choreo schema check` enforces it. Empty means
	// DefaultCompatibility.
	Compatibility string `yaml:"compatibility,omitempty"`
}

// DefaultCompatibility is the level of an event that declares none: BACKWARD_TRANSITIVE,
// because events written with every earlier schema stay in the topics and must stay readable.
const DefaultCompatibility = avrocompat.BackwardTransitive

// Level returns the event's compatibility level.
func (e Event) Level() avrocompat.Level {
	if e.Compatibility == "" {
		return DefaultCompatibility
	}
	l, err := avrocompat.ParseLevel(e.Compatibility)
	if err != nil {
		return DefaultCompatibility // unreachable for a parsed catalog: validate refuses it
	}
	return l
}

// Service is a deployable that consumes and produces events.
type Service struct {
	Name string `yaml:"name"`
	// Group is the Kafka consumer group; required when the service consumes, empty otherwise.
	Group       string `yaml:"group"`
	Description string `yaml:"description"`
	// Consumes lists the events the service handles.
	Consumes []string `yaml:"consumes"`
	// Produces lists the events the service publishes; exactly the events that name it as producer.
	Produces []string `yaml:"produces"`
	// Effects lists side effects outside Kafka (an email, a payment), so chains can end in one.
	Effects []string `yaml:"effects"`
}

// Chain is a business operation told as the events it causes: a trigger, then each service's
// reaction to the event before it.
type Chain struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Trigger is what starts the chain outside Kafka, such as an HTTP request.
	Trigger string `yaml:"trigger"`
	Steps   []Step `yaml:"steps"`
}

// Step is one service's part in a chain: it emits an event or, as the last step, causes an effect.
// Exactly one of Emits and Effect is set.
type Step struct {
	Service string `yaml:"service"`
	Emits   string `yaml:"emits"`
	Effect  string `yaml:"effect"`
}

// Parse decodes a catalog strictly (an unknown or duplicated field is an error, so a typo cannot
// silently drop a line) and checks that it is consistent with itself. It does not read the schemas:
// use Load, or call CheckSchemas. All problems are returned at once, joined; each wraps ErrInvalid.
func Parse(data []byte) (*Catalog, error) {
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads FileName from fsys (normally schemas.FS), parses it and checks it against the schemas
// in fsys. The problems found by Parse and by CheckSchemas are reported together.
func Load(fsys fs.FS) (*Catalog, error) {
	data, err := fs.ReadFile(fsys, FileName)
	if err != nil {
		return nil, fmt.Errorf("load event catalog: %w", err)
	}
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(c.validate(), c.CheckSchemas(fsys)); err != nil {
		return nil, err
	}
	return c, nil
}

func decode(data []byte) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidf("%s is empty", FileName)
		}
		return nil, &invalidError{msg: "decode " + FileName, err: err}
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalidf("%s holds more than one YAML document", FileName)
	}
	return &c, nil
}

// Event returns the event with the given name.
func (c *Catalog) Event(name string) (Event, bool) {
	for _, e := range c.Events {
		if e.Name == name {
			return e, true
		}
	}
	return Event{}, false
}

// Service returns the service with the given name.
func (c *Catalog) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Chain returns the chain with the given name.
func (c *Catalog) Chain(name string) (Chain, bool) {
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch, true
		}
	}
	return Chain{}, false
}

// Topics returns the distinct topics of all events, sorted, e.g. to create them before the
// services start.
func (c *Catalog) Topics() []string {
	topics := make([]string, 0, len(c.Events))
	for _, e := range c.Events {
		topics = append(topics, e.Topic)
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// Consumers returns the names of the services that consume the event, in catalog order. The
// catalog lists consumers on the services only, so that adding a consumer touches one entry.
func (c *Catalog) Consumers(event string) []string {
	var names []string
	for _, s := range c.Services {
		if slices.Contains(s.Consumes, event) {
			names = append(names, s.Name)
		}
	}
	return names
}

// invalidError is one problem with the catalog. It wraps ErrInvalid without repeating its text in
// every line of a joined report, and wraps the underlying cause (a YAML or Avro error) if any.
type invalidError struct {
	msg string
	err error
}

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

func (e *invalidError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *invalidError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalid, e.err}
	}
	return []error{ErrInvalid}
}

// problems collects every problem of a check, so that one run reports them all.
type problems []error

func (p *problems) addf(format string, args ...any) {
	*p = append(*p, invalidf(format, args...))
}

func (p *problems) add(err error) {
	*p = append(*p, err)
}

func (p problems) err() error {
	return errors.Join(p...)
}
