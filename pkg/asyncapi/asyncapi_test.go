package asyncapi_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/choreo-dev/choreo/pkg/asyncapi"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

// dir is schemas/asyncapi, where the generated documents are checked in.
var dir = filepath.Join("..", "..", "schemas", "asyncapi")

func generate(t *testing.T) (*catalog.Catalog, map[string][]byte) {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := asyncapi.GenerateAll(cat, schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	return cat, docs
}

// TestDocumentsUpToDate fails when schemas/asyncapi no longer holds exactly what the catalog
// and the schemas generate.
func TestDocumentsUpToDate(t *testing.T) {
	t.Parallel()
	_, docs := generate(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var have, want []string
	for _, f := range files {
		have = append(have, filepath.Base(f))
	}
	for name := range docs {
		want = append(want, name)
	}
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Fatalf("schemas/asyncapi holds %v, the catalog generates %v: run `make generate`", have, want)
	}
	for name, b := range docs {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(b) {
			t.Errorf("schemas/asyncapi/%s is stale: run `make generate` (choreo catalog asyncapi)", name)
		}
	}
}

// TestDocumentContent checks each document against the catalog it comes from.
func TestDocumentContent(t *testing.T) {
	t.Parallel()
	cat, docs := generate(t)
	for _, svc := range cat.Services {
		t.Run(svc.Name, func(t *testing.T) {
			t.Parallel()
			var doc map[string]any
			if err := yaml.Unmarshal(docs[asyncapi.FileName(svc.Name)], &doc); err != nil {
				t.Fatal(err)
			}
			get := func(path ...string) any {
				var v any = doc
				for _, p := range path {
					m, ok := v.(map[string]any)
					if !ok {
						t.Fatalf("%s: not an object at %q", strings.Join(path, "."), p)
					}
					v = m[p]
				}
				return v
			}
			if get("asyncapi") != "3.0.0" {
				t.Errorf("asyncapi = %v", get("asyncapi"))
			}
			kafka := get("servers", "local", "bindings", "kafka").(map[string]any)
			if kafka["schemaRegistryUrl"] != "http://localhost:8081" || kafka["schemaRegistryVendor"] != "confluent" {
				t.Errorf("server Kafka binding = %v", kafka)
			}
			if get("servers", "local", "protocol") != "kafka" || get("servers", "local", "host") != "localhost:9092" {
				t.Errorf("server = %v", get("servers", "local"))
			}

			// One operation per event the service sends or receives; receive names its group.
			ops := get("operations").(map[string]any)
			var wantOps []string
			for _, e := range svc.Produces {
				wantOps = append(wantOps, "send"+e)
			}
			for _, e := range svc.Consumes {
				wantOps = append(wantOps, "receive"+e)
				op := ops["receive"+e].(map[string]any)
				group := op["bindings"].(map[string]any)["kafka"].(map[string]any)["groupId"].(map[string]any)
				if !reflect.DeepEqual(group["enum"], []any{svc.Group}) {
					t.Errorf("receive%s groupId = %v, want %s", e, group, svc.Group)
				}
			}
			var gotOps []string
			for name := range ops {
				gotOps = append(gotOps, name)
			}
			sort.Strings(gotOps)
			sort.Strings(wantOps)
			if !slices.Equal(gotOps, wantOps) {
				t.Errorf("operations %v, want %v", gotOps, wantOps)
			}

			for _, name := range append(slices.Clone(svc.Produces), svc.Consumes...) {
				e, _ := cat.Event(name)
				if get("channels", e.Topic, "address") != e.Topic {
					t.Errorf("channel %s address = %v", e.Topic, get("channels", e.Topic, "address"))
				}
				msg := get("components", "messages", name).(map[string]any)
				payload := msg["payload"].(map[string]any)
				if payload["schemaFormat"] != "application/vnd.apache.avro;version=1.9.0" {
					t.Errorf("%s schemaFormat = %v", name, payload["schemaFormat"])
				}
				avsc, err := schemas.FS.ReadFile(e.Schema)
				if err != nil {
					t.Fatal(err)
				}
				var want any
				if err := json.Unmarshal(avsc, &want); err != nil {
					t.Fatal(err)
				}
				if got := jsonRoundTrip(t, payload["schema"]); !reflect.DeepEqual(got, want) {
					t.Errorf("%s payload schema differs from %s:\n got %v\nwant %v", name, e.Schema, got, want)
				}
				if d, _ := msg["description"].(string); !strings.Contains(d, e.Topic+"-") || !strings.Contains(d, string(e.Level())) {
					t.Errorf("%s description %q names neither its subject nor its compatibility %s", name, d, e.Level())
				}
				kb := msg["bindings"].(map[string]any)["kafka"].(map[string]any)
				if kb["schemaIdLocation"] != "payload" || kb["schemaIdPayloadEncoding"] != "confluent" ||
					kb["key"].(map[string]any)["type"] != "string" {
					t.Errorf("%s Kafka message binding = %v", name, kb)
				}
			}
			headers := get("components", "schemas", "CloudEventsHeaders", "properties").(map[string]any)
			for _, h := range []string{"ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion", "content-type", "ce_correlationid", "ce_causationid"} {
				if _, ok := headers[h]; !ok {
					t.Errorf("header %s is not described", h)
				}
			}
		})
	}
}

func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// validator returns the command that validates documents with the AsyncAPI project's parser,
// installing its npm packages first unless they are current (make test installs them before
// the tests run).
func validator(t *testing.T) func(files ...string) (string, error) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the AsyncAPI documents are validated with the npm package @asyncapi/parser (Debian package nodejs; .ci/run installs it)")
	}
	vdir, err := filepath.Abs(filepath.Join(dir, "validate"))
	if err != nil {
		t.Fatal(err)
	}
	if !current(filepath.Join(vdir, "node_modules", ".package-lock.json"), filepath.Join(vdir, "package-lock.json")) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("node is installed but npm is not, so the validator's packages cannot be installed: %v", err)
		}
		cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = vdir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", vdir, err, out)
		}
	}
	return func(files ...string) (string, error) {
		cmd := exec.Command(node, append([]string{filepath.Join(vdir, "validate.js")}, files...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// current says whether installed is at least as new as lock.
func current(installed, lock string) bool {
	i, err := os.Stat(installed)
	if err != nil {
		return false
	}
	l, err := os.Stat(lock)
	return err == nil && !i.ModTime().Before(l.ModTime().Add(-time.Second))
}

// TestDocumentsValid validates the checked-in documents with @asyncapi/parser and the Avro
// schema parser, and proves that the validation fails on broken documents.
func TestDocumentsValid(t *testing.T) {
	t.Parallel()
	validate := validator(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.asyncapi.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents in %s (%v)", dir, err)
	}
	if out, err := validate(files...); err != nil {
		t.Fatalf("the AsyncAPI parser refuses the documents: %v\n%s", err, out)
	}

	// Each edit breaks a valid document in a way the ecosystem's tools would stumble over.
	good, err := os.ReadFile(filepath.Join(dir, asyncapi.FileName("user-service")))
	if err != nil {
		t.Fatal(err)
	}
	broken := []struct {
		name, old, new, want string
	}{
		{"undefined Avro type", "- name: accountId\n              type: string\n", "- name: accountId\n              type: choreo.NoSuchType\n", "the Avro schema does not parse"},
		{"Avro record without fields", "          fields:\n", "          fieldz:\n", "(at components.messages.AccountCreated.payload.schema)"},
		{"operation action of AsyncAPI 2", "action: receive", "action: subscribe", "INVALID"},
		{"operation on a missing channel", "$ref: '#/channels/accounts'", "$ref: '#/channels/nowhere'", "INVALID"},
		{"schema ID encoding without a registry", "schemaRegistryUrl: http://localhost:8081", "url: http://localhost:8081", "INVALID"},
		{"no info version", "  version: 1.0.0\n", "", "INVALID"},
	}
	// One run of the validator for all of them: node takes seconds to start the parser.
	tmp := t.TempDir()
	var paths []string
	for _, b := range broken {
		if !strings.Contains(string(good), b.old) {
			t.Fatalf("%s: the document has no %q to break", b.name, b.old)
		}
		path := filepath.Join(tmp, strings.ReplaceAll(b.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(strings.Replace(string(good), b.old, b.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	out, err := validate(paths...)
	if err == nil {
		t.Fatalf("the validator accepts broken documents:\n%s", out)
	}
	// The output is one section per file: "<file>: valid" or "<file>: INVALID" and its problems.
	sections := map[string]string{}
	var cur string
	for line := range strings.Lines(out) {
		for _, p := range paths {
			if strings.HasPrefix(line, p+": ") {
				cur = p
			}
		}
		sections[cur] += line
	}
	for i, b := range broken {
		sec := sections[paths[i]]
		if !strings.HasPrefix(sec, paths[i]+": INVALID") || !strings.Contains(sec, b.want) {
			t.Errorf("%s: the validator does not refuse it saying %q:\n%s", b.name, b.want, sec)
		}
	}
}
