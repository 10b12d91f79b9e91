package stack_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each export request (protobuf,
// gzip-compressed or not) as a collector would, and keeps the spans by service.name.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces of application/x-protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			o.spans[service] = append(o.spans[service], ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestTracesExportedOverOTLP: services configured only by OTEL_* variables export their spans
// over OTLP/HTTP, and the receiver gets one trace holding spans of all three services.
func TestTracesExportedOverOTLP(t *testing.T) {
	t.Parallel()
	recv := &otlpReceiver{spans: map[string][]*tracepb.Span{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
	cfg := stacktest.Config(t)
	providers := map[string]trace.TracerProvider{}
	for _, name := range stack.Services() {
		tp, shutdown, err := telemetry.Provider(context.Background(), name, func(k string) string { return env[k] })
		if err != nil || tp == nil {
			t.Fatalf("provider from %v: %v, %v", env, tp, err)
		}
		t.Cleanup(func() { _ = shutdown(context.Background()) })
		providers[name] = tp
	}
	cfg.TracerProvider = func(name string) trace.TracerProvider { return providers[name] }
	s := stacktest.StartConfig(t, cfg)
	if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"otlp","email":"otlp@mail.com"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	// The batch span processor exports every 5s by default.
	stacktest.Eventually(t, 60*time.Second, func() error {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		var root []byte
		for _, sp := range recv.spans["account-service"] {
			if sp.GetName() == "POST /accounts" {
				root = sp.GetTraceId()
			}
		}
		if root == nil {
			return fmt.Errorf("no POST /accounts span received")
		}
		for _, c := range []struct{ service, name string }{
			{"user-service", "create-user"}, {"notification-service", "send-welcome-email"}, {"notification-service", "welcome"},
		} {
			found := false
			for _, sp := range recv.spans[c.service] {
				if !bytes.Equal(sp.GetTraceId(), root) {
					continue
				}
				for _, kv := range sp.GetAttributes() {
					if v := kv.GetValue().GetStringValue(); (kv.GetKey() == string(telemetry.AttrHandler) || kv.GetKey() == string(telemetry.AttrEmailKind)) && v == c.name {
						found = true
					}
				}
			}
			if !found {
				return fmt.Errorf("no %s span of %s in the trace yet", c.service, c.name)
			}
		}
		return nil
	})
}
