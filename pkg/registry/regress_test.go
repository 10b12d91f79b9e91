package registry

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// call sends one request to the registry and returns the status and the body.
func call(t *testing.T, s *Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

type regStep struct {
	method, path, body string
	status             int
	contains           []string
}

func runSteps(t *testing.T, s *Server, steps []regStep) {
	t.Helper()
	for _, st := range steps {
		status, got := call(t, s, st.method, st.path, st.body)
		if status != st.status {
			t.Errorf("%s %s: status %d, want %d; body %s", st.method, st.path, status, st.status, got)
			continue
		}
		for _, c := range st.contains {
			if !strings.Contains(got, c) {
				t.Errorf("%s %s: body %s does not contain %s", st.method, st.path, got, c)
			}
		}
	}
}

// restart closes s and starts a registry on the same state file, failing the test if the saved
// state is refused.
func restart(t *testing.T, s *Server, file string) *Server {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return start(t, StateFile(file))
}

const refA = `{"type":"record","name":"A","namespace":"t","fields":[{"name":"x","type":"string"}]}`

func refBody(schemaType, schema, subject string, version int) string {
	return `{"schemaType":"` + schemaType + `","schema":` + jsonOf(schema) +
		`,"references":[{"name":"t.A","subject":"` + subject + `","version":` + jsonOf(version) + `}]}`
}

// A schema referenced only by soft-deleted versions must not be permanently deleted: the
// referrer can still be read with deleted=true, and a state file without its reference is
// refused at the next start.
func TestPermanentDeleteRefusesSoftDeletedReferrers(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "registry.json")
	s, err := Start("127.0.0.1:0", StateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, s, []regStep{
		{"POST", "/subjects/a/versions", schemaReq(refA), 200, []string{`"id":1`}},
		{"POST", "/subjects/b/versions", refBody("AVRO", `{"type":"record","name":"B","namespace":"t","fields":[{"name":"a","type":"t.A"}]}`, "a", 1), 200, []string{`"id":2`}},
		{"DELETE", "/subjects/b", "", 200, nil},
		{"DELETE", "/subjects/a", "", 200, nil},
		{"DELETE", "/subjects/a?permanent=true", "", 422, []string{`"error_code":42206`}},
		{"DELETE", "/subjects/a/versions/1?permanent=true", "", 422, []string{`"error_code":42206`}},
	})
	s = restart(t, s, file)
	runSteps(t, s, []regStep{
		{"GET", "/subjects/b/versions/1?deleted=true", "", 200, []string{`"subject":"a"`}},
		// Once the referrer is gone for good, the referenced subject can go too.
		{"DELETE", "/subjects/b?permanent=true", "", 200, nil},
		{"DELETE", "/subjects/a?permanent=true", "", 200, []string{`[1]`}},
	})
}

// References are checked for every schema type, not only Avro: a dangling one is refused as an
// invalid schema instead of being saved in a state file the next start refuses.
func TestReferencesCheckedForEverySchemaType(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "registry.json")
	s, err := Start("127.0.0.1:0", StateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	jsonSchema := `{"type":"object","properties":{"a":{"$ref":"a.json"}}}`
	protoSchema := `syntax = "proto3"; import "a.proto"; message B { A a = 1; }`
	runSteps(t, s, []regStep{
		{"POST", "/subjects/a/versions", schemaReq(refA), 200, []string{`"id":1`}},
		{"POST", "/subjects/j/versions", refBody("JSON", jsonSchema, "a", 2), 422, []string{`"error_code":42201`}},
		{"POST", "/subjects/j/versions", refBody("JSON", jsonSchema, "nope", 1), 422, []string{`"error_code":42201`}},
		{"POST", "/subjects/p/versions", refBody("PROTOBUF", protoSchema, "a", 7), 422, []string{`"error_code":42201`}},
		{"POST", "/subjects/j/versions", refBody("JSON", jsonSchema, "a", 1), 200, []string{`"id":2`}},
	})
	s = restart(t, s, file)
	runSteps(t, s, []regStep{
		{"GET", "/subjects", "", 200, []string{`["a","j"]`}},
	})
}

// Until IMPORT mode is implemented, a register request that asks for a given ID or version is
// refused rather than answered with a different one.
func TestRegisterRefusesIDAndVersion(t *testing.T) {
	t.Parallel()
	s := start(t)
	const msg = "only permitted in IMPORT mode"
	runSteps(t, s, []regStep{
		{"POST", "/subjects/a/versions", `{"schema":` + jsonOf(refA) + `,"id":42}`, 422, []string{`"error_code":42205`, msg}},
		{"POST", "/subjects/a/versions", `{"schema":` + jsonOf(refA) + `,"version":3}`, 422, []string{`"error_code":42205`, msg}},
		{"GET", "/subjects", "", 200, []string{`[]`}},
		{"POST", "/subjects/a/versions", `{"schema":` + jsonOf(refA) + `,"id":0,"version":0}`, 200, []string{`"id":1`}},
	})
}

// "latest" (and -1) in a version delete is the latest live version, as in Confluent: it must not
// reach a soft-deleted version behind it.
func TestDeleteLatestIsTheLatestLiveVersion(t *testing.T) {
	t.Parallel()
	s := start(t)
	runSteps(t, s, []regStep{
		{"PUT", "/config/a", `{"compatibility":"NONE"}`, 200, nil},
		{"POST", "/subjects/a/versions", schemaReq(refA), 200, []string{`"id":1`}},
		{"POST", "/subjects/a/versions", schemaReq(d1), 200, []string{`"id":2`}},
		{"DELETE", "/subjects/a/versions/2", "", 200, []string{`2`}},
		{"DELETE", "/subjects/a/versions/latest?permanent=true", "", 404, []string{`"error_code":40407`, "Version 1"}},
		{"DELETE", "/subjects/a/versions/-1?permanent=true", "", 404, []string{`"error_code":40407`, "Version 1"}},
		{"GET", "/subjects/a/versions?deleted=true", "", 200, []string{`[1,2]`}},
		// A numbered soft-deleted version is still reachable for a permanent delete.
		{"DELETE", "/subjects/a/versions/2?permanent=true", "", 200, []string{`2`}},
		{"DELETE", "/subjects/a/versions/latest", "", 200, []string{`1`}},
		{"DELETE", "/subjects/a/versions/latest", "", 404, []string{`"error_code":40401`}},
	})
}
