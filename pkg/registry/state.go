package registry

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/sr"
)

// stateVersion is the format of the state file this package writes and reads.
const stateVersion = 1

// state is the content of the state file: everything needed to rebuild the registry.
type state struct {
	Version int `json:"version"`
	// Schemas is every subject version, soft-deleted ones included, sorted by ID then subject
	// then version.
	Schemas []schemaEntry `json:"schemas"`
	// Orphans are schemas whose subject versions were all permanently deleted: srfake still
	// serves them by ID, and their IDs must never be given to another schema.
	Orphans []orphanEntry `json:"orphans,omitempty"`
	// Subjects holds the subjects that are soft-deleted, have their own compatibility or mode,
	// or have no versions left.
	Subjects map[string]subjectState `json:"subjects,omitempty"`
	// Config is the global compatibility and mode.
	Config configState `json:"config"`
}

// schemaBody is a schema as the registry stores it.
type schemaBody struct {
	SchemaType sr.SchemaType        `json:"schemaType"`
	Schema     string               `json:"schema"`
	References []sr.SchemaReference `json:"references,omitempty"`
	Metadata   *sr.SchemaMetadata   `json:"metadata,omitempty"`
	RuleSet    *sr.SchemaRuleSet    `json:"ruleSet,omitempty"`
}

func bodyOf(s sr.Schema) schemaBody {
	return schemaBody{
		SchemaType: s.Type,
		Schema:     s.Schema,
		References: s.References,
		Metadata:   s.SchemaMetadata,
		RuleSet:    s.SchemaRuleSet,
	}
}

func (b schemaBody) schema() sr.Schema {
	return sr.Schema{
		Type:           b.SchemaType,
		Schema:         b.Schema,
		References:     b.References,
		SchemaMetadata: b.Metadata,
		SchemaRuleSet:  b.RuleSet,
	}
}

// schemaEntry is one version of one subject.
type schemaEntry struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	schemaBody
	Deleted bool `json:"deleted,omitempty"` // soft-deleted
}

// orphanEntry is a schema known by its ID only.
type orphanEntry struct {
	ID int `json:"id"`
	schemaBody
}

type subjectState struct {
	Deleted       bool                   `json:"deleted,omitempty"` // soft-deleted
	Compatibility *sr.CompatibilityLevel `json:"compatibility,omitempty"`
	Mode          *sr.Mode               `json:"mode,omitempty"`
}

type configState struct {
	Compatibility *sr.CompatibilityLevel `json:"compatibility,omitempty"`
	Mode          *sr.Mode               `json:"mode,omitempty"`
}

type subjectVersion struct {
	subject string
	version int
}

// maxID returns the highest schema ID in the state.
func (st *state) maxID() int {
	m := 0
	for _, e := range st.Schemas {
		m = max(m, e.ID)
	}
	for _, o := range st.Orphans {
		m = max(m, o.ID)
	}
	return m
}

// normalize puts the entries in the order the file lists them.
func (st *state) normalize() {
	if st.Schemas == nil {
		st.Schemas = []schemaEntry{}
	}
	if len(st.Subjects) == 0 {
		st.Subjects = nil
	}
	slices.SortFunc(st.Schemas, func(a, b schemaEntry) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	slices.SortFunc(st.Orphans, func(a, b orphanEntry) int { return cmp.Compare(a.ID, b.ID) })
}

// validate checks what restoring relies on.
func (st *state) validate() error {
	if st.Version != stateVersion {
		return fmt.Errorf("format version %d, want %d", st.Version, stateVersion)
	}
	versions := make(map[subjectVersion]bool, len(st.Schemas))
	ids := make(map[int]bool)
	for _, e := range st.Schemas {
		switch {
		case e.Subject == "":
			return fmt.Errorf("schema with ID %d has no subject", e.ID)
		case e.Version < 1:
			return fmt.Errorf("subject %q has version %d", e.Subject, e.Version)
		case e.ID < 1:
			return fmt.Errorf("subject %q version %d has ID %d", e.Subject, e.Version, e.ID)
		case e.Schema == "":
			return fmt.Errorf("subject %q version %d has an empty schema", e.Subject, e.Version)
		}
		k := subjectVersion{e.Subject, e.Version}
		if versions[k] {
			return fmt.Errorf("subject %q version %d is listed twice", e.Subject, e.Version)
		}
		versions[k] = true
		ids[e.ID] = true
	}
	for _, e := range st.Schemas {
		for _, ref := range e.References {
			if !versions[subjectVersion{ref.Subject, ref.Version}] {
				return fmt.Errorf("subject %q version %d references subject %q version %d, which is not in the file",
					e.Subject, e.Version, ref.Subject, ref.Version)
			}
		}
	}
	for _, o := range st.Orphans {
		switch {
		case o.ID < 1:
			return fmt.Errorf("orphan schema has ID %d", o.ID)
		case ids[o.ID]:
			return fmt.Errorf("schema ID %d is listed twice", o.ID)
		case o.Schema == "":
			return fmt.Errorf("orphan schema %d is empty", o.ID)
		}
		ids[o.ID] = true
	}
	return nil
}

// readState reads and validates the state file; it returns nil, nil if there is no file.
func readState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse: data after the JSON object")
	}
	if err := st.validate(); err != nil {
		return nil, err
	}
	st.normalize()
	return &st, nil
}

func encodeState(st *state) ([]byte, error) {
	st.normalize()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// sameState reports the first difference between the state wanted and the state got.
func sameState(want, got *state) error {
	w, err := encodeState(want)
	if err != nil {
		return err
	}
	g, err := encodeState(got)
	if err != nil {
		return err
	}
	if bytes.Equal(w, g) {
		return nil
	}
	wl, gl := bytes.Split(w, []byte("\n")), bytes.Split(g, []byte("\n"))
	for i := range min(len(wl), len(gl)) {
		if !bytes.Equal(wl[i], gl[i]) {
			return fmt.Errorf("line %d is %s, want %s", i+1, bytes.TrimSpace(gl[i]), bytes.TrimSpace(wl[i]))
		}
	}
	return fmt.Errorf("%d lines, want %d", len(gl), len(wl))
}

// writeAtomic replaces path with data so that a reader, or a restart after a crash, sees either
// the old content or the new, never a mix: data goes to a temporary file in the same directory,
// is synced, and is renamed over path.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()           // already failed; the first error is the one to report
			_ = os.Remove(f.Name()) // best effort: do not leave the partial file behind
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
