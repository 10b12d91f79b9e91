package cli_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/choreo-dev/choreo/cmd/choreo/internal/cli"
)

// TestPublishStartsATrace: with an OTLP endpoint set, `choreo publish` is the root span of a new
// trace, exported before it exits, and the record carries that trace's context.
func TestPublishStartsATrace(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		spans []*tracepb.Span
	)
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				spans = append(spans, ss.GetSpans()...)
			}
		}
		mu.Unlock()
	}))
	defer otlp.Close()
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "accounts"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	reg := newRegistry(t)
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL}
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), []string{"publish", "-registry", reg.URL(), "-brokers", cluster.ListenAddrs()[0],
		"AccountCreated", `{"accountId":"a1","username":"jane","email":"jane@mail.com","createdAt":"2026-01-02T03:04:05Z"}`},
		cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	if code != 0 {
		t.Fatalf("publish: %d %s", code, stderr.String())
	}
	var out struct{ TraceID, ID string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.TraceID) != 32 {
		t.Fatalf("publish printed %s (%v): want a traceId", stdout.String(), err)
	}
	mu.Lock()
	var root *tracepb.Span
	for _, sp := range spans {
		if hex.EncodeToString(sp.GetTraceId()) == out.TraceID {
			root = sp
		}
	}
	mu.Unlock()
	if root == nil || len(root.GetParentSpanId()) != 0 || root.GetName() != "send accounts" {
		t.Fatalf("exported %v: want the root span send accounts of trace %s", root, out.TraceID)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("accounts"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the published record: %v", ctx.Err())
		}
		recs = fs.Records()
	}
	rec := recs[0]
	want := "00-" + out.TraceID + "-" + hex.EncodeToString(root.GetSpanId()) + "-01"
	for _, h := range rec.Headers {
		if h.Key == "traceparent" && string(h.Value) == want {
			return
		}
	}
	t.Errorf("record headers %v, want traceparent %s", rec.Headers, want)
}
