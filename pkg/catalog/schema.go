package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// CheckSchemas checks the catalog against the Avro schemas in fsys: every event's schema file
// exists and defines a record named like the event, whose key field is a string; and every .avsc
// file in fsys belongs to exactly one event, so no schema is left behind when an event is removed.
// Each schema is parsed on its own, with a fresh cache: an event's schema must be self-contained.
// All problems are returned at once, joined; each wraps ErrInvalid. A failure to read fsys is
// returned as is.
func (c *Catalog) CheckSchemas(fsys fs.FS) error {
	var p problems
	users := make(map[string][]string) // schema path -> events
	for i, e := range c.Events {
		if e.Schema == "" {
			continue
		}
		users[e.Schema] = append(users[e.Schema], e.Name)
		checkSchema(&p, fsys, label("event", i, e.Name), e)
	}

	var files []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && name == "history" {
			return fs.SkipDir // earlier versions of the events' schemas (package evolution)
		}
		if !d.IsDir() && path.Ext(name) == ".avsc" {
			files = append(files, name)
		}
		return nil
	})
	if err != nil {
		p.add(fmt.Errorf("list schemas: %w", err))
	}
	for _, name := range files {
		switch events := users[name]; len(events) {
		case 0:
			p.addf("schema %s: no event in the catalog uses it; add the event or delete the file", name)
		case 1:
		default:
			p.addf("schema %s: used by events %s; each event has its own schema", name, strings.Join(events, ", "))
		}
	}
	return p.err()
}

func checkSchema(p *problems, fsys fs.FS, at string, e Event) {
	data, err := fs.ReadFile(fsys, e.Schema)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.addf("%s: schema file %s does not exist", at, e.Schema)
		return
	case err != nil:
		p.add(fmt.Errorf("%s: read schema %s: %w", at, e.Schema, err))
		return
	}

	schema, err := avro.ParseBytesWithCache(data, "", &avro.SchemaCache{})
	if err != nil {
		p.add(&invalidError{msg: fmt.Sprintf("%s: parse schema %s", at, e.Schema), err: err})
		return
	}
	rec, ok := schema.(*avro.RecordSchema)
	if !ok {
		p.addf("%s: schema %s is a %s, not a record", at, e.Schema, schema.Type())
		return
	}
	if rec.Name() != e.Name {
		p.addf("%s: schema %s defines record %s; the record must be named after the event", at, e.Schema, rec.Name())
	}
	if e.Key == "" {
		return
	}
	i := slices.IndexFunc(rec.Fields(), func(f *avro.Field) bool { return f.Name() == e.Key })
	if i < 0 {
		p.addf("%s: key field %s is not a field of record %s in %s", at, e.Key, rec.Name(), e.Schema)
		return
	}
	if typ := rec.Fields()[i].Type().Type(); typ != avro.String {
		p.addf("%s: key field %s in %s is a %s; a key must be a string", at, e.Key, e.Schema, typ)
	}
}
