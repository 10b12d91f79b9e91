package schemas_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

// TestCatalogDocsUpToDate fails when CATALOG.md no longer matches catalog.yaml.
func TestCatalogDocsUpToDate(t *testing.T) {
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	var want bytes.Buffer
	if err := cat.WriteMarkdown(&want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("CATALOG.md")
	if err != nil {
		t.Fatalf("read CATALOG.md: %v (run: make generate)", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("schemas/CATALOG.md is stale: run `make generate` (choreo catalog docs)")
	}
}
