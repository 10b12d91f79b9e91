package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRun runs the whole harness with a tiny burst and short fixed rate on the embedded broker,
// every system it can, from freshly built binaries, so that make bench cannot rot unseen. It
// checks that every chain of every phase ended in its email and that the table reports it; it
// says nothing about speed. choreo-postgres runs where PostgreSQL is installed (it is started by
// deployments/postgres/postgres.sh, with PG_PORT and PG_DATA as for make up).
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the services and runs them as processes; not in -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := func(dir string, pkgs ...string) {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + string(filepath.Separator)}, pkgs...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
		}
	}
	build(root, "./cmd/choreo", "./services/account", "./services/user", "./services/notification")
	build(filepath.Join(root, "bench"), ".")
	systems := []string{Bare, Watermill, ChoreoSQLite}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) > 0 {
		systems = append(systems, ChoreoPostgres)
	} else {
		t.Log("PostgreSQL is not installed: choreo-postgres not run")
	}
	var out, log strings.Builder
	cfg := Config{
		Root: root, Bin: bin, Self: filepath.Join(bin, "bench"), Systems: systems,
		N: 40, Duration: time.Second, Rates: []int{30}, Partitions: 3, Drain: 2 * time.Minute,
		Out: &out, Log: &log,
	}
	rows, err := Run(ctx, cfg)
	t.Logf("progress:\n%s\ntable:\n%s", log.String(), out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(systems) {
		t.Fatalf("%d rows, want %d", len(rows), len(systems))
	}
	for _, r := range rows {
		if !r.Burst.complete() || r.Burst.n != cfg.N {
			t.Errorf("%s: burst %d of %d", r.System, r.Burst.got, r.Burst.n)
		}
		if r.Burst.extra != 0 {
			t.Errorf("%s: %d emails to no pending chain in the burst", r.System, r.Burst.extra)
		}
		if len(r.Steady) != 1 || !r.Steady[0].complete() || r.Steady[0].percentile(1) <= 0 {
			t.Errorf("%s: fixed rate %+v", r.System, r.Steady)
		}
		wantProcs := 1
		if isChoreo(r.System) {
			wantProcs = 3
			if r.Stages["hop1"] <= 0 || r.Stages["hop2"] <= 0 {
				t.Errorf("%s: stage rates %v, want hop1 and hop2", r.System, r.Stages)
			}
			if len(r.StageLatency) != 1 || r.StageLatency[0] == nil {
				t.Errorf("%s: stage latencies %v, want one reading", r.System, r.StageLatency)
			} else {
				for i, v := range r.StageLatency[0].p50 {
					if !(v > 0) {
						t.Errorf("%s: %s p50 %v, want a positive number of seconds", r.System, latencyStages[i].name, v)
					}
				}
			}
		}
		if len(r.RSS) != wantProcs || slices.ContainsFunc(r.RSS, func(n namedBytes) bool { return n.bytes <= 0 }) {
			t.Errorf("%s: peak RSS %v, want %d processes", r.System, r.RSS, wantProcs)
		}
		if !strings.Contains(out.String(), "| "+label(r.System)) {
			t.Errorf("the table has no row %q", label(r.System))
		}
	}
	if !strings.Contains(out.String(), "| choreo, SQLite     | 30/s ") {
		t.Error("the table has no stage latencies of choreo on SQLite")
	}
	if !strings.Contains(out.String(), "choreo, SQLite vs bare franz-go: burst ") {
		t.Error("the table has no ratio of choreo to bare franz-go")
	}
	if _, err := os.Stat(filepath.Join(bin, "bench")); err != nil {
		t.Error(err)
	}
}

// TestHistogramQuantile: quantiles of the observations between two readings of a histogram
// summed over its series, as histogram_quantile estimates them.
func TestHistogramQuantile(t *testing.T) {
	const text = `# HELP choreo_event_age_seconds Age.
# TYPE choreo_event_age_seconds histogram
choreo_event_age_seconds_bucket{group="g",handler="a",service="s",le="0.001"} %d
choreo_event_age_seconds_bucket{group="g",handler="a",service="s",le="0.0025"} %d
choreo_event_age_seconds_bucket{group="g",handler="a",service="s",le="0.005"} %d
choreo_event_age_seconds_bucket{group="g",handler="a",service="s",le="+Inf"} %d
choreo_event_age_seconds_sum{group="g",handler="a",service="s"} 1
choreo_event_age_seconds_count{group="g",handler="a",service="s"} %[4]d
choreo_event_age_seconds_bucket{group="g",handler="b",service="s",le="0.001"} 0
choreo_event_age_seconds_bucket{group="g",handler="b",service="s",le="0.0025"} %d
choreo_event_age_seconds_bucket{group="g",handler="b",service="s",le="0.005"} %[5]d
choreo_event_age_seconds_bucket{group="g",handler="b",service="s",le="+Inf"} %[5]d
choreo_event_age_seconds_bucket_other{le="0.001"} 999
choreo_chain_latency_seconds_bucket{effect="welcome email",le="0.001"} 999
`
	read := func(a1, a25, a5, ainf, b int) histogram {
		t.Helper()
		h, err := readHistogram(strings.NewReader(fmt.Sprintf(text, a1, a25, a5, ainf, b)), "choreo_event_age_seconds")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name          string
		before, after histogram
		q, want       float64
	}{
		// 100 new observations, 50 at or below 1 ms: the median is the first bucket's bound.
		{"first bucket", read(0, 0, 0, 0, 0), read(50, 100, 100, 100, 0), .5, .001},
		// 10 below 1 ms, 90 in (1, 2.5]: rank 50 is 40 of those 90 in.
		{"interpolated", read(0, 0, 0, 0, 0), read(10, 100, 100, 100, 0), .5, .001 + .0015*40/90},
		// Series summed: a has 100 in the first bucket, b 100 in the second.
		{"summed", read(0, 0, 0, 0, 0), read(100, 100, 100, 100, 100), .75, .001 + .0015*.5},
		// Only what came after the first reading counts: 100 old ones at <= 1 ms.
		{"since", read(100, 100, 100, 100, 0), read(100, 100, 200, 200, 0), .5, .0025 + .0025*.5},
		// Above the last finite bound: that bound.
		{"+Inf", read(0, 0, 0, 0, 0), read(0, 0, 0, 10, 0), .99, .005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.after.since(tc.before).quantile(tc.q)
			if math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	if got := read(1, 1, 1, 1, 0).since(read(1, 1, 1, 1, 0)).quantile(.5); !math.IsNaN(got) {
		t.Errorf("quantile without observations = %v, want NaN", got)
	}
}
