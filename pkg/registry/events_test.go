package registry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/registry"
)

// TestEventSchemasKeepTheirDocs: the codec registers every event's .avsc text as written, and the
// registry serves it back unchanged, doc strings included, by ID and under a Confluent
// deserializer's <topic>-value hint.
func TestEventSchemasKeepTheirDocs(t *testing.T) {
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
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(ctx, cl, types)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types.Types() {
		if !strings.Contains(typ.Text, `"doc"`) {
			t.Fatalf("%s: schema text has no doc string: %s", typ.Name, typ.Text)
		}
		got, err := cl.SchemaByID(sr.WithParams(ctx, sr.Subject(typ.Topic+"-value")), c.SchemaID(typ))
		if err != nil {
			t.Fatalf("%s: %v", typ.Name, err)
		}
		if got.Schema != typ.Text {
			t.Errorf("%s: registry serves\n%s\nwant the .avsc text\n%s", typ.Name, got.Schema, typ.Text)
		}
	}
}
