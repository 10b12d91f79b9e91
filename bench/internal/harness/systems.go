package harness

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Names of the systems a run can measure, in the order they run.
const (
	Bare           = "bare"
	Watermill      = "watermill"
	ChoreoSQLite   = "choreo-sqlite"
	ChoreoPostgres = "choreo-postgres"
)

// AllSystems is the default list.
var AllSystems = []string{Bare, Watermill, ChoreoSQLite, ChoreoPostgres}

// label is a system's name in the table.
func label(system string) string {
	switch system {
	case Bare:
		return "bare franz-go"
	case Watermill:
		return "Watermill (Sarama)"
	case ChoreoSQLite:
		return "choreo, SQLite"
	case ChoreoPostgres:
		return "choreo, PostgreSQL"
	}
	return system
}

func isChoreo(system string) bool { return strings.HasPrefix(system, "choreo") }

// running is a started system: its processes, and for choreo the services' handled counters.
type running struct {
	procs  []*proc
	probes map[string]string // stage -> /metrics URL
	// cleanup runs after the processes stopped: dropping a system's databases, so that
	// repeated runs do not fill the server's disk.
	cleanup []func()
}

func (r *running) stop() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		r.procs[i].stop()
	}
	for _, fn := range r.cleanup {
		fn()
	}
}

// env is what every system process needs to know about the run.
type env struct {
	cfg         Config
	dir         string
	brokers     string
	registryURL string
	smtpAddr    string
	admin       *kadm.Client
	// pgErr is why PostgreSQL could not be started, if it could not.
	pgErr error
}

func (e env) pgScript() string {
	return filepath.Join(e.cfg.Root, "deployments", "postgres", "postgres.sh")
}

// startPostgres starts PostgreSQL through deployments/postgres/postgres.sh (PG_PORT, PG_DATA as
// for make up) before the run opens any port of its own, which could otherwise take PG_PORT. It
// returns how to stop it again: a no-op for a server that was already running.
func (e env) startPostgres(ctx context.Context) (stop func(), err error) {
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 {
		return func() {}, fmt.Errorf("%w: PostgreSQL is not installed (apt-get install postgresql)", errSkipped)
	}
	// A PG_PORT set in Linux's ephemeral range can be held for a moment by a busy machine's
	// outgoing connection, and the server then fails to bind. A few tries ride that out.
	var out []byte
	for try := 1; ; try++ {
		out, err = exec.CommandContext(ctx, "bash", e.pgScript(), "start").CombinedOutput()
		if err == nil {
			break
		}
		if try == 5 || ctx.Err() != nil {
			return func() {}, fmt.Errorf("postgres.sh start (%d tries): %w\n%s", try, err, out)
		}
		time.Sleep(2 * time.Second)
	}
	if strings.Contains(string(out), "already running") {
		return func() {}, nil
	}
	return func() { _ = exec.Command("bash", e.pgScript(), "stop").Run() }, nil
}

// startPeer creates the peer's two topics and starts `<Self> peer -system <system>`.
func (e env) startPeer(ctx context.Context, system, ns string, userSchemaID int) (*running, error) {
	accounts, users := ns+".accounts", ns+".users"
	resp, err := e.admin.CreateTopics(ctx, int32(e.cfg.Partitions), 1, nil, accounts, users)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("create topics of %s: %w", system, err)
	}
	p, err := startProc(e.dir, system, nil, e.cfg.Self, "peer", "-system", system, "-brokers", e.brokers,
		"-accounts", accounts, "-users", users, "-group", ns+".", "-smtp", e.smtpAddr,
		"-user-schema-id", strconv.Itoa(userSchemaID))
	if err != nil {
		return nil, err
	}
	return &running{procs: []*proc{p}}, nil
}

// startChoreo starts the three services as `make up` does (bin/account, bin/user,
// bin/notification with the same variables), in namespace ns so they get fresh topics and
// groups, on SQLite files or, for choreo-postgres, on fresh databases of the PostgreSQL that
// deployments/postgres/postgres.sh starts (PG_PORT, PG_DATA as for make up).
func (e env) startChoreo(ctx context.Context, system, ns string) (*running, error) {
	dbs := map[string]string{}
	r := &running{probes: map[string]string{}}
	if system == ChoreoPostgres {
		if e.pgErr != nil {
			return nil, e.pgErr
		}
		for _, svc := range []string{"account", "user", "notification"} {
			name := strings.ReplaceAll(ns, "-", "_") + "_" + svc
			out, err := exec.CommandContext(ctx, "bash", e.pgScript(), "db", name).Output()
			if err != nil {
				r.stop()
				return nil, fmt.Errorf("postgres.sh db %s: %w", name, err)
			}
			dbs[svc] = strings.TrimSpace(string(out))
			r.cleanup = append(r.cleanup, func() { _ = exec.Command("bash", e.pgScript(), "dropdb", name).Run() })
		}
	}
	data := filepath.Join(e.dir, ns)
	for _, svc := range []string{"account", "user", "notification"} {
		addr, err := freeAddr()
		if err != nil {
			r.stop()
			return nil, err
		}
		p, err := startProc(e.dir, system+"-"+svc, []string{
			"KAFKA_BROKERS=" + e.brokers, "SCHEMA_REGISTRY_URL=" + e.registryURL, "DATA_DIR=" + data,
			"DATABASE_URL=" + dbs[svc], "HTTP_ADDR=" + addr, "CHOREO_NAMESPACE=" + ns, "SMTP_ADDR=" + e.smtpAddr,
			"TOPIC_PARTITIONS=" + strconv.Itoa(e.cfg.Partitions),
		}, filepath.Join(e.cfg.Bin, svc))
		if err != nil {
			r.stop()
			return nil, err
		}
		r.procs = append(r.procs, p)
		if err := waitHTTP(ctx, p, "http://"+addr+"/readyz", 90*time.Second); err != nil {
			r.stop()
			return nil, err
		}
		r.probes[svc] = "http://" + addr + "/metrics"
	}
	return r, nil
}

// handled sums a service's choreo_consumer_records_total{outcome="handled"}.
func handled(ctx context.Context, url string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "choreo_consumer_records_total{") || !strings.Contains(l, `outcome="handled"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, l, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// stageProbe samples each stage's handled counter every 100 ms during a burst.
type stageProbe struct {
	mu      sync.Mutex
	samples map[string][]sample
	urls    map[string]string
	ctx     context.Context
	stop    chan struct{}
	wg      sync.WaitGroup
}

type sample struct {
	at time.Time
	n  float64
}

func probeStages(ctx context.Context, urls map[string]string) *stageProbe {
	p := &stageProbe{samples: map[string][]sample{}, urls: urls, ctx: ctx, stop: make(chan struct{})}
	for stage, url := range urls {
		// The first sample is taken before the burst starts: it is the base the rest count from.
		if n, err := handled(ctx, url); err == nil {
			p.samples[stage] = []sample{{time.Now(), n}}
		}
		p.wg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if n, err := handled(ctx, url); err == nil {
					p.mu.Lock()
					p.samples[stage] = append(p.samples[stage], sample{time.Now(), n})
					p.mu.Unlock()
				}
			}
		})
	}
	return p
}

// rates stops the probe and returns each stage's own rate: n events over the time from the
// last sample before its counter moved to the first sample at which it had handled all n.
func (p *stageProbe) rates(n int) map[string]float64 {
	close(p.stop)
	p.wg.Wait()
	for stage, url := range p.urls { // a last sample, in case the stage finished since the one before
		if n, err := handled(p.ctx, url); err == nil {
			p.samples[stage] = append(p.samples[stage], sample{time.Now(), n})
		}
	}
	out := map[string]float64{}
	for stage, ss := range p.samples {
		if len(ss) == 0 {
			continue
		}
		base := ss[0].n
		var from time.Time
		for i, s := range ss {
			if from.IsZero() && s.n > base {
				from = ss[max(i-1, 0)].at
			}
			if s.n-base >= float64(n) {
				out[stage] = float64(n) / s.at.Sub(from).Seconds()
				break
			}
		}
	}
	return out
}
