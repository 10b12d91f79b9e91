// Package evolution is choreo's schema-evolution gate. Every event's schema keeps a committed,
// append-only history (schemas/history/<Event>/v1.avsc, v2.avsc, ...), and every version must keep
// the compatibility level its catalog entry declares (default BACKWARD_TRANSITIVE) towards the
// versions before it: events written with any of them may still be in the topics. Check runs
// the gate over the history and the current .avsc files; CheckRegistry runs it against the
// versions a live schema registry holds.
package evolution

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/avrocompat"
	"github.com/choreo-dev/choreo/pkg/catalog"
)

// HistoryDir is the directory of the history, in the schemas directory.
const HistoryDir = "history"

// ErrIncompatible is wrapped by Report.Err when a schema breaks its event's compatibility level.
var ErrIncompatible = errors.New("incompatible schema change")

// ErrUnrecorded is wrapped by Report.Err when an event's schema is not the last version of its
// history.
var ErrUnrecorded = errors.New("schema change not recorded in the history")

// ErrHistory is wrapped by the errors of a malformed history: a missing version, a stray file.
var ErrHistory = errors.New("bad schema history")

// Version is one version of an event's schema.
type Version struct {
	// Name says where the version comes from: a path in the schemas directory, or a registry
	// subject and version.
	Name   string
	Text   string
	Schema avro.Schema
}

// Finding is one way in which a schema breaks its event's compatibility level.
type Finding struct {
	Event string
	Level avrocompat.Level
	// Schema is the version checked; Against the earlier version it breaks the level with.
	Schema, Against string
	avrocompat.Violation
}

func (f Finding) String() string {
	field := "the record"
	if f.Field != "" {
		field = "field " + f.Field
	}
	var how string
	if f.Backward {
		how = fmt.Sprintf("%s cannot read events written with %s", f.Schema, f.Against)
	} else {
		how = fmt.Sprintf("consumers still on %s cannot read events written with %s", f.Against, f.Schema)
	}
	return fmt.Sprintf("%s: %s breaks %s (%s): %s: %s", f.Event, field, f.Level, f.Rule, how, f.Message)
}

// Unrecorded is an event whose current schema is not yet the last version of its history.
type Unrecorded struct {
	Event string
	// Schema is the current .avsc; Next the history file it must be copied to.
	Schema, Next string
}

// Report is the outcome of a check.
type Report struct {
	Findings   []Finding
	Unrecorded []Unrecorded
	// Versions counts the versions checked.
	Versions int
}

// Err returns nil if the check passed, else an error listing every finding, wrapping
// ErrIncompatible or ErrUnrecorded.
func (r *Report) Err() error {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString("\n  " + f.String())
	}
	for _, u := range r.Unrecorded {
		fmt.Fprintf(&b, "\n  %s: %s is not in the history: once it passes, record it as %s (choreo schema check -record)", u.Event, u.Schema, u.Next)
	}
	switch {
	case len(r.Findings) > 0:
		return fmt.Errorf("%w:%s", ErrIncompatible, b.String())
	case len(r.Unrecorded) > 0:
		return fmt.Errorf("%w:%s", ErrUnrecorded, b.String())
	}
	return nil
}

var versionFile = regexp.MustCompile(`^v([1-9][0-9]*)\.avsc$`)

// History reads the history of every event of cat from fsys (the schemas directory): the
// versions in order, oldest first. An event without history has none. Numbers must run from v1
// without gaps, and every file must belong to a catalog event.
func History(fsys fs.FS, cat *catalog.Catalog) (map[string][]Version, error) {
	out := make(map[string][]Version)
	dirs, err := fs.ReadDir(fsys, HistoryDir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		p := path.Join(HistoryDir, d.Name())
		if _, ok := cat.Event(d.Name()); !ok || !d.IsDir() {
			return nil, fmt.Errorf("%w: %s is not the directory of a catalog event", ErrHistory, p)
		}
		files, err := fs.ReadDir(fsys, p)
		if err != nil {
			return nil, err
		}
		type numbered struct {
			n    int
			name string
		}
		var vs []numbered
		for _, f := range files {
			m := versionFile.FindStringSubmatch(f.Name())
			if m == nil || f.IsDir() {
				return nil, fmt.Errorf("%w: %s: want only files v1.avsc, v2.avsc, ...", ErrHistory, path.Join(p, f.Name()))
			}
			n, _ := strconv.Atoi(m[1])
			vs = append(vs, numbered{n, f.Name()})
		}
		slices.SortFunc(vs, func(a, b numbered) int { return cmp.Compare(a.n, b.n) })
		for i, v := range vs {
			if v.n != i+1 {
				return nil, fmt.Errorf("%w: %s: version %d is missing", ErrHistory, p, i+1)
			}
			name := path.Join(p, v.name)
			text, err := fs.ReadFile(fsys, name)
			if err != nil {
				return nil, err
			}
			s, err := parse(text)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrHistory, name, err)
			}
			out[d.Name()] = append(out[d.Name()], Version{Name: name, Text: string(text), Schema: s})
		}
	}
	return out, nil
}

func parse(text []byte) (avro.Schema, error) {
	return avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
}

// current reads an event's .avsc.
func current(fsys fs.FS, e catalog.Event) (Version, error) {
	text, err := fs.ReadFile(fsys, e.Schema)
	if err != nil {
		return Version{}, err
	}
	s, err := parse(text)
	if err != nil {
		return Version{}, fmt.Errorf("%s: %w", e.Schema, err)
	}
	return Version{Name: e.Schema, Text: string(text), Schema: s}, nil
}

// Check checks every event of cat: each version of its history against the versions before it,
// and its current schema, if it differs from the last version, against the whole history.
func Check(fsys fs.FS, cat *catalog.Catalog) (*Report, error) {
	hist, err := History(fsys, cat)
	if err != nil {
		return nil, err
	}
	r := &Report{}
	for _, e := range cat.Events {
		cur, err := current(fsys, e)
		if err != nil {
			return nil, err
		}
		vs := hist[e.Name]
		if n := len(vs); n == 0 || vs[n-1].Text != cur.Text {
			vs = append(slices.Clip(vs), cur)
			r.Unrecorded = append(r.Unrecorded, Unrecorded{Event: e.Name, Schema: e.Schema,
				Next: path.Join(HistoryDir, e.Name, fmt.Sprintf("v%d.avsc", n+1))})
		}
		r.Versions += len(vs)
		for k := 1; k < len(vs); k++ {
			r.Findings = append(r.Findings, findings(e, vs[k], vs[:k])...)
		}
	}
	return r, nil
}

func findings(e catalog.Event, next Version, earlier []Version) []Finding {
	schemas := make([]avro.Schema, len(earlier))
	for i, v := range earlier {
		schemas[i] = v.Schema
	}
	var out []Finding
	for _, v := range avrocompat.Check(e.Level(), next.Schema, schemas) {
		out = append(out, Finding{Event: e.Name, Level: e.Level(), Schema: next.Name, Against: earlier[v.Version].Name, Violation: v})
	}
	return out
}

// Record copies the current schema of every unrecorded event of r into the history under dir
// (the schemas directory on disk), as its next version.
func Record(dir string, r *Report) error {
	for _, u := range r.Unrecorded {
		text, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(u.Schema)))
		if err != nil {
			return err
		}
		next := filepath.Join(dir, filepath.FromSlash(u.Next))
		if err := os.MkdirAll(filepath.Dir(next), 0o755); err != nil {
			return err
		}
		// O_EXCL: the history is append-only; never overwrite a version.
		f, err := os.OpenFile(next, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(text); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
