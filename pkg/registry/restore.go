package registry

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// restore rebuilds the state st in the empty registry reg, whose REST API is a.
//
// srfake's SeedSchema places a schema at an exact subject, version and ID and moves the next free
// ID above it, but it accepts each ID only once, while one ID is shared by every subject the same
// schema was registered under. So every ID is seeded exactly once, under a temporary subject that
// is permanently deleted at once (srfake keeps serving the schema by ID and reusing its ID), and
// every subject version is then registered in version order with RegisterSchema, which reuses the
// seeded ID of an equal schema and numbers the version one above the subject's highest. A version
// number freed by a permanent delete is skipped by seeding a placeholder there (under a negative
// ID, which leaves the next free ID alone) and permanently deleting it. Compatibility and mode
// settings, then soft deletes, are applied last, through the REST API.
//
// srfake serves by ID the text of the first registration of a schema. After a restore, it serves
// the text of one of the subject versions using the ID: equal by srfake's comparison (the same
// JSON, references and type), but possibly laid out differently.
func restore(reg *srfake.Registry, a api, st *state, log *slog.Logger) error {
	r := &restorer{
		reg:     reg,
		api:     a,
		st:      st,
		seeded:  make(map[int]bool),
		placed:  make(map[subjectVersion]*schemaEntry),
		early:   make(map[subjectVersion]bool),
		highest: make(map[string]int),
		inState: make(map[string]bool),
	}
	for _, e := range st.Schemas {
		r.inState[e.Subject] = true
	}
	for s := range st.Subjects {
		r.inState[s] = true
	}
	if err := r.placeVersions(); err != nil {
		return err
	}
	if err := r.placeOrphans(log); err != nil {
		return err
	}
	for _, s := range slices.Sorted(maps.Keys(st.Subjects)) {
		// A subject without versions (all permanently deleted) still exists in srfake.
		if ss := st.Subjects[s]; r.highest[s] == 0 && ss.Compatibility == nil && ss.Mode == nil {
			if err := r.skipVersions(s, 2); err != nil {
				return err
			}
		}
	}
	if err := r.settings(); err != nil {
		return err
	}
	return r.softDelete()
}

type restorer struct {
	reg     *srfake.Registry
	api     api
	st      *state
	seeded  map[int]bool                    // IDs placed
	placed  map[subjectVersion]*schemaEntry // subject versions placed
	early   map[subjectVersion]bool         // versions soft-deleted before the others were placed
	highest map[string]int                  // highest version number given in each subject
	inState map[string]bool                 // subjects of the state, which temporary ones avoid
	filler  int                             // last placeholder ID given, counting down from 0
}

// placeVersions places every subject version, each subject in version order, a version only once
// the versions it references are in place. The order of registration respects both constraints,
// so this always completes for a state srfake wrote.
func (r *restorer) placeVersions() error {
	bySubject := make(map[string][]*schemaEntry)
	for i := range r.st.Schemas {
		e := &r.st.Schemas[i]
		bySubject[e.Subject] = append(bySubject[e.Subject], e)
	}
	subjects := make([]string, 0, len(bySubject))
	for s, es := range bySubject {
		slices.SortFunc(es, func(a, b *schemaEntry) int { return a.Version - b.Version })
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	next := make(map[string]int, len(subjects))

	head := func(s string) *schemaEntry {
		if next[s] < len(bySubject[s]) {
			return bySubject[s][next[s]]
		}
		return nil
	}
	for {
		// First everything that is ready without soft-deleting anything early; then, when
		// nothing else is, one version whose subject holds the same schema at a lower version,
		// which must then be soft-deleted first.
		progress := false
		for _, s := range subjects {
			for e := head(s); e != nil && r.refsReady(e) && r.sameIDBelow(e) == nil; e = head(s) {
				if err := r.place(e); err != nil {
					return err
				}
				next[s]++
				progress = true
			}
		}
		if progress {
			continue
		}
		var stuck *schemaEntry
		for _, s := range subjects {
			e := head(s)
			if e == nil {
				continue
			}
			if stuck == nil {
				stuck = e
			}
			if r.refsReady(e) {
				if err := r.place(e); err != nil {
					return err
				}
				next[s]++
				progress = true
				break
			}
		}
		if stuck == nil {
			return nil
		}
		if !progress {
			return fmt.Errorf("subject %q version %d: its references cannot be placed first (a cycle?)", stuck.Subject, stuck.Version)
		}
	}
}

func (r *restorer) refsReady(e *schemaEntry) bool {
	for _, ref := range e.References {
		k := subjectVersion{ref.Subject, ref.Version}
		if r.placed[k] == nil || r.early[k] {
			return false
		}
	}
	return true
}

// sameIDBelow returns an active lower version of e's subject with e's ID: srfake would answer
// registering e with that version instead of creating a new one.
func (r *restorer) sameIDBelow(e *schemaEntry) *schemaEntry {
	for v := 1; v < e.Version; v++ {
		k := subjectVersion{e.Subject, v}
		if p := r.placed[k]; p != nil && p.ID == e.ID && !r.early[k] {
			return p
		}
	}
	return nil
}

func (r *restorer) place(e *schemaEntry) error {
	if !r.seeded[e.ID] {
		if err := r.seedTemp(e.ID, e.schema()); err != nil {
			return err
		}
	}
	if err := r.skipVersions(e.Subject, e.Version); err != nil {
		return err
	}
	if p := r.sameIDBelow(e); p != nil {
		if !p.Deleted {
			return fmt.Errorf("subject %q has ID %d at versions %d and %d, and neither is deleted", e.Subject, e.ID, p.Version, e.Version)
		}
		if err := r.api.must(http.MethodDelete, versionPath(p.Subject, p.Version), nil, nil); err != nil {
			return fmt.Errorf("soft-delete subject %q version %d before version %d: %w", p.Subject, p.Version, e.Version, err)
		}
		r.early[subjectVersion{p.Subject, p.Version}] = true
	}
	id, version, err := r.reg.RegisterSchema(e.Subject, e.schema())
	if err != nil {
		return fmt.Errorf("register subject %q version %d: %w", e.Subject, e.Version, err)
	}
	if id != e.ID || version != e.Version {
		return fmt.Errorf("subject %q version %d with ID %d was restored as version %d with ID %d "+
			"(are two different schemas listed under one ID?)", e.Subject, e.Version, e.ID, version, id)
	}
	r.highest[e.Subject] = e.Version
	r.placed[subjectVersion{e.Subject, e.Version}] = e
	return nil
}

// skipVersions uses up subject's version numbers below until, creating the subject if needed:
// srfake numbers a new version one above the highest it ever gave in the subject.
func (r *restorer) skipVersions(subject string, until int) error {
	for v := r.highest[subject] + 1; v < until; v++ {
		r.filler--
		placeholder := sr.Schema{Schema: fmt.Sprintf(`{"type":"fixed","name":"choreo_registry_restore_gap_%d","size":1}`, -r.filler)}
		if err := seed(r.reg, subject, v, r.filler, placeholder); err != nil {
			return err
		}
		if err := r.api.must(http.MethodDelete, versionPath(subject, v)+"?permanent=true", nil, nil); err != nil {
			return fmt.Errorf("skip subject %q version %d: %w", subject, v, err)
		}
		r.highest[subject] = v
	}
	return nil
}

// placeOrphans seeds the schemas known by ID only. An orphan's references may name versions that
// were permanently deleted since; srfake cannot seed those references, so they are dropped (and
// from st too, which the restored registry is checked against).
func (r *restorer) placeOrphans(log *slog.Logger) error {
	for i := range r.st.Orphans {
		o := &r.st.Orphans[i]
		for _, ref := range o.References {
			if k := (subjectVersion{ref.Subject, ref.Version}); r.placed[k] == nil || r.early[k] {
				log.Warn("schema registry: dropping the references of a schema whose subject versions were deleted, "+
					"as some of them no longer exist", "id", o.ID, "missing", fmt.Sprintf("%s/%d", ref.Subject, ref.Version))
				o.References = nil
				break
			}
		}
		if err := r.seedTemp(o.ID, o.schema()); err != nil {
			return err
		}
	}
	return nil
}

// seedTemp seeds id under a temporary subject and deletes the subject, leaving the schema known
// by its ID only.
func (r *restorer) seedTemp(id int, s sr.Schema) error {
	tmp := "choreo.registry.restore." + strconv.Itoa(id)
	for r.inState[tmp] {
		tmp += "_"
	}
	if err := seed(r.reg, tmp, 1, id, s); err != nil {
		return err
	}
	if err := r.api.must(http.MethodDelete, subjectPath("/subjects/", tmp)+"?permanent=true", nil, nil); err != nil {
		return fmt.Errorf("drop temporary subject: %w", err)
	}
	r.seeded[id] = true
	return nil
}

// softDelete applies the soft deletes not applied yet. A version still referenced cannot be
// deleted until its referrers are, so this repeats while it makes progress.
func (r *restorer) softDelete() error {
	var versions []subjectVersion
	for _, e := range r.st.Schemas {
		if k := (subjectVersion{e.Subject, e.Version}); e.Deleted && !r.early[k] {
			versions = append(versions, k)
		}
	}
	var subjects []string
	for _, s := range slices.Sorted(maps.Keys(r.st.Subjects)) {
		if r.st.Subjects[s].Deleted {
			subjects = append(subjects, s)
		}
	}

	for len(versions)+len(subjects) > 0 {
		var lastErr error
		var vLeft []subjectVersion
		for _, k := range versions {
			if err := r.api.must(http.MethodDelete, versionPath(k.subject, k.version), nil, nil); err != nil {
				vLeft, lastErr = append(vLeft, k), err
			}
		}
		var sLeft []string
		for _, s := range subjects {
			if err := r.api.must(http.MethodDelete, subjectPath("/subjects/", s), nil, nil); err != nil {
				sLeft, lastErr = append(sLeft, s), err
			}
		}
		if len(vLeft) == len(versions) && len(sLeft) == len(subjects) {
			return fmt.Errorf("soft-delete: %w", lastErr)
		}
		versions, subjects = vLeft, sLeft
	}
	return nil
}

// settings applies the subjects' and the global compatibility and mode. A subject's setting
// creates the subject if it has no versions, as it did in srfake.
func (r *restorer) settings() error {
	for _, s := range slices.Sorted(maps.Keys(r.st.Subjects)) {
		ss := r.st.Subjects[s]
		if ss.Compatibility != nil {
			if err := r.api.must(http.MethodPut, subjectPath("/config/", s), map[string]any{"compatibility": ss.Compatibility}, nil); err != nil {
				return err
			}
		}
		if ss.Mode != nil {
			if err := r.api.must(http.MethodPut, subjectPath("/mode/", s), map[string]any{"mode": ss.Mode}, nil); err != nil {
				return err
			}
		}
	}
	if c := r.st.Config.Compatibility; c != nil {
		if err := r.api.must(http.MethodPut, "/config", map[string]any{"compatibility": c}, nil); err != nil {
			return err
		}
	}
	if m := r.st.Config.Mode; m != nil {
		if err := r.api.must(http.MethodPut, "/mode", map[string]any{"mode": m}, nil); err != nil {
			return err
		}
	}
	return nil
}

// seed calls SeedSchema, which panics on what it refuses.
func seed(reg *srfake.Registry, subject string, version, id int, s sr.Schema) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("seed subject %q version %d with ID %d: %v", subject, version, id, p)
		}
	}()
	reg.SeedSchema(subject, version, id, s)
	return nil
}
