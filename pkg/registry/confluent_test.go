package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Schemas of the conformance scenario. a1 has a doc string and irregular spacing: the registry
// must hand back exactly this text.
const (
	a1 = `{"type":"record","name":"A","namespace":"t","doc":"Kept as written.",  "fields":[{"name":"x","type":"string","doc":"The x."}]}`
	// a2 adds a field with a default: BACKWARD compatible with a1.
	a2 = `{"type":"record","name":"A","namespace":"t","fields":[{"name":"x","type":"string"},{"name":"y","type":"int","default":0}]}`
	// a3 adds a field without a default: not BACKWARD compatible with a1 or a2.
	a3 = `{"type":"record","name":"A","namespace":"t","fields":[{"name":"x","type":"string"},{"name":"z","type":"string"}]}`
	b1 = `{"type":"record","name":"B","fields":[{"name":"q","type":"long"}]}`
	// d1..d3: d3 reads d2 (BACKWARD) but not d1 (BACKWARD_TRANSITIVE).
	d1 = `{"type":"record","name":"D","fields":[{"name":"a","type":"string"}]}`
	d2 = `{"type":"record","name":"D","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":""}]}`
	d3 = `{"type":"record","name":"D","fields":[{"name":"b","type":"string"}]}`
)

func schemaReq(s string) string {
	b, _ := json.Marshal(map[string]string{"schema": s})
	return string(b)
}

func errBody(code int, msg string) string {
	b, _ := json.Marshal(map[string]any{"error_code": code, "message": msg})
	return string(b)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestConfluentRESTSemantics runs one scenario through every endpoint and compares each status
// code and body with what Confluent Schema Registry documents for it (API reference: error codes
// 40401 subject not found, 40402 version not found, 40403 schema not found, 40404/40405 subject
// (not) soft-deleted, 40406/40407 version (not) soft-deleted, 40408 no subject-level config,
// 409 incompatible schema, 42201 invalid schema, 42202 invalid version, 42203 invalid
// compatibility level, 42204 invalid mode, 42205 operation not permitted).
func TestConfluentRESTSemantics(t *testing.T) {
	t.Parallel()
	s := start(t)
	steps := []struct {
		name, method, path, body string
		status                   int
		want                     string // exact JSON (compared as JSON) or raw text for /schema endpoints
		contains                 []string
	}{
		{name: "default compatibility is BACKWARD", method: "GET", path: "/config", status: 200, want: `{"compatibilityLevel":"BACKWARD"}`},
		{name: "no subjects", method: "GET", path: "/subjects", status: 200, want: `[]`},
		{name: "unknown id", method: "GET", path: "/schemas/ids/1", status: 404, want: errBody(40403, "Schema 1 not found")},
		{name: "id not a number", method: "GET", path: "/schemas/ids/abc", status: 404, want: errBody(40403, "Schema abc not found")},
		{name: "register", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(a1), status: 200, want: `{"id":1}`},
		{name: "register again is idempotent", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(a1), status: 200, want: `{"id":1}`},
		{name: "register with schemaType AVRO", method: "POST", path: "/subjects/a-value/versions", body: `{"schemaType":"AVRO","schema":` + jsonOf(a1) + `}`, status: 200, want: `{"id":1}`},
		{name: "invalid schema", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(`{"type":"record","name":"A"`), status: 422, contains: []string{`"error_code":42201`, "Invalid schema"}},
		{name: "unknown type name", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(`{"type":"record","name":"A","fields":[{"name":"x","type":"Nope"}]}`), status: 422, contains: []string{`"error_code":42201`}},
		{name: "schema by id, text as registered", method: "GET", path: "/schemas/ids/1", status: 200, want: jsonOf(map[string]string{"schema": a1})},
		{name: "subject is only a hint", method: "GET", path: "/schemas/ids/1?subject=accounts-value", status: 200, want: jsonOf(map[string]string{"schema": a1})},
		{name: "raw schema by id", method: "GET", path: "/schemas/ids/1/schema", status: 200, want: a1},
		{name: "same schema in another subject shares the id", method: "POST", path: "/subjects/b-value/versions", body: schemaReq(a1), status: 200, want: `{"id":1}`},
		{name: "versions of an id", method: "GET", path: "/schemas/ids/1/versions", status: 200, want: `[{"subject":"a-value","version":1},{"subject":"b-value","version":1}]`},
		{name: "subjects of an id", method: "GET", path: "/schemas/ids/1/subjects", status: 200, want: `["a-value","b-value"]`},
		{name: "subjects of an unknown id", method: "GET", path: "/schemas/ids/9/subjects", status: 404, want: errBody(40403, "Schema 9 not found")},
		{name: "incompatible, verbose", method: "POST", path: "/compatibility/subjects/a-value/versions/latest?verbose=true", body: schemaReq(a3), status: 200,
			contains: []string{`"is_compatible":false`, `READER_FIELD_MISSING_DEFAULT_VALUE`, `additionalInfo:'z'`, `{oldSchemaVersion: 1}`}},
		{name: "compatible", method: "POST", path: "/compatibility/subjects/a-value/versions/latest", body: schemaReq(a2), status: 200, want: `{"is_compatible":true}`},
		{name: "compatible, verbose", method: "POST", path: "/compatibility/subjects/a-value/versions/1?verbose=true", body: schemaReq(a2), status: 200, want: `{"is_compatible":true,"messages":[]}`},
		{name: "compatibility against a missing version", method: "POST", path: "/compatibility/subjects/a-value/versions/7", body: schemaReq(a2), status: 404, want: errBody(40402, "Version 7 not found.")},
		{name: "compatibility against a missing subject", method: "POST", path: "/compatibility/subjects/nope/versions/1", body: schemaReq(a2), status: 404, want: errBody(40401, "Subject 'nope' not found.")},
		{name: "compatibility of a new subject's latest", method: "POST", path: "/compatibility/subjects/nope/versions/latest", body: schemaReq(a2), status: 200, want: `{"is_compatible":true}`},
		{name: "register incompatible", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(a3), status: 409,
			contains: []string{`"error_code":409`, `Schema being registered is incompatible with an earlier schema for subject \"a-value\"`, `additionalInfo:'z'`}},
		{name: "register compatible", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(a2), status: 200, want: `{"id":2}`},
		{name: "list versions", method: "GET", path: "/subjects/a-value/versions", status: 200, want: `[1,2]`},
		{name: "latest", method: "GET", path: "/subjects/a-value/versions/latest", status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 2, "id": 2, "schema": a2})},
		{name: "-1 is latest", method: "GET", path: "/subjects/a-value/versions/-1", status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 2, "id": 2, "schema": a2})},
		{name: "version 1", method: "GET", path: "/subjects/a-value/versions/1", status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 1, "id": 1, "schema": a1})},
		{name: "raw schema of a version", method: "GET", path: "/subjects/a-value/versions/1/schema", status: 200, want: a1},
		{name: "missing version", method: "GET", path: "/subjects/a-value/versions/3", status: 404, want: errBody(40402, "Version 3 not found.")},
		{name: "version 0", method: "GET", path: "/subjects/a-value/versions/0", status: 422, want: errBody(42202, `The specified version '0' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`)},
		{name: "version not a number", method: "GET", path: "/subjects/a-value/versions/abc", status: 422, contains: []string{`"error_code":42202`}},
		{name: "versions of a missing subject", method: "GET", path: "/subjects/nope/versions", status: 404, want: errBody(40401, "Subject 'nope' not found.")},
		{name: "version of a missing subject", method: "GET", path: "/subjects/nope/versions/1", status: 404, want: errBody(40401, "Subject 'nope' not found.")},
		{name: "lookup", method: "POST", path: "/subjects/a-value", body: schemaReq(a1), status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 1, "id": 1, "schema": a1})},
		{name: "lookup ignores white space", method: "POST", path: "/subjects/a-value", body: schemaReq(strings.ReplaceAll(a1, "  ", "\n")), status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 1, "id": 1, "schema": a1})},
		{name: "lookup of a schema not in the subject", method: "POST", path: "/subjects/a-value", body: schemaReq(b1), status: 404, want: errBody(40403, "Schema not found")},
		{name: "lookup in a missing subject", method: "POST", path: "/subjects/nope", body: schemaReq(a1), status: 404, want: errBody(40401, "Subject 'nope' not found.")},
		{name: "invalid compatibility level", method: "PUT", path: "/config", body: `{"compatibility":"SIDEWAYS"}`, status: 422,
			want: errBody(42203, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")},
		{name: "subject compatibility NONE", method: "PUT", path: "/config/a-value", body: `{"compatibility":"NONE"}`, status: 200, want: `{"compatibility":"NONE"}`},
		{name: "subject config", method: "GET", path: "/config/a-value", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{name: "subject without config", method: "GET", path: "/config/b-value", status: 404, want: errBody(40408, "Subject 'b-value' does not have subject-level compatibility configured")},
		{name: "subject config defaulting to global", method: "GET", path: "/config/b-value?defaultToGlobal=true", status: 200, want: `{"compatibilityLevel":"BACKWARD"}`},
		{name: "NONE registers anything", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(a3), status: 200, want: `{"id":3}`},
		{name: "delete subject config", method: "DELETE", path: "/config/a-value", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{name: "global FORWARD", method: "PUT", path: "/config", body: `{"compatibility":"forward"}`, status: 200, want: `{"compatibility":"FORWARD"}`},
		{name: "FORWARD accepts a field without default", method: "POST", path: "/compatibility/subjects/b-value/versions/latest", body: schemaReq(a3), status: 200, want: `{"is_compatible":true}`},
		{name: "global FULL", method: "PUT", path: "/config", body: `{"compatibility":"FULL"}`, status: 200, want: `{"compatibility":"FULL"}`},
		{name: "FULL refuses it", method: "POST", path: "/compatibility/subjects/b-value/versions/latest", body: schemaReq(a3), status: 200, want: `{"is_compatible":false}`},
		{name: "global BACKWARD_TRANSITIVE", method: "PUT", path: "/config", body: `{"compatibility":"BACKWARD_TRANSITIVE"}`, status: 200, want: `{"compatibility":"BACKWARD_TRANSITIVE"}`},
		{name: "d1", method: "POST", path: "/subjects/d-value/versions", body: schemaReq(d1), status: 200, want: `{"id":4}`},
		{name: "d2", method: "POST", path: "/subjects/d-value/versions", body: schemaReq(d2), status: 200, want: `{"id":5}`},
		{name: "d3 reads the latest", method: "POST", path: "/compatibility/subjects/d-value/versions/latest", body: schemaReq(d3), status: 200, want: `{"is_compatible":true}`},
		{name: "d3 does not read every version", method: "POST", path: "/compatibility/subjects/d-value/versions", body: schemaReq(d3), status: 200, want: `{"is_compatible":false}`},
		{name: "transitive refuses d3", method: "POST", path: "/subjects/d-value/versions", body: schemaReq(d3), status: 409, contains: []string{`{oldSchemaVersion: 1}`, `additionalInfo:'b'`}},
		{name: "permanent delete of a live version", method: "DELETE", path: "/subjects/a-value/versions/1?permanent=true", status: 404, want: errBody(40407, "Subject 'a-value' Version 1 was not deleted first before being permanently deleted")},
		{name: "soft delete a version", method: "DELETE", path: "/subjects/a-value/versions/1", status: 200, want: `1`},
		{name: "soft delete it again", method: "DELETE", path: "/subjects/a-value/versions/1", status: 404, want: errBody(40406, "Subject 'a-value' Version 1 was soft deleted.Set permanent=true to delete permanently")},
		{name: "versions without deleted", method: "GET", path: "/subjects/a-value/versions", status: 200, want: `[2,3]`},
		{name: "versions with deleted", method: "GET", path: "/subjects/a-value/versions?deleted=true", status: 200, want: `[1,2,3]`},
		{name: "soft-deleted version hidden", method: "GET", path: "/subjects/a-value/versions/1", status: 404, want: errBody(40402, "Version 1 not found.")},
		{name: "soft-deleted version with deleted", method: "GET", path: "/subjects/a-value/versions/1?deleted=true", status: 200, want: jsonOf(map[string]any{"subject": "a-value", "version": 1, "id": 1, "schema": a1})},
		{name: "soft-deleted schema still by id", method: "GET", path: "/schemas/ids/1/versions?deleted=true", status: 200, want: `[{"subject":"a-value","version":1},{"subject":"b-value","version":1}]`},
		{name: "permanent delete of a soft-deleted version", method: "DELETE", path: "/subjects/a-value/versions/1?permanent=true", status: 200, want: `1`},
		{name: "permanent delete of a live subject", method: "DELETE", path: "/subjects/b-value?permanent=true", status: 404, want: errBody(40405, "Subject 'b-value' was not deleted first before being permanently deleted")},
		{name: "soft delete a subject", method: "DELETE", path: "/subjects/b-value", status: 200, want: `[1]`},
		{name: "soft delete it again", method: "DELETE", path: "/subjects/b-value", status: 404, want: errBody(40404, "Subject 'b-value' was soft deleted.Set permanent=true to delete permanently")},
		{name: "subjects", method: "GET", path: "/subjects", status: 200, want: `["a-value","d-value"]`},
		{name: "subjects with deleted", method: "GET", path: "/subjects?deleted=true", status: 200, want: `["a-value","b-value","d-value"]`},
		{name: "soft-deleted schema still served by id", method: "GET", path: "/schemas/ids/1", status: 200, want: jsonOf(map[string]string{"schema": a1})},
		{name: "permanent delete of a soft-deleted subject", method: "DELETE", path: "/subjects/b-value?permanent=true", status: 200, want: `[1]`},
		{name: "permanently deleted schema is gone", method: "GET", path: "/schemas/ids/1", status: 404, want: errBody(40403, "Schema 1 not found")},
		{name: "delete a missing subject", method: "DELETE", path: "/subjects/b-value", status: 404, want: errBody(40401, "Subject 'b-value' not found.")},
		{name: "mode", method: "GET", path: "/mode", status: 200, want: `{"mode":"READWRITE"}`},
		{name: "invalid mode", method: "PUT", path: "/mode", body: `{"mode":"SIDEWAYS"}`, status: 422, contains: []string{`"error_code":42204`}},
		{name: "subject read-only", method: "PUT", path: "/mode/a-value", body: `{"mode":"READONLY"}`, status: 200, want: `{"mode":"READONLY"}`},
		{name: "read-only refuses registration", method: "POST", path: "/subjects/a-value/versions", body: schemaReq(b1), status: 422, contains: []string{`"error_code":42205`}},
		{name: "subject mode", method: "GET", path: "/mode/a-value", status: 200, want: `{"mode":"READONLY"}`},
		{name: "delete subject mode", method: "DELETE", path: "/mode/a-value", status: 200, want: `{"mode":"READONLY"}`},
		{name: "a referenced schema", method: "POST", path: "/subjects/addr-value/versions", body: schemaReq(`{"type":"record","name":"Address","namespace":"t","fields":[{"name":"city","type":"string"}]}`), status: 200, want: `{"id":6}`},
		{name: "a schema with a reference", method: "POST", path: "/subjects/cust-value/versions",
			body:   `{"schema":` + jsonOf(`{"type":"record","name":"Customer","namespace":"t","fields":[{"name":"home","type":"t.Address"}]}`) + `,"references":[{"name":"t.Address","subject":"addr-value","version":1}]}`,
			status: 200, want: `{"id":7}`},
		{name: "references are returned", method: "GET", path: "/schemas/ids/7", status: 200,
			want: jsonOf(map[string]any{"schema": `{"type":"record","name":"Customer","namespace":"t","fields":[{"name":"home","type":"t.Address"}]}`, "references": []map[string]any{{"name": "t.Address", "subject": "addr-value", "version": 1}}})},
		{name: "referenced by", method: "GET", path: "/subjects/addr-value/versions/1/referencedby", status: 200, want: `[7]`},
		{name: "a referenced version cannot be deleted", method: "DELETE", path: "/subjects/addr-value/versions/1", status: 422, contains: []string{`"error_code":42206`}},
		{name: "an unresolvable reference", method: "POST", path: "/subjects/cust2-value/versions",
			body:   `{"schema":` + jsonOf(`{"type":"record","name":"C2","fields":[{"name":"home","type":"t.Address"}]}`) + `,"references":[{"name":"t.Address","subject":"addr-value","version":9}]}`,
			status: 422, contains: []string{`"error_code":42201`}},
		{name: "schema types", method: "GET", path: "/schemas/types", status: 200, want: `["AVRO","JSON","PROTOBUF"]`},
		{name: "trailing slash", method: "GET", path: "/subjects/", status: 200, want: `["a-value","addr-value","cust-value","d-value"]`},
		{name: "unknown path", method: "GET", path: "/nothing/here", status: 404, contains: []string{`"error_code":404`}},
	}
	for _, st := range steps {
		var body io.Reader
		if st.body != "" {
			body = strings.NewReader(st.body)
		}
		req, err := http.NewRequest(st.method, s.URL()+st.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != st.status {
			t.Errorf("%s: %s %s: status %d, want %d; body %s", st.name, st.method, st.path, resp.StatusCode, st.status, got)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != contentType {
			t.Errorf("%s: Content-Type %q, want %q", st.name, ct, contentType)
		}
		raw := strings.HasSuffix(st.path, "/schema")
		if st.want != "" && ((raw && st.want != string(got)) || (!raw && !sameJSON(st.want, string(got)))) {
			t.Errorf("%s: %s %s:\n got %s\nwant %s", st.name, st.method, st.path, got, st.want)
		}
		for _, c := range st.contains {
			if !strings.Contains(string(got), c) {
				t.Errorf("%s: body %s does not contain %s", st.name, got, c)
			}
		}
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
