package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/cmd/choreo/internal/cli"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/event"
)

type result struct {
	code           int
	stdout, stderr bytes.Buffer
}

// run runs the choreo command line in process, with an empty environment.
func run(t *testing.T, args ...string) *result {
	t.Helper()
	var r result
	r.code = cli.Run(t.Context(), args, cli.Env{
		Stdin:  strings.NewReader(""),
		Stdout: &r.stdout,
		Stderr: &r.stderr,
		Getenv: func(string) string { return "" },
	})
	return &r
}

func newRegistry(t *testing.T) *srfake.Registry {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	return reg
}

func eventNames(t *testing.T) []string {
	t.Helper()
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ty := range types.Types() {
		names = append(names, ty.Name)
	}
	return names
}

// usageCase is a command line and what it must answer: its exit status, and what its stderr and
// stdout mention. A case that wants nothing on stdout gets nothing there, nor does a failing one.
type usageCase struct {
	name       string
	args       []string
	wantCode   int
	wantStderr []string
	wantStdout []string
}

// runUsage runs each case as a parallel subtest.
func runUsage(t *testing.T, tests []usageCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit status = %d, want %d\nstderr:\n%s", r.code, tt.wantCode, r.stderr.String())
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(r.stderr.String(), s) {
					t.Errorf("stderr does not mention %q:\n%s", s, r.stderr.String())
				}
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(r.stdout.String(), s) {
					t.Errorf("stdout does not mention %q:\n%s", s, r.stdout.String())
				}
			}
			if (tt.wantCode != 0 || len(tt.wantStdout) == 0) && r.stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", r.stdout.String())
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	runUsage(t, []usageCase{
		{name: "no args", wantCode: 2, wantStderr: []string{"usage: choreo <command>", "encode", "catalog"}},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStderr: []string{"usage: choreo <command>"}},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStderr: []string{"usage: choreo <command>"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: []string{`unknown command "frobnicate"`, "usage: choreo <command>"}},
		{name: "encode without args", args: []string{"encode"}, wantCode: 2, wantStderr: []string{"want 2 argument(s), got 0", "usage: choreo encode"}},
		{name: "encode with one arg", args: []string{"encode", "AccountCreated"}, wantCode: 2, wantStderr: []string{"got 1"}},
		{name: "encode with three args", args: []string{"encode", "AccountCreated", "{}", "{}"}, wantCode: 2, wantStderr: []string{"got 3"}},
		{name: "encode unknown flag", args: []string{"encode", "-nope", "AccountCreated", "{}"}, wantCode: 2, wantStderr: []string{"-nope"}},
		{name: "encode -h", args: []string{"encode", "-h"}, wantCode: 0, wantStderr: []string{"-registry", "SCHEMA_REGISTRY_URL", "-registry-ca-file", "-kafka-sasl-mechanism"}},
		{name: "dev with TLS and no -brokers", args: []string{"dev", "-kafka-tls"}, wantCode: 2, wantStderr: []string{"external cluster", "-brokers"}},
		{name: "dev with a bad SASL mechanism", args: []string{"dev", "-brokers", "k:9092", "-kafka-sasl-mechanism", "KERBEROS"}, wantCode: 2, wantStderr: []string{"KAFKA_SASL_MECHANISM", "KERBEROS"}},
		{name: "tail with PLAIN over plaintext", args: []string{"tail", "-kafka-sasl-mechanism", "PLAIN", "-kafka-sasl-username", "u", "-kafka-sasl-password-file", "/pw", "-registry", reg.URL(), "users"},
			wantCode: 2, wantStderr: []string{"KAFKA_SASL_ALLOW_PLAINTEXT"}},
		{name: "publish with a missing CA file", args: []string{"publish", "-kafka-tls", "-kafka-tls-ca-file", "/nonexistent/ca.pem", "-registry", reg.URL(), "AccountCreated", `{"accountId":"a1","username":"u","email":"u@mail.com","createdAt":0}`},
			wantCode: 1, wantStderr: []string{"KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem"}},
		{name: "dlq list with a registry password over http", args: []string{"dlq", "list", "g", "-registry", "http://u:hunter2@127.0.0.1:1"},
			wantCode: 2, wantStderr: []string{"SCHEMA_REGISTRY_ALLOW_PLAINTEXT"}},
		{
			name: "encode unknown event", args: []string{"encode", "-registry", reg.URL(), "NoSuchEvent", "{}"}, wantCode: 2,
			wantStderr: append([]string{`"NoSuchEvent"`}, strings.Join(eventNames(t), ", ")),
		},
		{name: "encode bad JSON", args: []string{"encode", "-registry", reg.URL(), "AccountCreated", `{"accountId":`}, wantCode: 2, wantStderr: []string{"AccountCreated JSON: not JSON"}},
		{name: "encode non-object JSON", args: []string{"encode", "-registry", reg.URL(), "AccountCreated", `[]`}, wantCode: 2, wantStderr: []string{"AccountCreated JSON: got an array, want an object"}},
		{name: "encode unknown field", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":"a1","deletedAt":0,"admin":true}`}, wantCode: 2, wantStderr: []string{"admin: choreo.account.v1.AccountDeleted has no such field (its fields: accountId, deletedAt)"}},
		{name: "encode wrong field type", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":7,"deletedAt":0}`}, wantCode: 2, wantStderr: []string{"accountId: got a number (7), want a string"}},
		{name: "encode bad time", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":"a1","deletedAt":"yesterday"}`}, wantCode: 2, wantStderr: []string{`deletedAt: got a string ("yesterday"), want a timestamp-millis`}},
		{name: "encode missing required field", args: []string{"encode", "-registry", reg.URL(), "AccountCreated", `{"accountId":"a1","username":"alice","createdAt":0}`}, wantCode: 2, wantStderr: []string{"email: missing, and the schema gives it no default; want a string"}},
		{name: "encode missing key", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"deletedAt":0}`}, wantCode: 2, wantStderr: []string{"accountId: missing"}},
		{name: "encode missing time", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":"a1"}`}, wantCode: 2, wantStderr: []string{"deletedAt: missing", "milliseconds since 1970-01-01T00:00:00Z"}},
		{name: "encode empty key", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":"","deletedAt":0}`}, wantCode: 2, wantStderr: []string{"accountId (the record key) must not be empty"}},
		{name: "encode null", args: []string{"encode", "-registry", reg.URL(), "AccountDeleted", `null`}, wantCode: 2, wantStderr: []string{"got null, want an object with the fields of record choreo.account.v1.AccountDeleted"}},
		{name: "publish -h", args: []string{"publish", "-h"}, wantCode: 0, wantStderr: []string{"-namespace", "CHOREO_NAMESPACE", "-id"}},
		{name: "catalog without subcommand", args: []string{"catalog"}, wantCode: 2, wantStderr: []string{"docs, check, impact or asyncapi"}},
		{name: "catalog unknown subcommand", args: []string{"catalog", "publish"}, wantCode: 2, wantStderr: []string{`"publish"`}},
		{name: "catalog check with an argument", args: []string{"catalog", "check", "extra"}, wantCode: 2, wantStderr: []string{"got 1"}},
		{name: "catalog check", args: []string{"catalog", "check"}, wantCode: 0, wantStdout: []string{"catalog ok"}},
	})
}

func TestEncode(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	created := time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	tests := []struct {
		name  string
		event string
		json  string
		want  event.Event
	}{
		{
			name:  "timestamp as milliseconds, Avro's JSON encoding",
			event: "AccountCreated",
			json:  `{"accountId":"a1","username":"alice","email":"alice@example.com","createdAt":1704164645678}`,
			want:  &event.AccountCreated{AccountID: "a1", Username: "alice", Email: "alice@example.com", CreatedAt: created},
		},
		{
			name:  "timestamp as RFC 3339",
			event: "AccountCreated",
			json:  `{"accountId":"a1","username":"alice","email":"alice@example.com","createdAt":"2024-01-02T03:04:05.678Z"}`,
			want:  &event.AccountCreated{AccountID: "a1", Username: "alice", Email: "alice@example.com", CreatedAt: created},
		},
		{
			name:  "time in another zone",
			event: "AccountCreated",
			json:  `{"accountId":"a2","username":"bob","email":"b@example.com","createdAt":"2024-01-02T04:04:05.678+01:00"}`,
			want:  &event.AccountCreated{AccountID: "a2", Username: "bob", Email: "b@example.com", CreatedAt: created},
		},
		{
			name:  "AccountDeleted",
			event: "AccountDeleted",
			json:  `{"accountId":"a3","deletedAt":1704164645678}`,
			want:  &event.AccountDeleted{AccountID: "a3", DeletedAt: created},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, "encode", "-registry", reg.URL(), tt.event, tt.json)
			if r.code != 0 {
				t.Fatalf("exit status = %d, want 0\nstderr:\n%s", r.code, r.stderr.String())
			}
			b := r.stdout.Bytes()
			if len(b) < 5 || b[0] != 0 {
				t.Fatalf("output % x does not start with the Confluent magic byte 0 and a schema ID", b)
			}

			types, err := event.Load()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := sr.NewClient(sr.URLs(reg.URL()))
			if err != nil {
				t.Fatal(err)
			}
			c, err := codec.New(t.Context(), cl, types)
			if err != nil {
				t.Fatal(err)
			}
			got, typ, err := c.Unmarshal(t.Context(), b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if typ.Name != tt.event {
				t.Errorf("decoded a %s, want %s", typ.Name, tt.event)
			}
			if !sameEvent(got, tt.want) {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEncodeTrailingJSON(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	for _, js := range []string{`{"accountId":"a1","deletedAt":0} {"accountId":"a2"}`, `{"accountId":"a1","deletedAt":0}}`, `{"accountId":"a1","deletedAt":0} garbage`} {
		t.Run(js, func(t *testing.T) {
			t.Parallel()
			r := run(t, "encode", "-registry", reg.URL(), "AccountDeleted", js)
			if r.code != 2 || !strings.Contains(r.stderr.String(), "want one JSON value, found more after it") {
				t.Errorf("exit status = %d, want 2; stderr:\n%s", r.code, r.stderr.String())
			}
		})
	}
}

func TestEncodeRegistryUnreachable(t *testing.T) {
	t.Parallel()
	r := run(t, "encode", "-registry", "http://127.0.0.1:1", "AccountCreated", `{"accountId":"a1"}`)
	if r.code != 1 {
		t.Errorf("exit status = %d, want 1\nstderr:\n%s", r.code, r.stderr.String())
	}
	for _, s := range []string{"SCHEMA_REGISTRY_URL", "http://127.0.0.1:1"} {
		if !strings.Contains(r.stderr.String(), s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr.String())
		}
	}
	if r.stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", r.stdout.String())
	}
}

// catalogMD is schemas/CATALOG.md, relative to this package's directory.
var catalogMD = filepath.Join("..", "..", "..", "..", "schemas", "CATALOG.md")

func TestCatalogDocs(t *testing.T) {
	t.Parallel()
	r := run(t, "catalog", "docs", "-o", "-")
	if r.code != 0 {
		t.Fatalf("exit status = %d, want 0\nstderr:\n%s", r.code, r.stderr.String())
	}
	md := r.stdout.String()
	if !strings.HasPrefix(md, "# ") {
		t.Errorf("output does not start with a markdown heading:\n%.200s", md)
	}
	for _, name := range eventNames(t) {
		if !strings.Contains(md, name) {
			t.Errorf("output does not mention event %s", name)
		}
	}

	t.Run("to a file", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "CATALOG.md")
		r := run(t, "catalog", "docs", "-o", out)
		if r.code != 0 {
			t.Fatalf("exit status = %d, want 0\nstderr:\n%s", r.code, r.stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != md {
			t.Errorf("file differs from -o - output")
		}
	})

	t.Run("matches schemas/CATALOG.md", func(t *testing.T) {
		t.Parallel()
		want, err := os.ReadFile(catalogMD)
		if err != nil {
			t.Fatal(err)
		}
		if md != string(want) {
			t.Errorf("schemas/CATALOG.md is stale: run `choreo catalog docs`\n--- generated:\n%s\n--- schemas/CATALOG.md:\n%s", md, want)
		}
	})
}

// TestRunCancelled checks a command sees its context: encode against a registry that never
// answers stops when the context is cancelled.
func TestRunCancelled(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	release := make(chan struct{})
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := cli.Run(ctx, []string{"encode", "-registry", reg.URL(), "AccountDeleted", `{"accountId":"a1"}`},
		cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	if code != 1 {
		t.Errorf("exit status = %d, want 1\nstderr:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("encode took %v after its context was cancelled", d)
	}
}

func sameEvent(a, b event.Event) bool {
	switch a := a.(type) {
	case *event.AccountCreated:
		b, ok := b.(*event.AccountCreated)
		return ok && a.AccountID == b.AccountID && a.Username == b.Username && a.Email == b.Email && a.CreatedAt.Equal(b.CreatedAt)
	case *event.AccountDeleted:
		b, ok := b.(*event.AccountDeleted)
		return ok && a.AccountID == b.AccountID && a.DeletedAt.Equal(b.DeletedAt)
	}
	return false
}
