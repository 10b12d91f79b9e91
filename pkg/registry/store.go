package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

// Schema types, as Confluent names them. AVRO is the default and the only one whose
// compatibility is checked; the others are stored as given.
const (
	typeAvro     = "AVRO"
	typeJSON     = "JSON"
	typeProtobuf = "PROTOBUF"
)

// Modes, as Confluent names them. READONLY refuses registrations and deletions; IMPORT is
// accepted and stored but behaves as READWRITE here.
var modes = []string{"READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"}

const defaultCompatibility = avrocompat.Backward

func schemaTypeOf(t string) (string, error) {
	switch strings.ToUpper(t) {
	case "", typeAvro:
		return typeAvro, nil
	case typeJSON, typeProtobuf:
		return strings.ToUpper(t), nil
	}
	return "", fmt.Errorf("unknown schema type %q", t)
}

// identity is what makes two registrations the same schema: the type, the schema's JSON without
// insignificant white space (docs and key order are kept: Confluent compares the schema as
// written, not its parsing canonical form), and the references.
func identity(b schemaBody) string {
	typ, _ := schemaTypeOf(b.SchemaType)
	text := b.Schema
	var buf bytes.Buffer
	if typ != typeProtobuf && json.Compact(&buf, []byte(text)) == nil {
		text = buf.String()
	}
	var sb strings.Builder
	sb.WriteString(typ)
	sb.WriteByte(0)
	sb.WriteString(text)
	for _, r := range b.References {
		fmt.Fprintf(&sb, "\x00%s\x00%s\x00%d", r.Name, r.Subject, r.Version)
	}
	return sb.String()
}

// version is one subject version.
type version struct {
	num     int
	id      int
	deleted bool
}

type subject struct {
	versions []*version // ascending by num, soft-deleted ones included
	compat   *string
	mode     *string
}

func (s *subject) live() []*version {
	var out []*version
	for _, v := range s.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

func (s *subject) find(num int) *version {
	for _, v := range s.versions {
		if v.num == num {
			return v
		}
	}
	return nil
}

// store is the registry's state. It is not safe for concurrent use: Server serialises access.
type store struct {
	schemas  map[int]schemaBody
	ids      map[string]int // identity -> ID
	subjects map[string]*subject
	nextID   int
	compat   *string
	mode     *string
}

func newStore() *store {
	return &store{schemas: map[int]schemaBody{}, ids: map[string]int{}, subjects: map[string]*subject{}, nextID: 1}
}

// load fills an empty store from a validated state and checks every Avro schema parses.
func (s *store) load(st *state) error {
	s.nextID = max(st.NextID, 1)
	s.compat, s.mode = st.Config.Compatibility, st.Config.Mode
	for _, e := range st.Schemas {
		s.schemas[e.ID] = e.schemaBody
		s.ids[identity(e.schemaBody)] = e.ID
		sub := s.subject(e.Subject)
		sub.versions = append(sub.versions, &version{num: e.Version, id: e.ID, deleted: e.Deleted})
	}
	for _, sub := range s.subjects {
		slices.SortFunc(sub.versions, func(a, b *version) int { return a.num - b.num })
	}
	for name, ss := range st.Subjects {
		sub := s.subject(name)
		sub.compat, sub.mode = ss.Compatibility, ss.Mode
		if ss.Deleted {
			for _, v := range sub.versions {
				v.deleted = true
			}
		}
	}
	for _, e := range st.Schemas {
		if _, err := s.parse(e.schemaBody); err != nil {
			return fmt.Errorf("subject %q version %d: %w", e.Subject, e.Version, err)
		}
	}
	return nil
}

// snapshot returns the state to save.
func (s *store) snapshot() *state {
	st := &state{Version: stateVersion, NextID: s.nextID, Subjects: map[string]subjectState{},
		Config: configState{Compatibility: s.compat, Mode: s.mode}}
	for _, name := range slices.Sorted(maps.Keys(s.subjects)) {
		sub := s.subjects[name]
		for _, v := range sub.versions {
			st.Schemas = append(st.Schemas, schemaEntry{Subject: name, Version: v.num, ID: v.id, schemaBody: s.schemas[v.id], Deleted: v.deleted})
		}
		ss := subjectState{Compatibility: sub.compat, Mode: sub.mode}
		if ss != (subjectState{}) {
			st.Subjects[name] = ss
		}
	}
	st.normalize()
	return st
}

func (s *store) subject(name string) *subject {
	sub := s.subjects[name]
	if sub == nil {
		sub = &subject{}
		s.subjects[name] = sub
	}
	return sub
}

// drop forgets a subject that has nothing left: no versions and no settings.
func (s *store) drop(name string) {
	if sub := s.subjects[name]; sub != nil && len(sub.versions) == 0 && sub.compat == nil && sub.mode == nil {
		delete(s.subjects, name)
	}
}

// parse parses an Avro schema with its references; other types are not parsed, but their
// references must exist all the same: the state file is refused at start with a dangling one.
func (s *store) parse(b schemaBody) (avro.Schema, error) {
	typ, err := schemaTypeOf(b.SchemaType)
	if err != nil {
		return nil, err
	}
	if typ != typeAvro {
		for _, r := range b.References {
			if _, err := s.referenced(r); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	cache := &avro.SchemaCache{}
	if err := s.parseRefs(b.References, cache, 0); err != nil {
		return nil, err
	}
	return avro.ParseWithCache(b.Schema, "", cache)
}

func (s *store) parseRefs(refs []reference, cache *avro.SchemaCache, depth int) error {
	if depth > 32 {
		return errors.New("references nested too deep (a cycle?)")
	}
	for _, r := range refs {
		v, err := s.referenced(r)
		if err != nil {
			return err
		}
		body := s.schemas[v.id]
		if err := s.parseRefs(body.References, cache, depth+1); err != nil {
			return err
		}
		if _, err := avro.ParseWithCache(body.Schema, "", cache); err != nil {
			return fmt.Errorf("reference %q: %w", r.Name, err)
		}
	}
	return nil
}

// referenced returns the subject version a reference names.
func (s *store) referenced(r reference) (*version, error) {
	var v *version
	if sub := s.subjects[r.Subject]; sub != nil {
		v = sub.find(r.Version)
	}
	if v == nil {
		return nil, fmt.Errorf("reference %q names subject %q version %d, which does not exist", r.Name, r.Subject, r.Version)
	}
	return v, nil
}

// level returns the compatibility level that applies to a subject.
func (s *store) level(name string) avrocompat.Level {
	if sub := s.subjects[name]; sub != nil && sub.compat != nil {
		l, _ := avrocompat.ParseLevel(*sub.compat)
		return l
	}
	if s.compat != nil {
		l, _ := avrocompat.ParseLevel(*s.compat)
		return l
	}
	return defaultCompatibility
}

func (s *store) modeOf(name string) string {
	if sub := s.subjects[name]; sub != nil && sub.mode != nil {
		return *sub.mode
	}
	if s.mode != nil {
		return *s.mode
	}
	return "READWRITE"
}

// referencedBy returns the IDs of the live versions that reference subject version num, with
// withDeleted the soft-deleted ones too: a soft-deleted referrer can still be read (and is
// restored from the state file), so a permanent delete must keep what it references.
func (s *store) referencedBy(name string, num int, withDeleted bool) []int {
	var ids []int
	for _, sub := range s.subjects {
		vs := sub.live()
		if withDeleted {
			vs = sub.versions
		}
		for _, v := range vs {
			for _, r := range s.schemas[v.id].References {
				if r.Subject == name && r.Version == num {
					ids = append(ids, v.id)
				}
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// compatibility checks body against the given versions of a subject under level, and returns
// Confluent-style messages, none if compatible.
func (s *store) compatibility(level avrocompat.Level, body schemaBody, parsed avro.Schema, against []*version) ([]string, error) {
	if level == avrocompat.None || parsed == nil || len(against) == 0 {
		return nil, nil
	}
	var msgs []string
	for _, v := range against {
		old := s.schemas[v.id]
		if t, _ := schemaTypeOf(old.SchemaType); t != typeAvro {
			continue
		}
		oldParsed, err := s.parse(old)
		if err != nil {
			return nil, fmt.Errorf("version %d no longer parses: %w", v.num, err)
		}
		// against is already the set the level selects: check each one as the latest.
		viol := avrocompat.Check(nonTransitive(level), parsed, []avro.Schema{oldParsed})
		if len(viol) == 0 {
			continue
		}
		for _, x := range viol {
			msgs = append(msgs, describe(x))
		}
		msgs = append(msgs, fmt.Sprintf("{oldSchemaVersion: %d}", v.num), fmt.Sprintf("{oldSchema: '%s'}", old.Schema),
			fmt.Sprintf("{compatibility: '%s'}", level))
	}
	return msgs, nil
}

func nonTransitive(l avrocompat.Level) avrocompat.Level {
	return avrocompat.Level(strings.TrimSuffix(string(l), "_TRANSITIVE"))
}

// describe words a violation as Confluent's registry does.
func describe(v avrocompat.Violation) string {
	which, other := "new", "old"
	if !v.Backward {
		which, other = "old", "new"
	}
	var desc string
	switch v.Rule {
	case avrocompat.ReaderFieldMissingDefaultValue:
		desc = fmt.Sprintf("The field '%s' at path '%s' in the %s schema has no default value and is missing in the %s schema",
			lastName(v.Field), v.Location, which, other)
	default:
		desc = fmt.Sprintf("%s at path '%s' in the %s schema (field '%s'): %s", v.Rule, v.Location, which, v.Field, v.Message)
	}
	return fmt.Sprintf("{errorType:'%s', description:'%s', additionalInfo:'%s'}", v.Rule, desc, v.Field)
}

func lastName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
