package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The consumer's fetch bounds are the configured ones once they reach franz-go.
func TestFetchOptsReachTheClient(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		total, perPart int
	}{
		{"defaults", DefaultConfig("").FetchMaxBytes, DefaultConfig("").FetchMaxPartitionBytes},
		{"set", 4 << 20, 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig("")
			cfg.FetchMaxBytes, cfg.FetchMaxPartitionBytes = tt.total, tt.perPart
			s := &Service{Config: cfg}
			cl, err := kgo.NewClient(s.clientOpts("test", s.fetchOpts()...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if got := cl.OptValue(kgo.FetchMaxBytes); got != int32(tt.total) {
				t.Errorf("FetchMaxBytes = %v, want %d", got, tt.total)
			}
			if got := cl.OptValue(kgo.FetchMaxPartitionBytes); got != int32(tt.perPart) {
				t.Errorf("FetchMaxPartitionBytes = %v, want %d", got, tt.perPart)
			}
		})
	}
	// franz-go's own defaults are far above a service's memory budget: the defaults must not be them.
	if def := DefaultConfig(""); def.FetchMaxBytes > 4<<20 || def.FetchMaxPartitionBytes > def.FetchMaxBytes {
		t.Errorf("default fetch bounds %d / %d: want at most 4 MiB, a partition's share within it", def.FetchMaxBytes, def.FetchMaxPartitionBytes)
	}
}

// Not parallel: the memory limit belongs to the whole test process.
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)

	restore := applyMemoryLimit(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Errorf("GOMEMLIMIT unset: limit %d, want DefaultMemoryLimit %d", got, DefaultMemoryLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("after restore: limit %d, want the previous %d", got, before)
	}

	restore = applyMemoryLimit(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "off"
		}
		return ""
	})
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("GOMEMLIMIT set: limit %d, want the runtime's own %d untouched", got, before)
	}
	restore()
}

// /debug/pprof/ is served only when asked for.
func TestPprofRoutes(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		cfg := DefaultConfig("")
		cfg.Pprof = on
		s := &Service{Config: cfg, Metrics: prometheus.NewRegistry()}
		srv := httptest.NewServer(s.routes())
		resp, err := http.Get(srv.URL + "/debug/pprof/heap?debug=1")
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
			t.Errorf("Pprof %v: GET /debug/pprof/heap = %d, want %d", on, resp.StatusCode, want)
		}
		if on && !strings.Contains(string(body), "heap profile") {
			t.Errorf("Pprof on: /debug/pprof/heap?debug=1 is not a heap profile: %.200s", body)
		}
	}
}
