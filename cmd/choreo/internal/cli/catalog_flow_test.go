package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/catalog"
)

// largeCatalog is the generated catalog of 300 events, relative to this package's directory.
var largeCatalog = filepath.Join("..", "..", "..", "..", "pkg", "catalog", "testdata", "large")

func TestCatalogImpactAndCheckUsage(t *testing.T) {
	t.Parallel()
	runUsage(t, []usageCase{
		{name: "impact without a name", args: []string{"catalog", "impact"}, wantCode: 2, wantStderr: []string{"want 1 argument(s), got 0"}},
		{name: "impact of an unknown name", args: []string{"catalog", "impact", "AccountFrozen"}, wantCode: 1,
			wantStderr: []string{`"AccountFrozen": not in the catalog`}},
		{name: "impact of an event", args: []string{"catalog", "impact", "AccountCreated"}, wantCode: 0, wantStdout: []string{
			"impact of event AccountCreated\n", "consumers (1):\n  user-service\n",
			"downstream events (2):\n  UserCreated\n  UserRegistrationRejected\n",
			"chains (2):\n  Account registration → notification-service effect welcome email\n" +
				"  Account registration rejected → account-service effect account rejected\n",
			"effects (2):\n  account-service: account rejected\n  notification-service: welcome email\n"}},
		{name: "impact of a service", args: []string{"catalog", "impact", "notification-service"}, wantCode: 0, wantStdout: []string{
			"impact of service notification-service\n", "produces (0): none\n", "consumers (0): none\n",
			"effects (2):\n  notification-service: farewell email\n  notification-service: welcome email\n"}},
		{name: "check the real catalog", args: []string{"catalog", "check"}, wantCode: 0,
			wantStdout: []string{"catalog ok: 5 events, 3 services, 3 chains, 0 warning(s)\n"}},
		{name: "check the large catalog", args: []string{"catalog", "check", "-schemas", largeCatalog}, wantCode: 0,
			wantStdout: []string{"catalog ok: 300 events, 60 services, 120 chains, 0 warning(s)\n"}},
		{name: "check a directory without a catalog", args: []string{"catalog", "check", "-schemas", t.TempDir()}, wantCode: 1,
			wantStderr: []string{"catalog.yaml"}},
	})
}

func TestCatalogImpactJSON(t *testing.T) {
	t.Parallel()
	large, err := catalog.Load(os.DirFS(largeCatalog))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want func(t *testing.T, im catalog.Impact)
	}{
		{"real catalog, service", []string{"user-service"}, func(t *testing.T, im catalog.Impact) {
			if im.Kind != "service" || !slices.Equal(im.Consumers, []string{"account-service", "notification-service"}) ||
				len(im.Chains) != 3 || len(im.Effects) != 3 {
				t.Errorf("impact = %+v", im)
			}
		}},
		{"large catalog, first event", []string{"-schemas", largeCatalog, large.Events[0].Name}, func(t *testing.T, im catalog.Impact) {
			want, err := large.Impact(large.Events[0].Name)
			if err != nil {
				t.Fatal(err)
			}
			if im.Subject != want.Subject || !slices.Equal(im.Downstream, want.Downstream) ||
				!slices.Equal(im.Chains, want.Chains) || !slices.Equal(im.Effects, want.Effects) || len(im.Chains) == 0 {
				t.Errorf("impact = %+v, want %+v", im, want)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append([]string{"catalog", "impact", "-json"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit status = %d\nstderr:\n%s", r.code, r.stderr.String())
			}
			var im catalog.Impact
			if err := json.Unmarshal(r.stdout.Bytes(), &im); err != nil {
				t.Fatalf("output is not an impact in JSON: %v\n%s", err, r.stdout.String())
			}
			tc.want(t, im)
		})
	}
}

// writeCatalogDir writes a catalog with its schemas (a record with a string id per event).
func writeCatalogDir(t *testing.T, yaml string, events ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "catalog.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		avsc := `{"type":"record","name":"` + e + `","fields":[{"name":"id","type":"string"}]}`
		if err := os.WriteFile(filepath.Join(dir, strings.ToLower(e)+".avsc"), []byte(avsc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCatalogCheckFindings(t *testing.T) {
	t.Parallel()
	const events = `events:
  - {name: X, topic: t, key: id, schema: x.avsc, producer: a, description: x happened}
  - {name: Y, topic: t, key: id, schema: y.avsc, producer: b, description: y happened}
  - {name: Audit, topic: t, key: id, schema: audit.avsc, producer: a, description: audited}
`
	t.Run("a cycle fails the check", func(t *testing.T) {
		t.Parallel()
		dir := writeCatalogDir(t, events+`services:
  - {name: a, group: a, description: A, consumes: [Y], produces: [X, Audit]}
  - {name: b, group: b, description: B, consumes: [X], produces: [Y], effects: [done]}
chains:
  - name: loop
    description: never ends
    trigger: POST /x
    steps:
      - {service: a, emits: X}
      - {service: b, emits: Y}
      - {service: a, emits: X}
      - {service: b, effect: done}
`, "X", "Y", "Audit")
		r := run(t, "catalog", "check", "-schemas", dir)
		if r.code != 1 {
			t.Fatalf("exit status = %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout.String(), r.stderr.String())
		}
		for _, want := range []string{"error: events X → Y → X form a cycle", "warning: event Audit is used by no chain"} {
			if !strings.Contains(r.stdout.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout.String())
			}
		}
		if !strings.Contains(r.stderr.String(), "1 error(s) in the flow of the catalog") {
			t.Errorf("stderr = %q", r.stderr.String())
		}
	})
	t.Run("warnings alone pass", func(t *testing.T) {
		t.Parallel()
		dir := writeCatalogDir(t, events+`services:
  - {name: a, description: A, produces: [X, Audit]}
  - {name: b, group: b, description: B, consumes: [X], produces: [Y]}
chains:
  - name: fine
    description: ends
    trigger: POST /x
    steps:
      - {service: a, emits: X}
      - {service: b, emits: Y}
`, "X", "Y", "Audit")
		r := run(t, "catalog", "check", "-schemas", dir)
		if r.code != 0 {
			t.Fatalf("exit status = %d, want 0\nstderr:\n%s", r.code, r.stderr.String())
		}
		want := "warning: event Audit is used by no chain; add the operation that publishes it to chains\n" +
			"catalog ok: 3 events, 2 services, 1 chains, 1 warning(s)\n"
		if r.stdout.String() != want {
			t.Errorf("stdout = %q, want %q", r.stdout.String(), want)
		}
	})
}

func TestCatalogDocsDir(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	r := run(t, "catalog", "docs", "-schemas", largeCatalog, "-dir", out)
	if r.code != 0 {
		t.Fatalf("exit status = %d\nstderr:\n%s", r.code, r.stderr.String())
	}
	for dir, want := range map[string]int{"services": 60, "chains": 120} {
		entries, err := os.ReadDir(filepath.Join(out, dir))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != want {
			t.Errorf("%s/ has %d pages, want %d", dir, len(entries), want)
		}
	}
	index, err := os.ReadFile(filepath.Join(out, "index.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(index), "120 chains, 60 services, 300 events.") {
		t.Errorf("index.md does not count the catalog:\n%.300s", index)
	}
}
