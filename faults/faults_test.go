// Package faults_test drives thousands of registrations through the Account, User and
// Notification Services running as separate OS processes on a real Apache Kafka broker and
// PostgreSQL, injects one fault mid-stream (kill -9 of a service, a broker restart, a rebalance,
// duplicated records), and checks that every account ends with exactly one user and exactly one
// welcome email and that no event was lost.
//
// The tests run only with CHOREO_FAULTS=1 (make test-faults). See README.md.
package faults_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
)

const skipReason = "set CHOREO_FAULTS=1 (make test-faults) to run the fault tests: they start a real Kafka broker, PostgreSQL and service processes"

// Settings, each overridable from the environment for local runs.
var (
	registrations = envInt("CHOREO_FAULTS_N", 2000)         // registrations per scenario
	workers       = envInt("CHOREO_FAULTS_WORKERS", 8)      // concurrent POST /accounts
	rate          = envInt("CHOREO_FAULTS_RATE", 100)       // registrations per second, 0 unlimited
	convergeAfter = envInt("CHOREO_FAULTS_WAIT", 90)        // seconds to wait for every account's user and email after traffic
	dupFraction   = envInt("CHOREO_FAULTS_DUP_PERCENT", 10) // % of registrations re-published in the duplicates scenario
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// scenario is one fault injected into one stream of registrations.
type scenario struct {
	name string // subtest name
	key  string // short, lower-case, for schema names
	// skip returns why the scenario cannot run here, or "".
	skip func(in *infra) string
	// steps are the faults, in order, each run once the given fraction of registrations is sent.
	steps func(r *run) []step
	// check runs scenario-specific assertions after the common ones.
	check func(r *run, res *result)
	// sqlite names the services that run on SQLite under their DATA_DIR (no DATABASE_URL); the
	// checks read their database file instead of their PostgreSQL schema.
	sqlite []string
}

type step struct {
	at   float64
	what string
	do   func() error
}

var scenarios = []scenario{
	{
		name: "kill-user-service", key: "killuser",
		steps: func(r *run) []step {
			return []step{{0.4, "kill -9 the user-service, then restart it", func() error { return r.killAndRestart("user-service") }}}
		},
	},
	{
		name: "kill-notification-service", key: "killnotif",
		steps: func(r *run) []step {
			return []step{{0.4, "kill -9 the notification-service, then restart it", func() error { return r.killAndRestart("notification-service") }}}
		},
	},
	{
		// On SQLite over SMTP the sender records each accepted email in its sent log, folded into
		// the database later: what the killed process left there must be folded by its successor
		// before it reads, or those emails are delivered a second time.
		name: "kill-notification-service-sqlite", key: "killnotifsqlite",
		sqlite: []string{"notification-service"},
		steps: func(r *run) []step {
			return []step{{0.4, "kill -9 the notification-service (on SQLite) once its sent log holds an email, then restart it", func() error {
				return r.killAndRestartWhen("notification-service", func() { r.awaitSentLog(15 * time.Second) })
			}}}
		},
		check: checkSentLog,
	},
	{
		name: "broker-restart", key: "broker",
		skip: func(in *infra) string {
			if !in.ownBroker {
				return "KAFKA_BROKERS is set: that broker is not the test's to restart (unset it to let the test start its own)"
			}
			return ""
		},
		steps: func(r *run) []step {
			return []step{{0.4, "restart the broker (kafka.sh restart)", r.restartBroker}}
		},
	},
	{
		name: "rebalance", key: "rebalance",
		steps: func(r *run) []step {
			return []step{
				{0.33, "start a second user-service instance (rebalance)", r.startSecondUser},
				{0.66, "SIGTERM the first user-service instance (rebalance)", r.stopFirstUser},
			}
		},
		check: func(r *run, res *result) {
			if res.secondHandled == 0 {
				r.t.Errorf("the second user-service instance handled no record: no rebalance gave it partitions")
			}
		},
	},
	{
		name: "duplicates", key: "dups",
		skip: func(*infra) string {
			if _, err := exec.LookPath("kcat"); err != nil {
				return "kcat not found on PATH (apt-get install kcat); it re-publishes the duplicates"
			}
			return ""
		},
		steps: func(r *run) []step {
			return []step{{0.4, "re-publish a slice of the accounts topic with kcat, same key and headers", r.injectDuplicates}}
		},
		check: func(r *run, res *result) {
			if res.injected == 0 {
				r.t.Errorf("no duplicate was injected")
			}
			if res.dupUser < int64(res.injected) {
				r.t.Errorf("user-service suppressed %d duplicates, want at least the %d injected", res.dupUser, res.injected)
			}
			if res.accRecords < res.sent+res.injected {
				r.t.Errorf("accounts topic holds %d records, want at least %d sent + %d injected", res.accRecords, res.sent, res.injected)
			}
		},
	},
}

func TestFaults(t *testing.T) {
	if os.Getenv("CHOREO_FAULTS") != "1" {
		t.Skip(skipReason)
	}
	if registrations < 1 || workers < 1 {
		t.Fatalf("CHOREO_FAULTS_N=%d and CHOREO_FAULTS_WORKERS=%d must be at least 1", registrations, workers)
	}
	stopOnInterrupt(t)
	in := setUp(t, (*infra).startBroker)
	t.Logf("faults: %d registrations per scenario, %d workers, rate %d/s (0 = unlimited), brokers %s",
		registrations, workers, rate, strings.Join(in.brokers, ","))
	runScenarios(t, in, scenarios)
}

// runScenarios runs each scenario as a subtest, one after the other, and logs the summary of all.
func runScenarios(t *testing.T, in *infra, scenarios []scenario) {
	var summary []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var (
				res     *result
				skipped string
			)
			defer func() {
				switch {
				case t.Skipped():
					summary = append(summary, fmt.Sprintf("faults: %-26s SKIPPED: %s", sc.name, skipped))
				case res == nil:
					summary = append(summary, fmt.Sprintf("faults: %-26s FAILED before counting", sc.name))
				case t.Failed():
					summary = append(summary, res.line()+" FAILED")
				default:
					summary = append(summary, res.line())
				}
			}()
			if d, ok := t.Deadline(); ok && time.Until(d) < 4*time.Minute {
				// A timeout panic would skip the clean-ups and leave the broker and the services running.
				// Failing here (not skipping) keeps a slow run from passing with scenarios unrun.
				t.Fatalf("only %s left before the test binary's -timeout; a scenario may take 3 minutes", time.Until(d).Round(time.Second))
			}
			if sc.skip != nil {
				if skipped = sc.skip(in); skipped != "" {
					t.Skip(skipped)
				}
			}
			r := runScenario(t, in, sc)
			res = &r
		})
	}
	t.Log("faults: summary\n" + strings.Join(summary, "\n"))
}

// --- interrupts ----------------------------------------------------------------------------

// onInterrupt holds what must not outlive the test binary when it is interrupted (Ctrl-C): the
// service process groups (which do not get the terminal's SIGINT), the broker and PostgreSQL.
var onInterrupt struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// atInterrupt registers fn to run if the test binary is interrupted; the returned func
// unregisters it.
func atInterrupt(fn func()) (remove func()) {
	onInterrupt.mu.Lock()
	defer onInterrupt.mu.Unlock()
	if onInterrupt.fns == nil {
		onInterrupt.fns = map[int]func(){}
	}
	id := onInterrupt.next
	onInterrupt.next++
	onInterrupt.fns[id] = fn
	return func() {
		onInterrupt.mu.Lock()
		defer onInterrupt.mu.Unlock()
		delete(onInterrupt.fns, id)
	}
}

// stopOnInterrupt runs the registered clean-ups, newest first, on SIGINT or SIGTERM, then exits.
func stopOnInterrupt(t *testing.T) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	t.Cleanup(func() {
		signal.Stop(ch)
		close(done)
	})
	go func() {
		select {
		case <-done:
			return
		case sig := <-ch:
			fmt.Fprintf(os.Stderr, "faults: %s: stopping the processes, the broker and PostgreSQL the test started\n", sig)
		}
		onInterrupt.mu.Lock()
		ids := make([]int, 0, len(onInterrupt.fns))
		for id := range onInterrupt.fns {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		fns := make([]func(), 0, len(ids))
		for _, id := range slices.Backward(ids) {
			fns = append(fns, onInterrupt.fns[id])
		}
		onInterrupt.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
		os.Exit(2)
	}()
}

// --- infrastructure ------------------------------------------------------------------------

// infra is what the scenarios share: binaries, broker, database server, schema registry.
type infra struct {
	root        string // the repository
	bin         string // built binaries
	tmp         string
	brokers     []string
	ownBroker   bool
	kafkaEnv    []string // kafka.sh's environment when the test started the broker
	dbURL       string
	db          *sql.DB
	registryURL string
}

// setUp builds the binaries and starts what the scenarios share; startBroker provides the brokers.
func setUp(t *testing.T, startBroker func(*infra, *testing.T)) *infra {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	in := &infra{root: root, tmp: t.TempDir()}
	t.Cleanup(atInterrupt(func() { _ = os.RemoveAll(filepath.Dir(in.tmp)) })) // t.TempDir's parent is the test's own
	in.bin = mkdir(t, in.tmp, "bin")

	start := time.Now()
	gobin := os.Getenv("GO")
	if gobin == "" {
		gobin = "go"
	}
	build := exec.Command(gobin, "build", "-o", in.bin+"/", "./cmd/choreo", "./services/account", "./services/user", "./services/notification")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("faults: built binaries in %s", time.Since(start).Round(time.Millisecond))

	startBroker(in, t)
	in.startPostgres(t)

	in.db, err = sql.Open("pgx", in.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.db.Close() })
	if err := in.db.Ping(); err != nil {
		t.Fatalf("PostgreSQL at the test's DATABASE_URL: %v", err)
	}

	addr := freeAddr(t)
	reg := &proc{
		name: "schema-registry", path: filepath.Join(in.bin, "choreo"),
		args:    []string{"registry", "-addr", addr, "-data-dir", mkdir(t, in.tmp, "registry")},
		env:     os.Environ(),
		addr:    addr,
		health:  "http://" + addr + "/subjects",
		logPath: filepath.Join(in.tmp, "schema-registry.log"),
	}
	t.Cleanup(func() {
		reg.terminate()
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", reg.logPath, tail(reg.logPath, 20))
		}
	})
	if err := reg.start(); err != nil {
		t.Fatal(err)
	}
	in.registryURL = "http://" + addr
	return in
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// startBroker uses KAFKA_BROKERS, or starts a broker of the test's own with kafka.sh on free
// ports and a data directory of its own, so it never meets a developer's broker.
func (in *infra) startBroker(t *testing.T) {
	t.Helper()
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		in.brokers = strings.Split(v, ",")
		t.Logf("faults: using KAFKA_BROKERS=%s", v)
		return
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		t.Skip("no KAFKA_BROKERS and no java on PATH: the test's broker needs Java 17+ (and Maven once)")
	}
	port, ctrl := freePort(t), freePort(t)
	in.kafkaEnv = append(os.Environ(),
		"KAFKA_PORT="+strconv.Itoa(port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(ctrl),
		"KAFKA_DATA_DIR="+filepath.Join(in.tmp, "kafka"),
	)
	in.brokers = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	in.ownBroker = true
	unregister := atInterrupt(func() { _, _ = in.kafka("stop") })
	t.Cleanup(func() {
		unregister()
		if out, err := in.kafka("stop"); err != nil {
			t.Errorf("kafka.sh stop: %v\n%s", err, out)
		}
	})
	start := time.Now()
	if out, err := in.kafka("start"); err != nil {
		t.Fatalf("kafka.sh start: %v\n%s", err, out)
	}
	t.Logf("faults: started a broker on %s in %s", in.brokers[0], time.Since(start).Round(time.Millisecond))
}

// kafka runs kafka.sh cmd against the test's broker.
func (in *infra) kafka(cmd string) ([]byte, error) {
	c := exec.Command("bash", filepath.Join(in.root, "deployments/kafka/kafka.sh"), cmd)
	c.Env = in.kafkaEnv
	return c.CombinedOutput()
}

// startPostgres uses TEST_DATABASE_URL, or starts a server of the test's own with postgres.sh on
// a free port. Its data directory is directly under /tmp: the server runs as the postgres user,
// which must reach it.
func (in *infra) startPostgres(t *testing.T) {
	t.Helper()
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		in.dbURL = v
		t.Log("faults: using TEST_DATABASE_URL")
		return
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 {
		t.Skip("no TEST_DATABASE_URL and no PostgreSQL server installed (apt-get install postgresql)")
	}
	parent, err := os.MkdirTemp("/tmp", "choreo-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PG_PORT="+strconv.Itoa(freePort(t)), "PG_DATA="+filepath.Join(parent, "data"))
	script := filepath.Join(in.root, "deployments/postgres/postgres.sh")
	pg := func(cmd string) ([]byte, error) {
		c := exec.Command("bash", script, cmd)
		c.Env = env
		return c.CombinedOutput()
	}
	unregister := atInterrupt(func() {
		_, _ = pg("stop")
		_ = os.RemoveAll(parent)
	})
	t.Cleanup(func() {
		unregister()
		if out, err := pg("stop"); err != nil {
			t.Errorf("postgres.sh stop: %v\n%s", err, out)
		}
		_ = os.RemoveAll(parent)
	})
	start := time.Now()
	if out, err := pg("start"); err != nil {
		t.Fatalf("postgres.sh start: %v\n%s", err, out)
	}
	out, err := pg("url")
	if err != nil {
		t.Fatalf("postgres.sh url: %v\n%s", err, out)
	}
	in.dbURL = strings.TrimSpace(string(out))
	t.Logf("faults: started PostgreSQL (%s) in %s", in.dbURL, time.Since(start).Round(time.Millisecond))
}

// pickPort returns a loopback port nobody listens on right now.
func pickPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := pickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t *testing.T) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))) }

// --- processes -----------------------------------------------------------------------------

// proc is one OS process (a service instance or the registry) in its own process group, its
// output appended to logPath across restarts.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	addr    string // HTTP address
	health  string // URL that answers 200 once it is up
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts the process and waits until it answers its health URL. A service that exits
// because another process took its HTTP port between pickPort and its bind (any outgoing
// connection may be given that port) is started again on a new one, up to three times.
func (p *proc) start() error {
	for try := 1; ; try++ {
		err := p.startOnce()
		if err == nil || try == 3 || !errors.Is(err, errExitedAtStart) || !strings.Contains(tail(p.logPath, 5), "address already in use") || !p.newHTTPAddr() {
			return err
		}
	}
}

// errExitedAtStart marks a process that exited before it answered its health URL.
var errExitedAtStart = errors.New("exited at start")

// newHTTPAddr moves the process to a fresh HTTP_ADDR; false if its address is not set that way.
func (p *proc) newHTTPAddr() bool {
	port, err := pickPort()
	if err != nil {
		return false
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i, kv := range p.env {
		if strings.HasPrefix(kv, "HTTP_ADDR=") && strings.TrimPrefix(kv, "HTTP_ADDR=") == p.addr {
			p.env = append(slices.Clone(p.env[:i]), append([]string{"HTTP_ADDR=" + addr}, p.env[i+1:]...)...)
			p.addr, p.health = addr, "http://"+addr+"/healthz"
			return true
		}
	}
	return false
}

func (p *proc) startOnce() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== faults: %s start %s\n", time.Now().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(p.path, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	f.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	unregister := atInterrupt(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	go func() {
		_ = cmd.Wait()
		unregister()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s %w (%s); last lines of %s:\n%s", p.name, errExitedAtStart, cmd.ProcessState, p.logPath, tail(p.logPath, 30))
		default:
		}
		if resp, err := httpClient.Get(p.health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within 90s; last lines of %s:\n%s", p.name, p.health, p.logPath, tail(p.logPath, 30))
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process and waits up to wait for it to exit; past that it kills the
// whole process group.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return fmt.Errorf("%s did not exit within %s of %s; killed", p.name, wait, sig)
}

// terminate stops the process if it still runs: SIGTERM, then SIGKILL of its process group.
// (A group is signalled only while its leader is not reaped, so its ID cannot have been reused.)
func (p *proc) terminate() {
	if p.running() {
		_ = p.signal(syscall.SIGTERM, 15*time.Second)
	}
}

// stats is a service's consumer counters, from GET /stats.
type stats struct {
	Handled, Duplicates, Parked, Ignored, Retried int64
}

func (s stats) plus(o stats) stats {
	return stats{s.Handled + o.Handled, s.Duplicates + o.Duplicates, s.Parked + o.Parked, s.Ignored + o.Ignored, s.Retried + o.Retried}
}

func (p *proc) stats() (stats, error) {
	var body struct {
		Service  string `json:"service"`
		Consumer stats  `json:"consumer"`
	}
	code, err := getJSON("http://"+p.addr+"/stats", &body)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /stats of %s: status %d", p.name, code)
	}
	return body.Consumer, err
}

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 64},
}

func getJSON(u string, out any) (int, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("GET %s: %d %s: %w", u, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, nil
}

// logLevels counts a service log's lines by slog level, with the most frequent warning and
// error messages.
func logLevels(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	levels := map[string]int{}
	msgs := map[string]int{}
	for line := range strings.Lines(string(b)) {
		_, rest, ok := strings.Cut(line, " level=")
		if !ok {
			continue
		}
		level, rest, _ := strings.Cut(rest, " ")
		levels[level]++
		if level == "WARN" || level == "ERROR" {
			msg, _, _ := strings.Cut(strings.TrimPrefix(rest, "msg="), " service=")
			msgs[level+" "+msg]++
		}
	}
	out := fmt.Sprintf("%d INFO, %d WARN, %d ERROR", levels["INFO"], levels["WARN"], levels["ERROR"])
	keys := make([]string, 0, len(msgs))
	for k := range msgs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return msgs[b] - msgs[a] })
	for _, k := range keys[:min(3, len(keys))] {
		out += fmt.Sprintf("; %dx %s", msgs[k], k)
	}
	return out
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- one scenario --------------------------------------------------------------------------

// run is one scenario's deployment: its namespace (topics and groups), its database schemas and
// its service processes.
type run struct {
	t   *testing.T
	in  *infra
	sc  scenario
	ns  string
	dir string

	schemas map[string]string // service -> its schema

	mu       sync.Mutex
	procs    []*proc            // every instance ever started, for clean-up
	live     map[string][]*proc // running instances by service
	past     map[string]stats   // counters of instances stopped or killed, by service
	second   *proc              // the rebalance scenario's second user-service
	accounts []account
	injected int
	// smtp is the scenario's mail server: it records every email the notification-service
	// hands over, so a second delivery of one email is seen (rows and mailboxes keyed by
	// Message-ID would merge the two).
	smtp *smtptest.Server
	// notifKills counts SIGKILLs of a notification-service: each may resend the one email it
	// had handed over but not yet recorded as sent (the sender's documented at-least-once
	// window; the resend carries the same Message-ID).
	notifKills int
	// leftInLog holds the Message-IDs a killed notification-service on SQLite left in its sent
	// log (accepted by the mail server, not yet folded into its database).
	leftInLog []string
	sqliteDBs map[string]*sql.DB // read-only handles on the database files of services on SQLite
	events    []string           // what happened when, for the log
}

type account struct {
	ID, Username, Email, EventID string
}

var services = []struct{ name, bin string }{
	{"account-service", "account"},
	{"user-service", "user"},
	{"notification-service", "notification"},
}

func runScenario(t *testing.T, in *infra, sc scenario) result {
	began := time.Now()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	r := &run{
		t: t, in: in, sc: sc,
		ns:      "faults-" + sc.name + "-" + suffix,
		dir:     t.TempDir(),
		schemas: map[string]string{},
		live:    map[string][]*proc{},
		past:    map[string]stats{},
		smtp:    smtptest.Start(t),
	}
	for _, s := range services {
		r.schemas[s.name] = "faults_" + sc.key + "_" + suffix + "_" + strings.TrimSuffix(s.name, "-service")
	}
	t.Cleanup(atInterrupt(func() { _ = os.RemoveAll(filepath.Dir(r.dir)) }))
	t.Cleanup(r.cleanUp)
	for _, s := range services {
		p, err := r.newInstance(s.name, s.bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		r.addLive(s.name, p)
	}
	t.Logf("%s: namespace %s, services up in %s", sc.name, r.ns, time.Since(began).Round(time.Millisecond))

	trafficStart := time.Now()
	r.traffic(sc.steps(r))
	trafficTook := time.Since(trafficStart)
	t.Logf("%s: %d registrations sent in %s", sc.name, len(r.accounts), trafficTook.Round(time.Millisecond))

	convStart := time.Now()
	r.converge(time.Duration(convergeAfter) * time.Second)
	res := r.verify()
	res.traffic, res.converge, res.total = trafficTook, time.Since(convStart), time.Since(began)
	if sc.check != nil {
		sc.check(r, &res)
	}
	for _, e := range r.events {
		t.Logf("%s: %s", sc.name, e)
	}
	for _, p := range r.procs {
		t.Logf("%s: %s log: %s", sc.name, p.name, logLevels(p.logPath))
	}
	t.Logf("%s: sent %d; users %d; welcome emails %d (notifications table, sent), %d (accounts with an SMTP delivery), %d (GET /notifications); second SMTP deliveries %d",
		sc.name, res.sent, res.users, res.welcomeDB, res.welcomeSMTP, res.welcomeAPI, res.resent)
	t.Logf("%s: duplicates suppressed %d (user-service %d + notification-service %d); parked %d (/stats), %d (dead-letter topics); retried %d",
		sc.name, res.dupUser+res.dupNotif, res.dupUser, res.dupNotif, res.parkedStats, res.parkedDLQ, res.retried)
	t.Logf("%s: accounts topic %d records, %d distinct AccountCreated; users topic %d records, %d distinct UserCreated; injected duplicates %d",
		sc.name, res.accRecords, res.accDistinct, res.userRecords, res.userDistinct, res.injected)
	t.Logf("%s: traffic %s, convergence and checks %s, scenario %s",
		sc.name, res.traffic.Round(time.Millisecond), res.converge.Round(time.Millisecond), res.total.Round(time.Millisecond))
	return res
}

func (r *run) logEvent(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s after %d sent: ", time.Now().Format("15:04:05.000"), len(r.accounts))+fmt.Sprintf(format, a...))
}

// newInstance prepares (without starting) an instance of a service with the scenario's
// environment and a fresh HTTP address.
func (r *run) newInstance(service, bin string) (*proc, error) {
	dbURL := "" // set, though empty, so that a DATABASE_URL in the test's environment is not inherited
	if !r.onSQLite(service) {
		var err error
		if dbURL, err = postgres.WithSearchPath(r.in.dbURL, r.schemas[service]); err != nil {
			return nil, err
		}
	}
	port, err := pickPort() // not freeAddr: this runs on the fault goroutine too, where t.Fatal must not
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r.mu.Lock()
	n := 1
	for _, p := range r.procs {
		if strings.HasPrefix(p.name, service+"#") {
			n++
		}
	}
	p := &proc{
		name: fmt.Sprintf("%s#%d", service, n),
		path: filepath.Join(r.in.bin, bin),
		env: append(os.Environ(),
			"KAFKA_BROKERS="+strings.Join(r.in.brokers, ","),
			"SCHEMA_REGISTRY_URL="+r.in.registryURL,
			"DATA_DIR="+r.dataDir(service), // kept across a restart: the same for every instance
			"HTTP_ADDR="+addr,
			"DATABASE_URL="+dbURL,
			"CHOREO_NAMESPACE="+r.ns,
			"SMTP_ADDR="+r.smtp.Addr(),
			"TOPIC_PARTITIONS=6",
		),
		addr:    addr,
		health:  "http://" + addr + "/healthz",
		logPath: filepath.Join(r.dir, fmt.Sprintf("%s-%d.log", service, n)),
	}
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p, nil
}

func (r *run) onSQLite(service string) bool { return slices.Contains(r.sc.sqlite, service) }

func (r *run) dataDir(service string) string { return filepath.Join(r.dir, service) }

// sentLogPath is the notification-service's sent log, which it keeps on SQLite over SMTP.
func (r *run) sentLogPath() string {
	return notificationsvc.SentLogPath(service.Config{DataDir: r.dataDir("notification-service")})
}

// database returns where service's tables are and the schema that qualifies them: its
// PostgreSQL schema, or for a service on SQLite its database file, opened read-only ("main" is
// SQLite's name for it). WAL mode lets this reader see the service's commits while it runs.
func (r *run) database(service string) (*sql.DB, string, error) {
	if !r.onSQLite(service) {
		return r.in.db, r.schemas[service], nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if db, ok := r.sqliteDBs[service]; ok {
		return db, "main", nil
	}
	// pkg/service keeps a service's SQLite database at DATA_DIR/<name>/<name>.db.
	path := filepath.Join(r.dataDir(service), service, service+".db")
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("database of %s: %w", service, err)
	}
	uri := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) // as pkg/sqlite does
	db, err := sql.Open("sqlite", "file:"+uri+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, "", fmt.Errorf("database of %s: %w", service, err)
	}
	if r.sqliteDBs == nil {
		r.sqliteDBs = map[string]*sql.DB{}
	}
	r.sqliteDBs[service] = db
	return db, "main", nil
}

// readSentLog keeps the Message-IDs in the sent log, which only a killed process can have left
// unfolded (a new one folds it before its first read). Each line is "<unix milliseconds> <ID>".
func (r *run) readSentLog() error {
	b, err := os.ReadFile(r.sentLogPath())
	if err != nil {
		return fmt.Errorf("sent log of the killed notification-service: %w", err)
	}
	var ids []string
	for line := range strings.Lines(string(b)) {
		if _, id, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " "); ok && strings.HasSuffix(line, "\n") {
			ids = append(ids, id)
		}
	}
	r.mu.Lock()
	r.leftInLog = append(r.leftInLog, ids...)
	r.mu.Unlock()
	r.logEvent("the killed notification-service left %d emails in its sent log (%d bytes)", len(ids), len(b))
	return nil
}

// awaitSentLog waits, up to timeout, until the notification-service's sent log holds an email:
// a kill at that moment leaves the new process a log to fold. The sender folds whenever sending
// pauses, so at a modest rate the log is empty most of the time, and an entry stays for
// milliseconds: nothing may come between this and the kill.
func (r *run) awaitSentLog(timeout time.Duration) {
	start := time.Now()
	for time.Since(start) < timeout {
		if fi, err := os.Stat(r.sentLogPath()); err == nil && fi.Size() > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	r.logEvent("the sent log held no email within %s: killing anyway", timeout)
}

// checkSentLog checks that the notification-service on SQLite kept its sent log, and that each
// email a killed process left in it was delivered once and is recorded as sent: the log is its
// record, so unlike the one email accepted and not yet logged it must not be sent again.
func checkSentLog(r *run, _ *result) {
	t := r.t
	if _, err := os.Stat(r.sentLogPath()); err != nil {
		t.Errorf("the notification-service on SQLite over SMTP kept no sent log: %v", err)
	}
	r.mu.Lock()
	left := slices.Clone(r.leftInLog)
	r.mu.Unlock()
	if len(left) == 0 {
		return
	}
	db, schema, err := r.database("notification-service")
	if err != nil {
		t.Fatal(err)
	}
	deliveries := map[string]int{}
	for _, m := range r.smtp.Messages() {
		deliveries[m.MessageID()]++
	}
	var bad []string
	for _, id := range left {
		var status string
		err := db.QueryRow(fmt.Sprintf(`SELECT status FROM "%s".notifications WHERE message_id = $1`, schema), id).Scan(&status)
		if err != nil || status != "sent" || deliveries[id] != 1 {
			bad = append(bad, fmt.Sprintf("%s: status %q (%v), %d SMTP deliveries", id, status, err, deliveries[id]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of the %d emails the killed notification-service left in its sent log were not delivered exactly once and recorded as sent; first: %s",
			len(bad), len(left), strings.Join(bad[:min(5, len(bad))], "; "))
	}
}

func (r *run) addLive(service string, p *proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[service] = append(r.live[service], p)
}

func (r *run) instance(service string) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[service][0]
}

// retire takes p out of the live instances, keeping the counters it had.
func (r *run) retire(service string, p *proc, st stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[service] = slices.DeleteFunc(r.live[service], func(q *proc) bool { return q == p })
	r.past[service] = r.past[service].plus(st)
}

func (r *run) cleanUp() {
	r.mu.Lock()
	procs := slices.Clone(r.procs)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.terminate)
	}
	wg.Wait()
	r.mu.Lock()
	for _, db := range r.sqliteDBs {
		db.Close()
	}
	r.mu.Unlock()
	if r.t.Failed() {
		for _, p := range procs {
			r.t.Logf("last lines of %s:\n%s", p.logPath, tail(p.logPath, 25))
		}
	}
	for _, s := range r.schemas {
		if _, err := r.in.db.Exec(`DROP SCHEMA IF EXISTS "` + s + `" CASCADE`); err != nil {
			r.t.Errorf("drop schema %s: %v", s, err)
		}
	}
	if !r.in.ownBroker { // a shared broker: leave nothing of the scenario's behind
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.in.brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if tds, err := adm.ListTopics(ctx); err == nil {
			var mine []string
			for _, n := range tds.Names() {
				if strings.HasPrefix(n, r.ns+".") {
					mine = append(mine, n)
				}
			}
			_, _ = adm.DeleteTopics(ctx, mine...)
		}
		_, _ = adm.DeleteGroups(ctx, r.group("account-service"), r.group("user-service"), r.group("notification-service"))
	}
}

func (r *run) topic(name string) string    { return r.ns + "." + name }
func (r *run) group(service string) string { return r.ns + "." + service }

// --- traffic -------------------------------------------------------------------------------

// traffic registers the accounts with concurrent workers, at the configured rate, and runs each
// step once its share of registrations is sent, while the traffic goes on.
func (r *run) traffic(steps []step) {
	t := r.t
	n := registrations
	var sent atomic.Int64
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		var tick <-chan time.Time
		if rate > 0 {
			tk := time.NewTicker(time.Second / time.Duration(rate))
			defer tk.Stop()
			tick = tk.C
		}
		for i := range n {
			if tick != nil {
				<-tick
			}
			jobs <- i
		}
	}()
	var (
		errMu sync.Mutex
		errs  []string
		wg    sync.WaitGroup
	)
	trafficDone := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				a, err := r.register(i)
				if err != nil {
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
					continue
				}
				r.mu.Lock()
				r.accounts = append(r.accounts, a)
				r.mu.Unlock()
				sent.Add(1)
			}
		})
	}
	var stepErr error
	stepsDone := make(chan struct{})
	// reached waits until at least n registrations are sent, or the traffic is over.
	reached := func(n int64) {
		for sent.Load() < n {
			select {
			case <-trafficDone:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	go func() {
		defer close(stepsDone)
		for _, s := range steps {
			reached(int64(s.at * float64(n)))
			start := time.Now()
			r.logEvent("fault: %s", s.what)
			if err := s.do(); err != nil {
				stepErr = fmt.Errorf("%s: %w", s.what, err)
				return
			}
			r.logEvent("fault done in %s: %s", time.Since(start).Round(time.Millisecond), s.what)
		}
	}()
	wg.Wait()
	close(trafficDone)
	<-stepsDone
	if len(errs) > 0 {
		t.Errorf("%d of %d registrations failed; first: %s", len(errs), n, strings.Join(errs[:min(5, len(errs))], "; "))
	}
	if stepErr != nil {
		t.Fatal(stepErr)
	}
}

// register posts one registration; the username is unique to the scenario and the index.
func (r *run) register(i int) (account, error) {
	u := fmt.Sprintf("%s%06d", r.sc.key, i)
	a := account{Username: u, Email: u + "@faults.test"}
	body, _ := json.Marshal(map[string]string{"username": a.Username, "email": a.Email})
	acc := r.instance("account-service")
	resp, err := httpClient.Post("http://"+acc.addr+"/accounts", "application/json", bytes.NewReader(body))
	if err != nil {
		return a, fmt.Errorf("POST /accounts %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return a, fmt.Errorf("POST /accounts %s: %d %s", u, resp.StatusCode, b)
	}
	var out struct{ AccountID, EventID string }
	if err := json.Unmarshal(b, &out); err != nil || out.AccountID == "" || out.EventID == "" {
		return a, fmt.Errorf("POST /accounts %s: %s: %v", u, b, err)
	}
	a.ID, a.EventID = out.AccountID, out.EventID
	return a, nil
}

// --- faults --------------------------------------------------------------------------------

// killAndRestart sends SIGKILL to the live instance of service and starts a new one with the
// same environment (and HTTP address).
func (r *run) killAndRestart(service string) error { return r.killAndRestartWhen(service, func() {}) }

// killAndRestartWhen is killAndRestart with the SIGKILL sent as soon as await returns.
func (r *run) killAndRestartWhen(service string, await func()) error {
	p := r.instance(service)
	st, _ := p.stats() // what it counted until now; whatever it counts after is lost with it
	await()
	if err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		return err
	}
	r.retire(service, p, st)
	r.mu.Lock()
	if service == "notification-service" {
		r.notifKills++
	}
	r.mu.Unlock()
	r.logEvent("%s killed (its /stats just before: %+v)", p.name, st)
	if service == "notification-service" && r.onSQLite(service) {
		if err := r.readSentLog(); err != nil {
			return err
		}
	}
	q, err := r.newInstance(service, filepath.Base(p.path))
	if err != nil {
		return err
	}
	q.env, q.addr, q.health = p.env, p.addr, p.health
	if err := q.start(); err != nil {
		return err
	}
	r.addLive(service, q)
	r.logEvent("%s started in place of %s", q.name, p.name)
	return nil
}

// restartBroker restarts the test's own broker with kafka.sh, with the same ports and data.
func (r *run) restartBroker() error {
	out, err := r.in.kafka("restart")
	if err != nil {
		return fmt.Errorf("kafka.sh restart: %w\n%s", err, out)
	}
	r.logEvent("kafka.sh restart: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	return nil
}

func (r *run) startSecondUser() error {
	q, err := r.newInstance("user-service", "user")
	if err != nil {
		return err
	}
	if err := q.start(); err != nil {
		return err
	}
	r.addLive("user-service", q)
	r.mu.Lock()
	r.second = q
	r.mu.Unlock()
	return nil
}

func (r *run) stopFirstUser() error {
	p := r.instance("user-service")
	if r.second == p {
		return errors.New("the first user-service instance is gone already")
	}
	st, err := p.stats()
	if err != nil {
		return err
	}
	if err := p.signal(syscall.SIGTERM, 30*time.Second); err != nil {
		return err
	}
	r.retire("user-service", p, st)
	r.logEvent("%s stopped with SIGTERM (its /stats just before: %+v)", p.name, st)
	if st2, err := r.second.stats(); err == nil {
		r.logEvent("%s /stats: %+v", r.second.name, st2)
	}
	return nil
}

// injectDuplicates reads the first records of the accounts topic and publishes each again with
// kcat: same partition, key, value and headers.
func (r *run) injectDuplicates() error {
	want := max(1, registrations*dupFraction/100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.in.brokers...), kgo.ConsumeTopics(r.topic("accounts")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			cl.Close()
			return fmt.Errorf("read %d records of %s: only %d: %w", want, r.topic("accounts"), len(recs), err)
		}
		fs.EachRecord(func(rec *kgo.Record) { recs = append(recs, rec) })
	}
	cl.Close()
	recs = recs[:want]
	dir := filepath.Join(r.dir, "duplicates")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
		mu   sync.Mutex
		errs []error
	)
	for i, rec := range recs {
		file := filepath.Join(dir, fmt.Sprintf("%05d.avro", i))
		if err := os.WriteFile(file, rec.Value, 0o644); err != nil {
			return err
		}
		args := []string{"-P", "-b", strings.Join(r.in.brokers, ","), "-t", rec.Topic,
			"-p", strconv.Itoa(int(rec.Partition)), "-k", string(rec.Key)}
		for _, h := range rec.Headers {
			args = append(args, "-H", h.Key+"="+string(h.Value))
		}
		args = append(args, file)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if out, err := exec.CommandContext(ctx, "kcat", args...).CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("kcat %s: %w: %s", strings.Join(args, " "), err, out))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.mu.Lock()
	r.injected = len(recs)
	r.mu.Unlock()
	r.logEvent("re-published %d AccountCreated records with kcat (e.g. kcat %s)", len(recs), kcatExample(recs[0]))
	return nil
}

func kcatExample(rec *kgo.Record) string {
	var hs []string
	for _, h := range rec.Headers {
		if h.Key == "ce_id" || h.Key == "ce_type" {
			hs = append(hs, "-H "+h.Key+"="+string(h.Value))
		}
	}
	return fmt.Sprintf("-P -t %s -p %d -k %s %s ... <value file>", rec.Topic, rec.Partition, rec.Key, strings.Join(hs, " "))
}

// --- convergence and checks ----------------------------------------------------------------

// converge waits until every account has its user, its welcome email has been delivered to the
// SMTP server, no email is still queued, and both consumer groups have committed everything on
// their topics (so that the duplicate counters and the deliveries are final).
func (r *run) converge(timeout time.Duration) {
	t := r.t
	deadline := time.Now().Add(timeout)
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.in.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last string
	for {
		users := r.countDistinct(`SELECT count(DISTINCT account_id) FROM "%s".users`, "user-service")
		delivered := len(r.smtp.ByRecipient())
		pending := r.countDistinct(`SELECT count(*) FROM "%s".notifications WHERE status <> 'sent'`, "notification-service")
		lagU, lagN := r.lag(adm, "user-service"), r.lag(adm, "notification-service")
		last = fmt.Sprintf("%d of %d accounts have a user, %d a welcome email delivered; %d emails not sent; lag user-service %d, notification-service %d",
			users, len(r.accounts), delivered, pending, lagU, lagN)
		if users == len(r.accounts) && delivered == len(r.accounts) && pending == 0 && lagU == 0 && lagN == 0 {
			r.logEvent("converged: %s", last)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("not converged %s after the traffic: %s", timeout, last)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// countDistinct returns count, or -1 while the table cannot be read.
func (r *run) countDistinct(query, service string) int {
	n, err := r.count(query, service)
	if err != nil {
		return -1
	}
	return n
}

// count runs query, a count with %s for service's schema, on service's database.
func (r *run) count(query, service string) (int, error) {
	db, schema, err := r.database(service)
	if err != nil {
		return 0, err
	}
	var n int
	if err := db.QueryRow(fmt.Sprintf(query, schema)).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", fmt.Sprintf(query, schema), err)
	}
	return n, nil
}

// lag returns the group's total lag, -1 if it cannot be had (say, while the broker restarts).
func (r *run) lag(adm *kadm.Client, service string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lags, err := adm.Lag(ctx, r.group(service))
	if err != nil {
		return -1
	}
	l, ok := lags[r.group(service)]
	if !ok || l.Error() != nil {
		return -1
	}
	var tot int64
	for _, ps := range l.Lag {
		for _, m := range ps {
			if m.Err != nil || m.Lag < 0 {
				return -1
			}
			tot += m.Lag
		}
	}
	return tot
}

type result struct {
	name                                            string
	sent, users, welcomeDB, welcomeSMTP, welcomeAPI int
	// resent counts second (and later) SMTP deliveries of one Message-ID.
	resent                                  int
	dupUser, dupNotif, parkedStats, retried int64
	parkedDLQ                               int64
	accRecords, accDistinct                 int
	userRecords, userDistinct               int
	injected                                int
	secondHandled                           int64
	traffic, converge, total                time.Duration
}

func (res result) line() string {
	return fmt.Sprintf("faults: %-26s sent=%d users=%d welcome=%d (table) %d (smtp) %d (API) second-deliveries=%d duplicates-suppressed=%d (user-service %d + notification-service %d) parked=%d (dlq records %d) injected=%d accounts-topic=%d/%d users-topic=%d/%d (records/distinct ids) took=%s",
		res.name, res.sent, res.users, res.welcomeDB, res.welcomeSMTP, res.welcomeAPI, res.resent,
		res.dupUser+res.dupNotif, res.dupUser, res.dupNotif, res.parkedStats, res.parkedDLQ, res.injected,
		res.accRecords, res.accDistinct, res.userRecords, res.userDistinct, res.total.Round(time.Second))
}

// verify counts, per account, users and welcome emails three ways (tables, SMTP deliveries, HTTP
// APIs), reads the topics to see that no event is missing, and sums the services' counters.
func (r *run) verify() result {
	t := r.t
	r.mu.Lock()
	accounts := slices.Clone(r.accounts)
	res := result{name: r.sc.name, sent: len(accounts), injected: r.injected}
	r.mu.Unlock()
	byID := make(map[string]account, len(accounts))
	byEmail := make(map[string]string, len(accounts))
	for _, a := range accounts {
		byID[a.ID] = a
		byEmail[a.Email] = a.ID
	}

	// One user per account, from the user-service's table.
	users := r.perAccount(`SELECT account_id, count(*) FROM "%s".users GROUP BY account_id`, "user-service")
	welcome := r.perAccount(`SELECT account_id, count(*) FROM "%s".notifications WHERE kind = 'welcome' AND status = 'sent' GROUP BY account_id`, "notification-service")
	rejected, err := r.count(`SELECT count(*) FROM "%s".rejections`, "user-service")
	if err != nil {
		t.Errorf("count rejections: %v", err)
	}
	if rejected != 0 {
		t.Errorf("%d registrations were rejected (username taken?); every username is unique", rejected)
	}
	delivered := r.deliveries(byEmail, &res)
	res.users, res.welcomeDB, res.welcomeSMTP = sum(users), sum(welcome), len(delivered)
	var bad []string
	for _, a := range accounts {
		if users[a.ID] != 1 || welcome[a.ID] != 1 || delivered[a.ID] < 1 {
			bad = append(bad, fmt.Sprintf("%s (%s): %d users, %d welcome rows sent, %d SMTP deliveries", a.ID, a.Username, users[a.ID], welcome[a.ID], delivered[a.ID]))
		}
	}
	for id := range users {
		if _, ok := byID[id]; !ok {
			bad = append(bad, "a user of an account never registered: "+id)
		}
	}
	for id := range welcome {
		if _, ok := byID[id]; !ok {
			bad = append(bad, "a welcome email to an account never registered: "+id)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d accounts without exactly one user and one welcome email; first: %s", len(bad), strings.Join(bad[:min(10, len(bad))], "; "))
	}

	// The same through the services' HTTP APIs.
	res.welcomeAPI = r.checkAPIs(accounts)

	// No event lost or minted twice on the topics.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.in.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acc, err := readTopic(ctx, r.in.brokers, r.topic("accounts"))
	if err != nil {
		t.Fatal(err)
	}
	ids := distinct(acc, "AccountCreated")
	res.accRecords, res.accDistinct = len(acc), len(ids)
	var missing []string
	for _, a := range accounts {
		if !ids[a.EventID] {
			missing = append(missing, a.EventID)
		}
	}
	if len(missing) > 0 || len(ids) != len(accounts) {
		t.Errorf("accounts topic: %d distinct AccountCreated for %d registrations; %d missing (first %v)", len(ids), len(accounts), len(missing), missing[:min(5, len(missing))])
	}
	us, err := readTopic(ctx, r.in.brokers, r.topic("users"))
	if err != nil {
		t.Fatal(err)
	}
	uids := distinct(us, "UserCreated")
	res.userRecords, res.userDistinct = len(us), len(uids)
	if len(uids) != len(accounts) {
		t.Errorf("users topic: %d distinct UserCreated for %d registrations", len(uids), len(accounts))
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, r.topic("user-service.dlq"), r.topic("notification-service.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { res.parkedDLQ += o.Offset })

	// The counters of every instance that ran.
	r.mu.Lock()
	total := map[string]stats{}
	for svc, st := range r.past {
		total[svc] = st
	}
	live := map[string][]*proc{}
	for svc, ps := range r.live {
		live[svc] = slices.Clone(ps)
	}
	second := r.second
	r.mu.Unlock()
	for svc, ps := range live {
		for _, p := range ps {
			st, err := p.stats()
			if err != nil {
				t.Errorf("%s: %v", p.name, err)
			}
			total[svc] = total[svc].plus(st)
			r.logEvent("%s /stats at the end: %+v", p.name, st)
			if p == second {
				res.secondHandled = st.Handled
			}
		}
	}
	res.dupUser, res.dupNotif = total["user-service"].Duplicates, total["notification-service"].Duplicates
	res.parkedStats = total["user-service"].Parked + total["notification-service"].Parked
	res.retried = total["user-service"].Retried + total["notification-service"].Retried
	if res.parkedStats != 0 || res.parkedDLQ != 0 {
		t.Errorf("records parked: %d by the services' counters, %d on the dead-letter topics; want none", res.parkedStats, res.parkedDLQ)
	}
	return res
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (r *run) perAccount(query, service string) map[string]int {
	db, schema, err := r.database(service)
	if err != nil {
		r.t.Fatal(err)
	}
	rows, err := db.Query(fmt.Sprintf(query, schema))
	if err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			r.t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// deliveries counts the SMTP deliveries of welcome emails by account (found by the envelope
// recipient, unique per account) and reports every second delivery with its Message-ID. Only a
// killed notification-service may resend, at most the one email it had in flight per kill, and
// with the same Message-ID; any other repeat, and any account that got two distinct emails, is
// an error.
func (r *run) deliveries(byEmail map[string]string, res *result) map[string]int {
	t := r.t
	out := map[string]int{}
	var repeats []string
	for to, ms := range r.smtp.ByRecipient() {
		id, ok := byEmail[to]
		if !ok {
			t.Errorf("%d emails delivered to %s, who never registered", len(ms), to)
			continue
		}
		out[id] = len(ms)
		ids := map[string]int{}
		for _, m := range ms {
			ids[m.MessageID()]++
		}
		if len(ids) != 1 {
			t.Errorf("account %s got %d distinct emails %v, want one", id, len(ids), ids)
		}
		for mid, n := range ids {
			if n > 1 {
				res.resent += n - 1
				repeats = append(repeats, fmt.Sprintf("%s delivered %d times to %s", mid, n, to))
			}
		}
	}
	slices.Sort(repeats)
	r.mu.Lock()
	allowed := r.notifKills
	r.mu.Unlock()
	for i, rp := range repeats {
		if i == 20 {
			r.logEvent("... and %d more second deliveries", len(repeats)-i)
			break
		}
		r.logEvent("second delivery: %s", rp)
	}
	if res.resent > allowed {
		t.Errorf("%d second SMTP deliveries (%d allowed: one in flight per kill of the notification-service); first: %s",
			res.resent, allowed, strings.Join(repeats[:min(10, len(repeats))], "; "))
	}
	return out
}

// checkAPIs asks the user-service for each account's user and the notification-service for its
// emails; it returns the number of welcome emails listed.
func (r *run) checkAPIs(accounts []account) int {
	user, notif := r.instance("user-service"), r.instance("notification-service")
	jobs := make(chan account)
	var (
		mu      sync.Mutex
		bad     []string
		welcome int
		wg      sync.WaitGroup
	)
	fail := func(s string) {
		mu.Lock()
		bad = append(bad, s)
		mu.Unlock()
	}
	for range workers {
		wg.Go(func() {
			for a := range jobs {
				var u struct{ AccountID, Username string }
				if code, err := getJSON("http://"+user.addr+"/users?accountId="+a.ID, &u); err != nil || code != 200 || u.AccountID != a.ID || u.Username != a.Username {
					fail(fmt.Sprintf("GET /users?accountId=%s: %d %+v %v", a.ID, code, u, err))
				}
				var ns []struct{ Kind, AccountID, To string }
				code, err := getJSON("http://"+notif.addr+"/notifications?accountId="+a.ID, &ns)
				if err != nil || code != 200 {
					fail(fmt.Sprintf("GET /notifications?accountId=%s: %d %v", a.ID, code, err))
					continue
				}
				n := 0
				for _, x := range ns {
					if x.Kind == "welcome" && x.To == a.Email {
						n++
					}
				}
				mu.Lock()
				welcome += n
				mu.Unlock()
				if n != 1 || len(ns) != 1 {
					fail(fmt.Sprintf("GET /notifications?accountId=%s: %d welcome emails in %+v", a.ID, n, ns))
				}
			}
		})
	}
	for _, a := range accounts {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	if len(bad) > 0 {
		r.t.Errorf("%d API answers wrong; first: %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	return welcome
}

// readTopic reads every record of topic up to its current end.
func readTopic(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var recs []*kgo.Record
	next := map[int32]int64{}
	for {
		done := true
		for p, end := range want {
			if next[p] < end {
				done = false
			}
		}
		if done {
			return recs, nil
		}
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset < want[rec.Partition] {
				recs = append(recs, rec)
			}
			next[rec.Partition] = rec.Offset + 1
		})
	}
}

// distinct returns the ce_id of the records of type typ.
func distinct(recs []*kgo.Record, typ string) map[string]bool {
	ids := map[string]bool{}
	for _, rec := range recs {
		var id, ty string
		for _, h := range rec.Headers {
			switch h.Key {
			case envelope.HeaderID:
				id = string(h.Value)
			case envelope.HeaderType:
				ty = string(h.Value)
			}
		}
		if ty == typ {
			ids[id] = true
		}
	}
	return ids
}
