// Package harness runs make bench: the registration chain (AccountCreated on the accounts
// topic -> UserCreated on the users topic -> a welcome email over SMTP) measured from outside
// the processes that run it, on one broker, for choreo's services and for its peers.
//
// A chain starts when the harness hands its AccountCreated (Avro, Confluent wire format, the
// CloudEvents headers choreo publish writes) to its producer and ends when the harness's own
// SMTP server accepts the welcome email to the chain's unique address.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/bench/internal/smtpsink"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/event"
)

// Config is one run.
type Config struct {
	// Root is the repository's root, for deployments/postgres/postgres.sh.
	Root string
	// Bin holds the choreo, account, user and notification binaries (make build).
	Bin string
	// Self is the bench binary, started as `<Self> peer -system ...` for each peer.
	Self string
	// Brokers, when set, is the Kafka cluster to use; otherwise the run starts
	// `choreo dev -broker-only` (the embedded broker) in its own process.
	Brokers []string
	// Systems to measure, from AllSystems, in its order.
	Systems []string
	// N is the burst's size.
	N int
	// Duration is how long each fixed rate runs.
	Duration time.Duration
	// Rates are the fixed rates, chains per second.
	Rates []int
	// Partitions of every topic.
	Partitions int
	// Drain bounds the wait for the last emails after the last publication of a phase.
	Drain time.Duration
	// Out receives the table; Log the progress.
	Out, Log io.Writer
}

// Row is one system's results.
type Row struct {
	System string
	// Burst is the N-chain burst; Stages the choreo services' own rates in it.
	Burst  phaseResult
	Stages map[string]float64
	// Steady has one result per rate of Config.Rates; StageLatency, for choreo, what its
	// services measured of each of latencyStages in each (nil where they could not be read).
	Steady       []phaseResult
	StageLatency []*stageLatency
	// RSS is the peak resident memory of each of the system's processes.
	RSS []namedBytes
	// Err is why the system has no (complete) results.
	Err error
}

type namedBytes struct {
	name  string
	bytes int64
}

// Run measures every system of cfg in turn and prints the table.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	dir, err := os.MkdirTemp("", "choreo-bench-")
	if err != nil {
		return nil, err
	}
	// Registered first, so it runs after the processes have stopped (the registry writes its
	// state on the way out): the logs are kept when a system failed, removed otherwise.
	keep := true
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	e := env{cfg: cfg, dir: dir}
	fmt.Fprintf(cfg.Log, "bench: logs in %s\n", dir)
	loadStart := loadAvg()
	if slices.Contains(cfg.Systems, ChoreoPostgres) {
		var stopPG func()
		stopPG, e.pgErr = e.startPostgres(ctx)
		defer stopPG()
	}
	var infra []*proc
	defer func() {
		for i := len(infra) - 1; i >= 0; i-- {
			infra[i].stop()
		}
	}()
	brokers := cfg.Brokers
	brokerName := strings.Join(brokers, ",")
	if len(brokers) == 0 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		p, err := startProc(dir, "broker", nil, filepath.Join(cfg.Bin, "choreo"), "dev", "-broker-only", "-kafka-port", port)
		if err != nil {
			return nil, err
		}
		infra = append(infra, p)
		brokers, brokerName = []string{addr}, "embedded (choreo dev -broker-only, kfake) "+addr
	}
	e.brokers = strings.Join(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	e.admin = kadm.NewClient(cl)
	if err := waitBroker(ctx, e.admin); err != nil {
		return nil, err
	}

	tr := newTracker()
	sink, err := smtpsink.Start("127.0.0.1:0", tr.deliver)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	e.smtpAddr = sink.Addr()

	regAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	reg, err := startProc(dir, "registry", nil, filepath.Join(cfg.Bin, "choreo"), "registry", "-addr", regAddr, "-data-dir", filepath.Join(dir, "registry"))
	if err != nil {
		return nil, err
	}
	infra = append(infra, reg)
	e.registryURL = "http://" + regAddr
	if err := waitHTTP(ctx, reg, e.registryURL+"/subjects", 60*time.Second); err != nil {
		return nil, err
	}
	srcl, err := sr.NewClient(sr.URLs(e.registryURL))
	if err != nil {
		return nil, err
	}
	types, err := event.Load()
	if err != nil {
		return nil, err
	}

	runID := time.Now().UTC().Format("0102-150405")
	var rows []Row
	for _, system := range cfg.Systems {
		ns := "bench-" + runID + "-" + system
		fmt.Fprintf(cfg.Log, "bench: %s (topics %s.*)\n", label(system), ns)
		row := Row{System: system}
		row.Err = measure(ctx, e, tr, cl, srcl, types, system, ns, &row)
		if row.Err != nil {
			fmt.Fprintf(cfg.Log, "bench: %s: %v\n", label(system), row.Err)
		}
		rows = append(rows, row)
		if ctx.Err() != nil {
			break
		}
	}
	var brokerRSS int64
	if len(cfg.Brokers) == 0 {
		brokerRSS, _ = infra[0].peakRSS()
	}
	deleteTopics(ctx, e.admin, "bench-"+runID+"-")
	printTable(cfg, rows, header{
		date: time.Now().UTC(), broker: brokerName, brokerRSS: brokerRSS,
		loadStart: loadStart, loadEnd: loadAvg(),
	})
	if ctx.Err() != nil {
		return rows, ctx.Err()
	}
	var errs []error
	for _, r := range rows {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label(r.System), r.Err))
		}
	}
	if keep = len(errs) > 0; keep {
		errs = append(errs, fmt.Errorf("logs kept in %s", dir))
	}
	return rows, errors.Join(errs...)
}

// errSkipped marks a system the machine cannot run.
var errSkipped = errors.New("skipped")

// measure starts system, runs the warm-up, the burst and the fixed rates, and stops it.
func measure(ctx context.Context, e env, tr *tracker, cl *kgo.Client, srcl *sr.Client, types *event.TypeSet, system, ns string, row *Row) error {
	if system == ChoreoPostgres && e.pgErr != nil {
		return e.pgErr
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cd, err := codec.New(cctx, srcl, types.WithNamespace(ns))
	cancel()
	if err != nil {
		return fmt.Errorf("register schemas: %w", err)
	}
	var sys *running
	switch {
	case isChoreo(system):
		sys, err = e.startChoreo(ctx, system, ns)
	case system == Bare || system == Watermill:
		ut, terr := types.ByName("UserCreated")
		if terr != nil {
			return terr
		}
		sys, err = e.startPeer(ctx, system, ns, cd.SchemaID(ut))
	default:
		return fmt.Errorf("unknown system %q (want one of %s)", system, strings.Join(AllSystems, ", "))
	}
	if err != nil {
		return err
	}
	defer sys.stop()
	// The warm-up waits out consumer-group joins, topic metadata and connection set-up.
	warm, err := chains(cd, system, "warm", 20)
	if err != nil {
		return err
	}
	if _, err := tr.run(ctx, cl, warm, 0, 2*time.Minute); err != nil {
		return fmt.Errorf("warm-up: %w\n%s", err, tails(sys))
	}
	burst, err := chains(cd, system, "burst", e.cfg.N)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.cfg.Log, "bench: %s: burst of %d\n", label(system), e.cfg.N)
	var probe *stageProbe
	if isChoreo(system) {
		probe = probeStages(ctx, map[string]string{"hop1": sys.probes["user"], "hop2": sys.probes["notification"]})
	}
	row.Burst, err = tr.run(ctx, cl, burst, 0, e.cfg.Drain)
	if probe != nil {
		row.Stages = probe.rates(e.cfg.N)
	}
	if err != nil {
		return fmt.Errorf("burst: %w", err)
	}
	for _, rate := range e.cfg.Rates {
		n := max(1, int(e.cfg.Duration.Seconds()*float64(rate)))
		cs, err := chains(cd, system, fmt.Sprintf("r%d", rate), n)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.cfg.Log, "bench: %s: %d/s for %s\n", label(system), rate, e.cfg.Duration)
		var before []histogram
		if isChoreo(system) {
			if before, err = readStages(ctx, sys.probes); err != nil {
				fmt.Fprintf(e.cfg.Log, "bench: %s: stage latencies not read: %v\n", label(system), err)
			}
		}
		res, err := tr.run(ctx, cl, cs, rate, e.cfg.Drain)
		row.Steady = append(row.Steady, res)
		var sl *stageLatency
		if before != nil {
			after, serr := readStagesAfter(ctx, sys.probes, before, res.got)
			if serr != nil {
				fmt.Fprintf(e.cfg.Log, "bench: %s: stage latencies not read: %v\n", label(system), serr)
			} else {
				st := stagesBetween(before, after)
				sl = &st
			}
		}
		row.StageLatency = append(row.StageLatency, sl)
		if err != nil {
			return fmt.Errorf("%d/s: %w", rate, err)
		}
	}
	for _, p := range sys.procs {
		b, err := p.peakRSS()
		if err != nil {
			return fmt.Errorf("peak RSS of %s: %w", p.name, err)
		}
		row.RSS = append(row.RSS, namedBytes{strings.TrimPrefix(p.name, system+"-"), b})
	}
	return nil
}

func tails(r *running) string {
	var b strings.Builder
	for _, p := range r.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, p.tail())
	}
	return b.String()
}

// waitBroker waits until the cluster answers a metadata request.
func waitBroker(ctx context.Context, adm *kadm.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := adm.ListBrokers(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("Kafka did not answer within 60s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deleteTopics removes the run's topics, so a real cluster is left as it was found.
func deleteTopics(ctx context.Context, adm *kadm.Client, prefix string) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ts, err := adm.ListTopics(cctx)
	if err != nil {
		return
	}
	var names []string
	for _, t := range ts.Names() {
		if strings.HasPrefix(t, prefix) {
			names = append(names, t)
		}
	}
	slices.Sort(names)
	if len(names) > 0 {
		_, _ = adm.DeleteTopics(cctx, names...)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machine describes the CPU the run had.
func machine() string {
	model := runtime.GOARCH
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs (%s/%s)", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}
