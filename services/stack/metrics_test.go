package stack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// scrape fetches service's /metrics and parses it with Prometheus's own text parser.
func scrape(s *stack.Stack, service string) (map[string]*dto.MetricFamily, string, error) {
	resp, err := http.Get(stacktest.URL(s, service, "/metrics"))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, "", fmt.Errorf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	return fams, string(b), err
}

// sample returns the value of the first sample of family name whose labels include want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetrics: after one registration, every service's /metrics parses as the Prometheus text
// format and holds the runtime, process, Kafka client, lag, outcome and latency metrics, and the
// dashboard under deployments/ queries only metrics that exist.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	var created struct{ AccountID string }
	if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"metrics","email":"metrics@mail.com"}`, &created); code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	userGroup := s.ServiceConfig("user-service").Scoped("user-service")
	all := map[string]map[string]*dto.MetricFamily{}
	stacktest.Eventually(t, 30*time.Second, func() error {
		for _, name := range stack.Services() {
			fams, text, err := scrape(s, name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
				// Secrets never reach metrics: not the database URL, not its credentials.
				if pu, err := url.Parse(u); err == nil && pu.User != nil {
					if strings.Contains(text, pu.User.String()+"@") || strings.Contains(text, "postgres://") {
						t.Fatalf("%s /metrics contains the database credentials", name)
					}
				}
			}
			all[name] = fams
		}
		user, notif := all["user-service"], all["notification-service"]
		for _, c := range []struct {
			fams   map[string]*dto.MetricFamily
			name   string
			labels map[string]string
			min    float64
		}{
			{user, "choreo_consumer_records_total", map[string]string{"group": userGroup, "handler": "create-user", "outcome": "handled"}, 1},
			{user, "choreo_handler_duration_seconds", map[string]string{"handler": "create-user"}, 1},
			{user, "choreo_event_age_seconds", map[string]string{"handler": "create-user"}, 1},
			{user, "kafka_consumergroup_lag", map[string]string{"consumergroup": userGroup, "partition": "0"}, 0},
			{user, "choreo_outbox_pending", map[string]string{"service": "user-service"}, 0},
			{user, "choreo_outbox_oldest_age_seconds", nil, 0},
			{user, "choreo_dlq_records", map[string]string{"consumergroup": userGroup}, 0},
			{user, "choreo_kafka_connects_total", map[string]string{"client": "producer"}, 1},
			{user, "choreo_kafka_connects_total", map[string]string{"client": "consumer"}, 1},
			// Produce counters appear with the first record produced, which may come after a
			// scrape: wait for it, since the dashboard graphs it.
			{user, "choreo_kafka_produce_bytes_total", map[string]string{"client": "producer"}, 1},
			{user, "go_goroutines", nil, 1},
			{user, "process_resident_memory_bytes", nil, 1},
			{notif, "choreo_chain_latency_seconds", map[string]string{"effect": "welcome email"}, 1},
			{notif, "choreo_emails_sent_total", nil, 1},
			{notif, "choreo_emails", map[string]string{"status": "pending"}, 0},
			{notif, "choreo_emails", map[string]string{"status": "failed"}, 0},
		} {
			if v, ok := sample(c.fams, c.name, c.labels); !ok || v < c.min {
				return fmt.Errorf("%s%v = %v (present %v), want at least %v", c.name, c.labels, v, ok, c.min)
			}
		}
		return nil
	})

	// The dashboard: every metric an expression names exists in a scrape.
	b, err := os.ReadFile("../../deployments/grafana/choreo-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exists := func(name string) bool {
		for _, fams := range all {
			if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
				return true
			}
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil && fams[base].GetType() == dto.MetricType_HISTOGRAM {
					return true
				}
			}
		}
		return false
	}
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promql := []string{"sum", "by", "rate", "histogram_quantile", "le", "without", "avg", "max", "min", "irate", "increase"}
	var queried []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			// Label names inside by (...) and {...} are not metrics: drop those parts first.
			expr := regexp.MustCompile(`by \([^)]*\)|\{[^}]*\}|\[[^\]]*\]`).ReplaceAllString(tg.Expr, "")
			for _, id := range ident.FindAllString(expr, -1) {
				if slices.Contains(promql, id) || !strings.Contains(id, "_") {
					continue
				}
				queried = append(queried, id)
				if !exists(id) {
					t.Errorf("panel %q queries %s, which no service exposes", p.Title, id)
				}
			}
		}
	}
	if len(queried) < 10 {
		t.Errorf("dashboard queries only %v", queried)
	}
}
