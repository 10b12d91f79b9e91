package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCatalogAsyncAPI: the command writes one document per service into the directory, removes
// the document of a service the catalog no longer has, and writes the same to stdout with -o -.
func TestCatalogAsyncAPI(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	stale := filepath.Join(out, "gone-service.asyncapi.yaml")
	keep := filepath.Join(out, "README.md")
	for _, f := range []string{stale, keep} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, "catalog", "asyncapi", "-o", out, "-kafka", "kafka.example:9092", "-schema-registry", "http://sr.example:8081")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"README.md", "account-service.asyncapi.yaml", "notification-service.asyncapi.yaml", "user-service.asyncapi.yaml"}
	if !slices.Equal(names, want) {
		t.Errorf("directory holds %v, want %v", names, want)
	}
	b, err := os.ReadFile(filepath.Join(out, "user-service.asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"host: kafka.example:9092", "schemaRegistryUrl: http://sr.example:8081", "asyncapi: 3.0.0"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("document does not say %q", s)
		}
	}

	r = run(t, "catalog", "asyncapi", "-o", "-", "-kafka", "kafka.example:9092", "-schema-registry", "http://sr.example:8081")
	if r.code != 0 || !strings.Contains(r.stdout.String(), "---\n"+string(b)) {
		t.Errorf("-o - (exit status %d) does not print the user-service document\nstderr:\n%s", r.code, r.stderr.String())
	}
}
