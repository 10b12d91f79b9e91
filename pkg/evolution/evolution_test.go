package evolution_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/evolution"
	"github.com/choreo-dev/choreo/pkg/registry"
)

const catalogYAML = `
events:
  - name: Greeted
    topic: greetings
    key: id
    schema: greeted.avsc
    producer: greeter
    description: Someone was greeted.%s
services:
  - name: greeter
    description: Greets.
    produces: [Greeted]
`

const (
	v1 = `{"type":"record","name":"Greeted","namespace":"t.v1","fields":[{"name":"id","type":"string"},{"name":"name","type":"string"}]}`
	// withLocale adds a field with a default: compatible in every direction.
	withLocale = `{"type":"record","name":"Greeted","namespace":"t.v1","fields":[{"name":"id","type":"string"},{"name":"name","type":"string"},{"name":"locale","type":"string","default":"en"}]}`
	// requiredLocale adds a field without a default: old events cannot be read.
	requiredLocale = `{"type":"record","name":"Greeted","namespace":"t.v1","fields":[{"name":"id","type":"string"},{"name":"name","type":"string"},{"name":"locale","type":"string"}]}`
	// noName drops a field without a default: consumers on v1 cannot read new events.
	noName = `{"type":"record","name":"Greeted","namespace":"t.v1","fields":[{"name":"id","type":"string"}]}`
	// intName changes a type incompatibly.
	intName = `{"type":"record","name":"Greeted","namespace":"t.v1","fields":[{"name":"id","type":"string"},{"name":"name","type":"int"}]}`
)

func schemasFS(level, current string, history ...string) fstest.MapFS {
	extra := ""
	if level != "" {
		extra = "\n    compatibility: " + level
	}
	fsys := fstest.MapFS{
		"catalog.yaml": {Data: []byte(strings.Replace(catalogYAML, "%s", extra, 1))},
		"greeted.avsc": {Data: []byte(current)},
	}
	for i, h := range history {
		fsys["history/Greeted/v"+string(rune('1'+i))+".avsc"] = &fstest.MapFile{Data: []byte(h)}
	}
	return fsys
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr error
		want    []string // in the error
	}{
		{name: "unchanged", fsys: schemasFS("", v1, v1)},
		{name: "compatible edit not recorded", fsys: schemasFS("", withLocale, v1), wantErr: evolution.ErrUnrecorded,
			want: []string{"Greeted", "greeted.avsc", "history/Greeted/v2.avsc"}},
		{name: "compatible edit recorded", fsys: schemasFS("", withLocale, v1, withLocale)},
		{name: "no history yet", fsys: schemasFS("", v1), wantErr: evolution.ErrUnrecorded, want: []string{"history/Greeted/v1.avsc"}},
		{name: "new field without default", fsys: schemasFS("", requiredLocale, v1), wantErr: evolution.ErrIncompatible,
			want: []string{"Greeted: field locale breaks BACKWARD_TRANSITIVE (READER_FIELD_MISSING_DEFAULT_VALUE)", "greeted.avsc cannot read events written with history/Greeted/v1.avsc"}},
		{name: "transitive: breaks v1 only", fsys: schemasFS("", requiredLocale, v1, withLocale), wantErr: evolution.ErrIncompatible,
			want: []string{"field locale", "history/Greeted/v1.avsc"}},
		{name: "non-transitive BACKWARD: only the latest counts", fsys: schemasFS("BACKWARD", requiredLocale, v1, withLocale), wantErr: evolution.ErrUnrecorded},
		{name: "type change", fsys: schemasFS("", intName, v1), wantErr: evolution.ErrIncompatible, want: []string{"field name", "TYPE_MISMATCH"}},
		{name: "dropped field is BACKWARD", fsys: schemasFS("", noName, v1), wantErr: evolution.ErrUnrecorded},
		{name: "dropped field breaks FORWARD", fsys: schemasFS("FORWARD", noName, v1), wantErr: evolution.ErrIncompatible,
			want: []string{"field name breaks FORWARD (READER_FIELD_MISSING_DEFAULT_VALUE)", "consumers still on history/Greeted/v1.avsc cannot read events written with greeted.avsc"}},
		{name: "NONE allows anything", fsys: schemasFS("NONE", intName, v1, intName)},
		{name: "a rewritten history version is checked too", fsys: schemasFS("", withLocale, v1, requiredLocale, withLocale), wantErr: evolution.ErrIncompatible,
			want: []string{"history/Greeted/v2.avsc cannot read events written with history/Greeted/v1.avsc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cat, err := catalog.Load(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := evolution.Check(tc.fsys, cat)
			if err != nil {
				t.Fatal(err)
			}
			err = rep.Err()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Err() = %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHistoryMustBeComplete(t *testing.T) {
	t.Parallel()
	cases := map[string]fstest.MapFS{
		"gap":           {"history/Greeted/v2.avsc": {Data: []byte(v1)}},
		"stray file":    {"history/Greeted/latest.avsc": {Data: []byte(v1)}},
		"unknown event": {"history/Nope/v1.avsc": {Data: []byte(v1)}},
		"bad schema":    {"history/Greeted/v1.avsc": {Data: []byte(`{"type":"record"`)}},
	}
	for name, files := range cases {
		fsys := schemasFS("", v1)
		for k, v := range files {
			fsys[k] = v
		}
		cat, err := catalog.Load(fsys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := evolution.Check(fsys, cat); !errors.Is(err, evolution.ErrHistory) {
			t.Errorf("%s: Check error %v, want ErrHistory", name, err)
		}
	}
}

func TestRecordAppends(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, f := range schemasFS("", withLocale, v1) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := os.DirFS(dir)
	cat, err := catalog.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evolution.Check(fsys, cat)
	if err != nil {
		t.Fatal(err)
	}
	if err := evolution.Record(dir, rep); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "history", "Greeted", "v2.avsc")); string(got) != withLocale {
		t.Fatalf("v2.avsc = %q", got)
	}
	if rep, err = evolution.Check(fsys, cat); err != nil || rep.Err() != nil {
		t.Fatalf("after Record: %v, %v", err, rep.Err())
	}
	// Recording never overwrites a version.
	if err := evolution.Record(dir, &evolution.Report{Unrecorded: []evolution.Unrecorded{{Event: "Greeted", Schema: "greeted.avsc", Next: "history/Greeted/v1.avsc"}}}); err == nil {
		t.Error("Record overwrote v1.avsc")
	}
}

// TestCheckRegistry runs the gate against a live registry: the subject's versions take the
// place of the history.
func TestCheckRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := registry.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cl, err := sr.NewClient(sr.URLs(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	check := func(current string) error {
		fsys := schemasFS("", current)
		cat, err := catalog.Load(fsys)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := evolution.CheckRegistry(ctx, cl, fsys, cat, "ns")
		if err != nil {
			t.Fatal(err)
		}
		return rep.Err()
	}
	if err := check(requiredLocale); err != nil {
		t.Fatalf("nothing registered yet: %v", err)
	}
	if _, err := cl.CreateSchema(ctx, "ns.greetings-t.v1.Greeted", sr.Schema{Schema: v1}); err != nil {
		t.Fatal(err)
	}
	if err := check(withLocale); err != nil {
		t.Errorf("compatible: %v", err)
	}
	err = check(requiredLocale)
	if !errors.Is(err, evolution.ErrIncompatible) || !strings.Contains(err.Error(), "field locale") ||
		!strings.Contains(err.Error(), "registry subject ns.greetings-t.v1.Greeted version 1") {
		t.Errorf("incompatible: %v", err)
	}
}
