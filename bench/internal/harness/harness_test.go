package harness

import (
	"context"
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
		}
		if len(r.RSS) != wantProcs || slices.ContainsFunc(r.RSS, func(n namedBytes) bool { return n.bytes <= 0 }) {
			t.Errorf("%s: peak RSS %v, want %d processes", r.System, r.RSS, wantProcs)
		}
		if !strings.Contains(out.String(), "| "+label(r.System)) {
			t.Errorf("the table has no row %q", label(r.System))
		}
	}
	if !strings.Contains(out.String(), "choreo, SQLite vs bare franz-go: burst ") {
		t.Error("the table has no ratio of choreo to bare franz-go")
	}
	if _, err := os.Stat(filepath.Join(bin, "bench")); err != nil {
		t.Error(err)
	}
}
