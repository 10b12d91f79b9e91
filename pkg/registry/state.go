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

	"github.com/choreo-dev/choreo/pkg/avrocompat"
)

// stateVersion is the format of the state file this package writes. Version 1 (written while
// the registry was franz-go's srfake) is still read: it has no nextId, and its orphans (schemas
// whose versions were all permanently deleted) only reserve their IDs, as Confluent's registry
// forgets a schema deleted permanently but never gives its ID out again.
const stateVersion = 2

// state is the content of the state file: everything needed to rebuild the registry.
type state struct {
	Version int `json:"version"`
	// NextID is the ID the next new schema gets; IDs below it are never given out again.
	NextID int `json:"nextId,omitempty"`
	// Schemas is every subject version, soft-deleted ones included, sorted by ID then subject
	// then version.
	Schemas []schemaEntry `json:"schemas"`
	// Orphans appear in version 1 files only.
	Orphans []orphanEntry `json:"orphans,omitempty"`
	// Subjects holds the subjects that are soft-deleted or have their own compatibility or mode.
	Subjects map[string]subjectState `json:"subjects,omitempty"`
	// Config is the global compatibility and mode, where set.
	Config configState `json:"config"`
}

// schemaBody is a schema as the registry stores it: the text exactly as registered.
type schemaBody struct {
	SchemaType string      `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []reference `json:"references,omitempty"`
	// Metadata and RuleSet are kept as given (Confluent's data contracts); the registry does
	// not interpret them.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	RuleSet  json.RawMessage `json:"ruleSet,omitempty"`
}

// reference is a schema reference: the name it is imported by, and the subject version it names.
type reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// schemaEntry is one version of one subject.
type schemaEntry struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	schemaBody
	Deleted bool `json:"deleted,omitempty"` // soft-deleted
}

// orphanEntry is a schema known by its ID only (version 1 files).
type orphanEntry struct {
	ID int `json:"id"`
	schemaBody
}

type subjectState struct {
	Deleted       bool    `json:"deleted,omitempty"` // soft-deleted (every version is)
	Compatibility *string `json:"compatibility,omitempty"`
	Mode          *string `json:"mode,omitempty"`
}

type configState struct {
	Compatibility *string `json:"compatibility,omitempty"`
	Mode          *string `json:"mode,omitempty"`
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

// validate checks what loading relies on, and migrates a version 1 state to the current format.
func (st *state) validate() error {
	switch st.Version {
	case 1:
		if st.NextID != 0 {
			return errors.New("format version 1 has no nextId")
		}
	case stateVersion:
		if len(st.Orphans) > 0 {
			return fmt.Errorf("format version %d has no orphans", stateVersion)
		}
	default:
		return fmt.Errorf("format version %d, want 1 or %d", st.Version, stateVersion)
	}
	versions := make(map[subjectVersion]bool, len(st.Schemas))
	texts := make(map[int]schemaBody)
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
		if _, err := schemaTypeOf(e.SchemaType); err != nil {
			return fmt.Errorf("subject %q version %d: %w", e.Subject, e.Version, err)
		}
		k := subjectVersion{e.Subject, e.Version}
		if versions[k] {
			return fmt.Errorf("subject %q version %d is listed twice", e.Subject, e.Version)
		}
		versions[k] = true
		if prev, ok := texts[e.ID]; ok && identity(prev) != identity(e.schemaBody) {
			return fmt.Errorf("schema ID %d is listed with two different schemas", e.ID)
		}
		texts[e.ID] = e.schemaBody
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
		case texts[o.ID].Schema != "":
			return fmt.Errorf("schema ID %d is listed twice", o.ID)
		}
	}
	if st.NextID != 0 && st.NextID <= st.maxID() {
		return fmt.Errorf("nextId %d is not above the highest ID %d", st.NextID, st.maxID())
	}
	for s, ss := range st.Subjects {
		if ss.Compatibility != nil {
			if _, err := avrocompat.ParseLevel(*ss.Compatibility); err != nil {
				return fmt.Errorf("subject %q: %w", s, err)
			}
		}
	}
	if c := st.Config.Compatibility; c != nil {
		if _, err := avrocompat.ParseLevel(*c); err != nil {
			return err
		}
	}
	// Migrate version 1: orphans only reserve their IDs.
	st.NextID = max(st.NextID, st.maxID()+1)
	st.Orphans = nil
	st.Version = stateVersion
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
