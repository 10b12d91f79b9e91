package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

func recordSchema(name string, fields ...string) sr.Schema {
	fs := make([]string, len(fields))
	for i, f := range fields {
		fs[i] = fmt.Sprintf(`{"name":%q,"type":"string","default":""}`, f)
	}
	return sr.Schema{Schema: fmt.Sprintf(`{"type":"record","name":%q,"fields":[%s]}`, name, strings.Join(fs, ","))}
}

func start(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func client(t *testing.T, s *Server) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(s.URL()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return cl
}

func create(t *testing.T, cl *sr.Client, subject string, s sr.Schema) sr.SubjectSchema {
	t.Helper()
	ss, err := cl.CreateSchema(context.Background(), subject, s)
	if err != nil {
		t.Fatalf("CreateSchema(%s): %v", subject, err)
	}
	return ss
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRestartKeepsSubjectsVersionsAndIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "registry.json")

	orderV1 := recordSchema("Order", "id")
	orderV2 := recordSchema("Order", "id", "customer")
	payment := recordSchema("Payment", "id", "amount")

	first, err := Start("127.0.0.1:0", StateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, first)
	want := map[string]sr.SubjectSchema{
		"orders-value/1":   create(t, cl, "orders-value", orderV1),
		"orders-value/2":   create(t, cl, "orders-value", orderV2),
		"payments-value/1": create(t, cl, "payments-value", payment),
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := start(t, StateFile(file))
	cl = client(t, second)

	subjects, err := cl.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(subjects, []string{"orders-value", "payments-value"}) {
		t.Errorf("Subjects = %v", subjects)
	}
	for subject, n := range map[string]int{"orders-value": 2, "payments-value": 1} {
		versions, err := cl.SubjectVersions(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) != n {
			t.Errorf("SubjectVersions(%s) = %v, want %d versions", subject, versions, n)
		}
	}
	used := map[int]bool{}
	for key, w := range want {
		t.Run(key, func(t *testing.T) {
			got, err := cl.SchemaByVersion(ctx, w.Subject, w.Version)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != w.ID || got.Version != w.Version || got.Schema.Schema != w.Schema.Schema {
				t.Errorf("SchemaByVersion = id %d v%d %s, want id %d v%d %s",
					got.ID, got.Version, got.Schema.Schema, w.ID, w.Version, w.Schema.Schema)
			}
			byID, err := cl.SchemaByID(ctx, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			if byID.Schema != w.Schema.Schema {
				t.Errorf("SchemaByID(%d) = %s, want %s", w.ID, byID.Schema, w.Schema.Schema)
			}
		})
		used[w.ID] = true
	}

	again := create(t, cl, "payments-value", payment)
	if again.ID != want["payments-value/1"].ID || again.Version != 1 {
		t.Errorf("re-registering payment: id %d v%d, want id %d v1", again.ID, again.Version, want["payments-value/1"].ID)
	}
	fresh := create(t, cl, "refunds-value", recordSchema("Refund", "id"))
	if used[fresh.ID] {
		t.Errorf("new schema got ID %d, already used by %v", fresh.ID, want)
	}
}

func TestStartRejectsBadStateFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ``},
		{"not json", `{{{`},
		{"truncated", `{"version":1,"schemas":[{"subject":"a","version":1,"id":1,`},
		{"trailing data", `{"version":1,"schemas":[]} {}`},
		{"unknown field", `{"version":1,"schemas":[],"ids":[]}`},
		{"future version", `{"version":3,"schemas":[]}`},
		{"nextId not above the IDs", `{"version":2,"nextId":1,"schemas":[{"subject":"a","version":1,"id":1,"schema":"\"string\""}]}`},
		{"invalid compatibility", `{"version":2,"schemas":[],"config":{"compatibility":"SIDEWAYS"}}`},
		{"unknown schema type", `{"version":1,"schemas":[{"subject":"a","version":1,"id":1,"schemaType":"XML","schema":"<a/>"}]}`},
		{"no id", `{"version":1,"schemas":[{"subject":"a","version":1,"schema":"\"string\""}]}`},
		{"version listed twice", `{"version":1,"schemas":[
			{"subject":"a","version":1,"id":1,"schema":"\"string\""},
			{"subject":"a","version":1,"id":2,"schema":"\"int\""}]}`},
		{"dangling reference", `{"version":1,"schemas":[
			{"subject":"a","version":1,"id":1,"schema":"\"string\"","references":[{"name":"B","subject":"b","version":1}]}]}`},
		{"one id, two schemas", `{"version":1,"schemas":[
			{"subject":"a","version":1,"id":1,"schema":"\"string\""},
			{"subject":"b","version":1,"id":1,"schema":"\"int\""}]}`},
		{"invalid avro json", `{"version":1,"schemas":[{"subject":"a","version":1,"id":1,"schema":"{nope"}]}`},
		{"orphan id also used", `{"version":1,"schemas":[{"subject":"a","version":1,"id":1,"schema":"\"string\""}],
			"orphans":[{"id":1,"schema":"\"int\""}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "registry.json")
			if err := os.WriteFile(file, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Start("127.0.0.1:0", StateFile(file))
			if err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, ErrBadStateFile) {
				t.Errorf("error %v is not ErrBadStateFile", err)
			}
			for _, want := range []string{file, "remove it to start fresh"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			got, _ := os.ReadFile(file)
			if string(got) != tt.content {
				t.Errorf("state file was rewritten to %s", got)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"registry.json"}) {
				t.Errorf("directory holds %v", names)
			}
		})
	}
}

func TestNoStateFileWritesNothing(t *testing.T) {
	// Not parallel: it changes the working directory and TMPDIR to catch stray files.
	dir := t.TempDir()
	t.Chdir(dir)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, s)
	ss := create(t, cl, "orders-value", recordSchema("Order", "id"))
	if err := cl.DeleteSchema(context.Background(), "orders-value", ss.Version, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, tmp} {
		if names := dirNames(t, d); len(names) > 0 {
			t.Errorf("%s holds %v", d, names)
		}
	}
}

func TestSnapshotIsAtomicAndSavedBeforeAnswer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "registry.json")
	s := start(t, StateFile(file))
	cl := client(t, s)

	check := func(t *testing.T) {
		t.Helper()
		if names := dirNames(t, dir); !slices.Equal(names, []string{"registry.json"}) {
			t.Errorf("directory holds %v", names)
		}
	}
	check(t) // Start writes the (empty) state at once.

	for i := range 5 {
		ss := create(t, cl, "seq-value", recordSchema("Seq", "f"+strconv.Itoa(i)))
		st, err := readState(file)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(st.Schemas, func(e schemaEntry) bool { return e.ID == ss.ID }) {
			t.Errorf("ID %d answered but not in the state file", ss.ID)
		}
		check(t)
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			subject := "par-" + strconv.Itoa(i%4)
			if _, err := cl.CreateSchema(context.Background(), subject, recordSchema("Par", "f"+strconv.Itoa(i))); err != nil {
				t.Errorf("CreateSchema: %v", err)
			}
		})
	}
	wg.Wait()
	check(t)
	st, err := readState(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Schemas) != 25 {
		t.Errorf("state file holds %d versions, want 25", len(st.Schemas))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSnapshotFailureIsLoggedAndRetried(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	file := filepath.Join(dir, "registry.json")
	var logs syncBuffer
	s, err := Start("127.0.0.1:0", StateFile(file), Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, s)

	// A file where the state directory should be makes every write fail.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The registration is not answered with an ID that is not on disk.
	body := schemaReq(recordSchema("Order", "id").Schema)
	status, got := call(t, s, "POST", "/subjects/orders-value/versions", body)
	if status != http.StatusInternalServerError || !strings.Contains(got, `"error_code":50001`) {
		t.Errorf("register with an unwritable state: status %d, body %s; want 500 with error_code 50001", status, got)
	}
	if !strings.Contains(logs.String(), "state not saved") {
		t.Errorf("failure not logged; logs: %s", logs.String())
	}

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	// The client's retry, once the directory is writable again, gets the ID saved.
	ss := create(t, cl, "orders-value", recordSchema("Order", "id"))
	st, err := readState(file)
	if err != nil || st == nil {
		t.Fatalf("readState after the retry: %v, %v", st, err)
	}
	if len(st.Schemas) != 1 || st.Schemas[0].ID != ss.ID || ss.Version != 1 {
		t.Errorf("retry answered %+v; state = %+v", ss, st.Schemas)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr, urlPrefix string
	}{
		{"loopback", "127.0.0.1:0", "http://127.0.0.1:"},
		{"every interface", ":0", "http://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			_, port, _ := strings.Cut(s.Addr(), "]:")
			if port == "" {
				_, port, _ = strings.Cut(s.Addr(), ":")
			}
			if got := s.URL(); got != tt.urlPrefix+port {
				t.Errorf("URL = %s, want %s%s (Addr %s)", got, tt.urlPrefix, port, s.Addr())
			}
			if _, err := client(t, s).Subjects(context.Background()); err != nil {
				t.Errorf("Subjects through URL: %v", err)
			}
			if _, err := Start(s.Addr()); err == nil {
				t.Errorf("second Start on %s succeeded", s.Addr())
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestRestoreIsExact builds a registry with every kind of state the registry keeps, restarts a copy of
// it from its state file, and checks that both answer every read, and then every write, alike.
func TestRestoreIsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	origFile := filepath.Join(dir, "orig.json")
	orig := start(t, StateFile(origFile))
	cl := client(t, orig)

	// Subjects below hold unrelated schemas: no compatibility check.
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	order := recordSchema("Order", "id")
	payment := recordSchema("Payment", "id", "amount")
	create(t, cl, "orders-value", order)
	create(t, cl, "orders-value", recordSchema("Order", "id", "customer"))
	create(t, cl, "payments-value", payment)
	// The same schemas under another subject share their IDs, in another order.
	create(t, cl, "team/all events", payment)
	create(t, cl, "team/all events", order)
	// References, JSON and protobuf schemas, metadata.
	create(t, cl, "address-value", recordSchema("Address", "street"))
	create(t, cl, "customer-value", sr.Schema{
		Schema:     `{"type":"record","name":"Customer","fields":[{"name":"home","type":"Address"}]}`,
		References: []sr.SchemaReference{{Name: "Address", Subject: "address-value", Version: 1}},
	})
	create(t, cl, "json-value", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object"}`})
	create(t, cl, "proto-value", sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3"; message P { string id = 1; }`})
	create(t, cl, "meta-value", sr.Schema{
		Schema:         recordSchema("Meta", "id").Schema,
		SchemaMetadata: &sr.SchemaMetadata{Properties: map[string]string{"owner": "orders"}},
	})
	// A soft-deleted version, then the same schema registered again under a new version.
	create(t, cl, "temp-value", recordSchema("Temp", "a"))
	create(t, cl, "temp-value", recordSchema("Temp", "a", "b"))
	if err := cl.DeleteSchema(ctx, "temp-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	create(t, cl, "temp-value", recordSchema("Temp", "a"))
	// Permanently deleted versions: their numbers are given again, their IDs never.
	create(t, cl, "gap-value", recordSchema("Gap", "a"))
	create(t, cl, "gap-value", recordSchema("Gap", "a", "b"))
	create(t, cl, "gap-value", recordSchema("Gap", "a", "b", "c"))
	for _, v := range []int{2, 3} {
		for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
			if err := cl.DeleteSchema(ctx, "gap-value", v, how); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(t, cl, "gap-value", order)
	// A permanently deleted subject whose schema has the highest ID so far.
	create(t, cl, "gone-value", recordSchema("Gone", "a"))
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "gone-value", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	// A soft-deleted subject, and a subject with no versions left.
	create(t, cl, "retired-value", recordSchema("Retired", "a"))
	if _, err := cl.DeleteSubject(ctx, "retired-value", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	create(t, cl, "empty-value", recordSchema("Empty", "a"))
	for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		if err := cl.DeleteSchema(ctx, "empty-value", 1, how); err != nil {
			t.Fatal(err)
		}
	}
	// Settings.
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, r := range cl.SetMode(ctx, sr.ModeReadOnly, "payments-value") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	data, err := os.ReadFile(origFile)
	if err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(dir, "copy.json")
	if err := os.WriteFile(copyFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	restored := start(t, StateFile(copyFile))
	if again, _ := os.ReadFile(copyFile); !bytes.Equal(again, data) {
		t.Errorf("restored state file differs:\n%s\nwant:\n%s", again, data)
	}

	get := func(t *testing.T, s *Server, path string) string {
		t.Helper()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	compare := func(t *testing.T, paths []string) {
		t.Helper()
		for _, p := range paths {
			if o, r := get(t, orig, p), get(t, restored, p); o != r {
				t.Errorf("GET %s\n restored: %s\n original: %s", p, r, o)
			}
		}
	}
	reads := func(t *testing.T) []string {
		paths := []string{"/subjects", "/subjects?deleted=true", "/subjects?deletedOnly=true",
			"/schemas?deleted=true", "/config", "/mode", "/contexts"}
		var all []string
		if err := json.Unmarshal([]byte(strings.TrimPrefix(get(t, orig, "/subjects?deleted=true"), "200 ")), &all); err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			e := "/" + url.PathEscape(s)
			paths = append(paths, "/subjects"+e+"/versions", "/subjects"+e+"/versions?deleted=true",
				"/subjects"+e+"/versions/latest", "/config"+e+"?defaultToGlobal=false", "/mode"+e+"?defaultToGlobal=false")
			for v := 1; v <= 5; v++ {
				paths = append(paths, fmt.Sprintf("/subjects%s/versions/%d?deleted=true", e, v))
			}
		}
		for id := 1; id <= 25; id++ {
			paths = append(paths, fmt.Sprintf("/schemas/ids/%d", id), fmt.Sprintf("/schemas/ids/%d/subjects?deleted=true", id))
		}
		return paths
	}
	compare(t, reads(t))

	writes := []struct {
		name, method, path, body string
	}{
		{"known schema, new subject", "POST", "/subjects/new-value/versions", order.Schema},
		{"new schema", "POST", "/subjects/new-value/versions", recordSchema("New", "a").Schema},
		{"after a gap", "POST", "/subjects/gap-value/versions", recordSchema("Gap", "z").Schema},
		{"known schema in its subject", "POST", "/subjects/temp-value/versions", recordSchema("Temp", "a").Schema},
		{"schema of a deleted version", "POST", "/subjects/temp-value/versions", recordSchema("Temp", "a", "b").Schema},
		{"schema of a deleted subject", "POST", "/subjects/elsewhere-value/versions", recordSchema("Gone", "a").Schema},
		{"into a soft-deleted subject", "POST", "/subjects/retired-value/versions", recordSchema("Retired", "b").Schema},
		{"into an emptied subject", "POST", "/subjects/empty-value/versions", recordSchema("Empty", "b").Schema},
		{"delete a referenced version", "DELETE", "/subjects/address-value/versions/1", ""},
		{"delete the latest version", "DELETE", "/subjects/orders-value/versions/2", ""},
		{"delete a soft-deleted subject", "DELETE", "/subjects/retired-value?permanent=true", ""},
		{"another new schema", "POST", "/subjects/new-value/versions", recordSchema("New", "b").Schema},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var body string
			if w.body != "" {
				body = fmt.Sprintf(`{"schema":%q}`, w.body)
			}
			answers := make([]string, 2)
			for i, s := range []*Server{orig, restored} {
				req, err := http.NewRequest(w.method, s.URL()+w.path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				answers[i] = fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
			if answers[0] != answers[1] {
				t.Errorf("%s %s\n restored: %s\n original: %s", w.method, w.path, answers[1], answers[0])
			}
		})
	}
	compare(t, reads(t))

	o, _ := os.ReadFile(origFile)
	r, _ := os.ReadFile(copyFile)
	if !bytes.Equal(o, r) {
		t.Errorf("state files differ after the same writes:\n%s\nwant:\n%s", r, o)
	}
}

func TestSharedIDWithDifferentLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "registry.json")
	s, err := Start("127.0.0.1:0", StateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, s)
	a := create(t, cl, "a-value", sr.Schema{Schema: `{"type": "string"}`})
	b := create(t, cl, "b-value", sr.Schema{Schema: `{"type":"string"}`})
	if a.ID != b.ID {
		t.Fatalf("the registry gave equal schemas IDs %d and %d", a.ID, b.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cl = client(t, start(t, StateFile(file)))
	for _, w := range []sr.SubjectSchema{a, b} {
		got, err := cl.SchemaByVersion(ctx, w.Subject, w.Version)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != w.ID || got.Schema.Schema != w.Schema.Schema {
			t.Errorf("%s: id %d %s, want id %d %s", w.Subject, got.ID, got.Schema.Schema, w.ID, w.Schema.Schema)
		}
	}
}

// TestHardDeleteForgetsSchemaKeepsID: as in Confluent's registry, a permanently deleted schema
// is no longer served by ID, and its ID is never given to another schema, across restarts too.
func TestHardDeleteForgetsSchemaKeepsID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "registry.json")
	s, err := Start("127.0.0.1:0", StateFile(file))
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, s)
	gone := create(t, cl, "gone-value", recordSchema("Gone", "a"))
	for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		if _, err := cl.DeleteSubject(ctx, "gone-value", how); err != nil {
			t.Fatalf("DeleteSubject(%v): %v", how, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cl = client(t, start(t, StateFile(file)))
	var re *sr.ResponseError
	if _, err := cl.SchemaByID(ctx, gone.ID); !errors.As(err, &re) || re.ErrorCode != 40403 {
		t.Errorf("SchemaByID(%d) after a permanent delete: %v, want 40403", gone.ID, err)
	}
	if fresh := create(t, cl, "new-value", recordSchema("New", "a")); fresh.ID <= gone.ID {
		t.Errorf("new schema got ID %d, not above %d", fresh.ID, gone.ID)
	}
}

// TestReadsVersion1StateFile: state files written before the registry had its own store
// (format 1, with orphans) load, keep their IDs, and are rewritten in the current format.
func TestReadsVersion1StateFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "registry.json")
	v1 := `{
  "version": 1,
  "schemas": [
    {"subject": "accounts-choreo.account.v1.AccountCreated", "version": 1, "id": 1, "schemaType": "AVRO",
     "schema": "{\"name\":\"choreo.account.v1.AccountCreated\",\"type\":\"record\",\"fields\":[{\"name\":\"accountId\",\"type\":\"string\"}]}"},
    {"subject": "old-value", "version": 2, "id": 3, "schemaType": "AVRO", "schema": "\"string\"", "deleted": true}
  ],
  "orphans": [{"id": 2, "schemaType": "AVRO", "schema": "\"int\""}],
  "subjects": {"old-value": {"deleted": true, "compatibility": "FULL"}},
  "config": {"compatibility": "BACKWARD"}
}
`
	if err := os.WriteFile(file, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, StateFile(file))
	cl := client(t, s)
	got, err := cl.SchemaByVersion(ctx, "accounts-choreo.account.v1.AccountCreated", 1)
	if err != nil || got.ID != 1 {
		t.Fatalf("version 1: %+v, %v", got, err)
	}
	if vs, err := cl.SubjectVersions(ctx, "old-value"); err == nil {
		t.Errorf("soft-deleted subject lists versions %v", vs)
	}
	if fresh := create(t, cl, "new-value", recordSchema("New", "a")); fresh.ID != 4 {
		t.Errorf("new schema got ID %d, want 4 (IDs up to 3 are taken)", fresh.ID)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Version int `json:"version"`
		NextID  int `json:"nextId"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion || st.NextID != 5 {
		t.Errorf("state file rewritten as %s", data)
	}
}
