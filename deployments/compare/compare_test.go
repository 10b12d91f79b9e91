package compare

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/registry"
	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/pkg/sqlite"
)

// settings are the driver's knobs, from the environment.
type settings struct {
	n, workers  int           // registrations per run (CHOREO_COMPARE_N), concurrent clients (CHOREO_COMPARE_WORKERS)
	delay       time.Duration // how late the slow Notification Service answers (CHOREO_COMPARE_DELAY)
	pause, run  time.Duration // the slow Notification Service's duty cycle: paused, then running (CHOREO_COMPARE_PAUSE, _RUN)
	settleLimit time.Duration // how long to wait for the emails after the service is back (CHOREO_COMPARE_SETTLE)
	bin         string        // the service binaries (CHOREO_COMPARE_BIN); default: this test binary as each service
}

func load(t *testing.T) settings {
	t.Helper()
	s := settings{n: 5, workers: 4, delay: time.Second, pause: 900 * time.Millisecond, run: 100 * time.Millisecond, settleLimit: 60 * time.Second}
	if v := os.Getenv("CHOREO_COMPARE_N"); v != "" {
		s.n = atoi(t, "CHOREO_COMPARE_N", v)
		s.workers = 16
	}
	if v := os.Getenv("CHOREO_COMPARE_WORKERS"); v != "" {
		s.workers = atoi(t, "CHOREO_COMPARE_WORKERS", v)
	}
	for name, d := range map[string]*time.Duration{"CHOREO_COMPARE_DELAY": &s.delay, "CHOREO_COMPARE_PAUSE": &s.pause, "CHOREO_COMPARE_RUN": &s.run, "CHOREO_COMPARE_SETTLE": &s.settleLimit} {
		if v := os.Getenv(name); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil || *d <= 0 {
				t.Fatalf("%s=%q: want a positive duration", name, v)
			}
		}
	}
	s.bin = os.Getenv("CHOREO_COMPARE_BIN")
	return s
}

func atoi(t *testing.T, name, v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// TestCompare registers accounts in each mode with the Notification Service down, then slow,
// and prints the table. Every run has its own data directory and namespace on one broker,
// registry and SMTP sink.
func TestCompare(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the slow scenario pauses a process with SIGSTOP: not on Windows")
	}
	cfg := load(t)
	brokers := strings.Join(kafkatest.Brokers(t), ",") // KAFKA_BROKERS, else an embedded broker here
	if cfg.bin != "" && os.Getenv("KAFKA_BROKERS") == "" {
		brokers = startBroker(t, cfg.bin) // measured: the embedded broker in a process of its own
	}
	in := &infra{
		bin: cfg.bin, brokers: brokers, ns: kafkatest.Namespace(t),
		smtp: smtptest.Start(t), cfg: cfg,
	}
	reg, err := registry.Start("127.0.0.1:0", registry.StateFile(filepath.Join(t.TempDir(), "registry.json")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	in.registry = reg.URL()

	// Measured runs take turns, so that none measures another's load; the suite's small runs
	// (no CHOREO_COMPARE_N) share the machine, to be quick.
	parallel := os.Getenv("CHOREO_COMPARE_N") == ""
	var results []result
	var mu sync.Mutex
	t.Run("runs", func(t *testing.T) {
		for _, sc := range []scenario{down, slow, hung} {
			for _, mode := range []string{"choreography", "orchestrated"} {
				t.Run(mode+"-"+string(sc), func(t *testing.T) {
					if parallel {
						t.Parallel()
					}
					began := time.Now()
					r := in.runOne(t, mode, sc)
					t.Logf("%s (run took %s)", r.line(), time.Since(began).Round(time.Millisecond))
					mu.Lock()
					defer mu.Unlock()
					results = append(results, r)
				})
			}
		}
	})
	slices.SortFunc(results, func(a, b result) int { return strings.Compare(a.order(), b.order()) })
	fmt.Print(table(cfg, results))
	for _, r := range results {
		// What the two modes must show, whatever the machine: choreography loses nothing and
		// accepts every registration; orchestration refuses every registration while the
		// Notification Service is down.
		switch {
		case r.mode == "choreography" && (r.accepted != cfg.n || r.lost() != 0 || r.duplicates != 0):
			t.Errorf("choreography, %s: %s", r.scenario, r.line())
		case r.mode == "orchestrated" && r.scenario != slow && r.accepted != 0:
			t.Errorf("orchestrated, %s: accepted %d", r.scenario, r.accepted)
		case r.orphans != 0:
			t.Errorf("%s, %s: %d users without an account", r.mode, r.scenario, r.orphans)
		case r.mode == "orchestrated" && (r.acceptedNoEmail != 0 || r.duplicates != 0):
			t.Errorf("orchestrated, %s: %s", r.scenario, r.line())
		}
	}
}

type scenario string

// The scenarios, each with what it does to the Notification Service.
const (
	// down: stopped during the registrations, started again after them.
	down scenario = "down"
	// slow: orchestrated, its answers come settings.delay late (below the call timeout);
	// choreographed, its process is paused for settings.pause of every pause+run.
	slow scenario = "slow"
	// hung: orchestrated, its answers come later than the call timeout (which it does not
	// know: it does the work); choreographed, its process is paused through the registrations.
	// Both recover after the registrations.
	hung scenario = "hung"
)

// hungDelay is how late the hung Notification Service answers: beyond the Account Service's
// default call timeout.
const hungDelay = orchestratorTimeout + time.Second

// orchestratorTimeout is the Account Service's default ORCHESTRATION_TIMEOUT.
const orchestratorTimeout = 2 * time.Second

type infra struct {
	bin, brokers, ns, registry string
	smtp                       *smtptest.Server
	cfg                        settings
}

// result is what one run measured.
type result struct {
	mode     string
	scenario scenario
	n        int
	accepted int
	refused  map[int]int // by HTTP status (0: no answer)
	p50, p99 time.Duration
	wall     time.Duration // of all the registrations
	emails   int           // distinct registrations that got their welcome email
	// acceptedNoEmail counts accepted registrations that never got their email; emailRefused
	// emails that went to a registration the client was told failed.
	acceptedNoEmail, emailRefused, duplicates int
	orphans                                   int           // live users without an account
	settle                                    time.Duration // from the service's return (or the last answer) to the last email
	settled                                   bool
}

// order sorts results as the runs were listed: by scenario, then mode.
func (r result) order() string {
	return strconv.Itoa(slices.Index([]scenario{down, slow, hung}, r.scenario)) + r.mode
}

// lost is what the system will never do of what the clients asked: a refused registration is
// lost unless the client retries it, an accepted one without its email is lost for good.
func (r result) lost() int { return r.n - r.accepted + r.acceptedNoEmail }

func (r result) line() string {
	return fmt.Sprintf("%s, %s: accepted %d/%d (refused %v), p50 %s p99 %s, emails %d, lost %d, emails to refused %d, users without account %d, duplicates %d, settled %v in %s",
		r.mode, r.scenario, r.accepted, r.n, r.refused, r.p50, r.p99, r.emails, r.lost(), r.emailRefused, r.orphans, r.duplicates, r.settled, r.settle)
}

// runOne starts the three services of mode on a fresh namespace and data directory, takes the
// Notification Service down (or makes it slow), registers cfg.n accounts, restores the service
// and waits for the emails.
func (in *infra) runOne(t *testing.T, mode string, sc scenario) result {
	t.Helper()
	name := strings.ReplaceAll(mode+"-"+string(sc), " ", "-")
	dir := filepath.Join(t.TempDir(), name)
	addrs := map[string]string{"account": freeAddr(t), "user": freeAddr(t), "notification": freeAddr(t)}
	common := []string{
		"KAFKA_BROKERS=" + in.brokers, "SCHEMA_REGISTRY_URL=" + in.registry, "DATA_DIR=" + dir,
		"CHOREO_NAMESPACE=" + in.ns + "-" + name, "TOPIC_PARTITIONS=3",
	}
	env := map[string][]string{
		"user":         {"HTTP_ADDR=" + addrs["user"]},
		"notification": {"HTTP_ADDR=" + addrs["notification"], "SMTP_ADDR=" + in.smtp.Addr()},
		"account":      {"HTTP_ADDR=" + addrs["account"], "REGISTRATION_MODE=" + mode},
	}
	if mode == "orchestrated" {
		notifURL := "http://" + addrs["notification"]
		switch sc {
		case slow:
			notifURL = in.delayProxy(t, addrs["notification"], in.cfg.delay)
		case hung:
			notifURL = in.delayProxy(t, addrs["notification"], hungDelay)
		}
		env["account"] = append(env["account"], "USER_SERVICE_URL=http://"+addrs["user"], "NOTIFICATION_SERVICE_URL="+notifURL,
			"ORCHESTRATION_TIMEOUT="+orchestratorTimeout.String())
	}
	procs := map[string]*proc{}
	for _, svc := range []string{"user", "notification", "account"} {
		p := &proc{name: svc, env: append(slices.Clone(common), env[svc]...), addr: addrs[svc], log: filepath.Join(dir, svc+".log")}
		if in.bin != "" {
			p.path = filepath.Join(in.bin, svc)
		} else {
			p.path = os.Args[0]
			p.env = append(p.env, serviceEnv+"="+svc)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.stop)
		procs[svc] = p
	}
	began := time.Now()
	for _, p := range procs {
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("%s (%s): %v\n%s", p.name, mode, err, tail(p.log))
		}
	}
	t.Logf("%s, %s: services ready in %s", mode, sc, time.Since(began).Round(time.Millisecond))
	notif := procs["notification"]
	stopSlow := func() {}
	switch {
	case sc == down:
		notif.stop()
	case sc == slow && mode == "choreography":
		stopSlow = notif.dutyCycle(in.cfg.pause, in.cfg.run)
	case sc == hung && mode == "choreography":
		stopSlow = notif.dutyCycle(time.Hour, 0)
	}

	prefix := name + "-"
	res := result{mode: mode, scenario: sc, n: in.cfg.n, refused: map[int]int{}}
	regStart := time.Now()
	outcomes := in.register(t, "http://"+addrs["account"], prefix)
	res.wall = time.Since(regStart)
	var lat []time.Duration
	for _, o := range outcomes {
		lat = append(lat, o.took)
		if o.status == http.StatusCreated {
			res.accepted++
		} else {
			res.refused[o.status]++
		}
	}
	res.p50, res.p99 = percentile(lat, 50), percentile(lat, 99)

	back := time.Now()
	switch sc {
	case down:
		if err := notif.start(); err != nil {
			t.Fatal(err)
		}
		if err := notif.waitReady(60 * time.Second); err != nil {
			t.Fatalf("notification (%s) after its restart: %v\n%s", mode, err, tail(notif.log))
		}
	default:
		stopSlow()
	}
	// Settled: every accepted registration has its email (or the limit has passed); then one
	// more look after a quiet second, for emails nobody was waiting for.
	deadline := time.Now().Add(in.cfg.settleLimit)
	last, seen := back, -1
	for {
		n := len(in.delivered(prefix))
		if n != seen {
			last, seen = time.Now(), n
		}
		if n >= res.accepted {
			res.settled = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.settle = last.Sub(back).Round(time.Millisecond)
	// Only a settled system shows what it will never do (an email not sent, sent twice): wait
	// until no service has work left, as its own metrics tell.
	for {
		err := unsettled(addrs)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			res.settled = false
			t.Logf("%s, %s: not settled: %v", mode, sc, err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := in.delivered(prefix)
	for i, o := range outcomes {
		c := got[fmt.Sprintf("%s%d@mail.com", prefix, i)]
		if c > 0 {
			res.emails++
		}
		if c > 1 {
			res.duplicates++
		}
		switch {
		case o.status == http.StatusCreated && c == 0:
			res.acceptedNoEmail++
		case o.status != http.StatusCreated && c > 0:
			res.emailRefused++
		}
	}
	began = time.Now()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
	t.Logf("%s, %s: services stopped in %s", mode, sc, time.Since(began).Round(time.Millisecond))
	res.orphans = orphans(t, dir)
	return res
}

// outcome is what one client saw.
type outcome struct {
	status int // 0: no answer
	took   time.Duration
}

// register registers in.cfg.n accounts through the Account API with in.cfg.workers clients,
// each one attempt, as a client without a retry policy would.
func (in *infra) register(t *testing.T, base, prefix string) []outcome {
	t.Helper()
	out := make([]outcome, in.cfg.n)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: in.cfg.workers}}
	next := make(chan int)
	var wg sync.WaitGroup
	for range in.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"username":"%s%d","email":"%s%d@mail.com"}`, prefix, i, prefix, i)
				start := time.Now()
				resp, err := client.Post(base+"/accounts", "application/json", strings.NewReader(body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					out[i].status = resp.StatusCode
				}
				out[i].took = time.Since(start)
			}
		}()
	}
	for i := range in.cfg.n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// delivered counts the welcome emails the sink received per recipient of this run.
func (in *infra) delivered(prefix string) map[string]int {
	out := map[string]int{}
	for to, ms := range in.smtp.ByRecipient() {
		if strings.HasPrefix(to, prefix) {
			out[to] += len(ms)
		}
	}
	return out
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func table(cfg settings, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nRegistration, choreography vs orchestration: %d registrations per run, %d concurrent clients, one attempt each\n", cfg.n, cfg.workers)
	fmt.Fprintf(&b, "Notification Service down: stopped during the registrations, started again after them.\n")
	fmt.Fprintf(&b, "slow: orchestrated, every answer %s late (a proxy; call timeout %s); choreographed, its process paused %s of every %s (SIGSTOP/SIGCONT).\n",
		cfg.delay, orchestratorTimeout, cfg.pause, cfg.pause+cfg.run)
	fmt.Fprintf(&b, "hung: orchestrated, every answer %s late, past the timeout (the work is done); choreographed, its process paused through the registrations.\n\n", hungDelay)
	fmt.Fprintf(&b, "| mode | notification | accepted | refused | p50 | p99 | all %d took | emails sent | lost | emails to refused | users without account | duplicates | all emails sent, after recovery |\n", cfg.n)
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		refused := "0"
		if len(r.refused) > 0 {
			var parts []string
			for _, st := range slices.Sorted(maps.Keys(r.refused)) {
				label := strconv.Itoa(st)
				if st == 0 {
					label = "no answer"
				}
				parts = append(parts, fmt.Sprintf("%d (%s)", r.refused[st], label))
			}
			refused = strings.Join(parts, ", ")
		}
		settle := r.settle.String()
		switch {
		case r.accepted == 0:
			settle = "-"
		case !r.settled:
			settle = "not within " + cfg.settleLimit.String()
		}
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %s | %s | %s | %d | %d | %d | %d | %d | %s |\n",
			r.mode, r.scenario, r.accepted, r.n, refused, ms(r.p50), ms(r.p99), r.wall.Round(10*time.Millisecond), r.emails, r.lost(), r.emailRefused, r.orphans, r.duplicates, settle)
	}
	return b.String()
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// proc is one service process.
type proc struct {
	name, path, addr, log string
	env                   []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.path)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// waitReady waits until the service answers /readyz with 200, or it exits.
func (p *proc) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("exited before it was ready")
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", limit)
}

// stop ends the process with SIGTERM (SIGKILL after 30s) and waits for it; stopping a stopped
// process does nothing.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// dutyCycle pauses the process for pause and lets it run for run, over and over, until the
// returned function is called (which leaves it running): a slow service, whose every answer
// and every reaction waits for its next turn.
func (p *proc) dutyCycle(pause, run time.Duration) (stop func()) {
	p.mu.Lock()
	proc := p.cmd.Process
	p.mu.Unlock()
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		defer proc.Signal(syscall.SIGCONT)
		for {
			_ = proc.Signal(syscall.SIGSTOP)
			select {
			case <-quit:
				return
			case <-time.After(pause):
			}
			if run == 0 {
				continue
			}
			_ = proc.Signal(syscall.SIGCONT)
			select {
			case <-quit:
				return
			case <-time.After(run):
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-20):], []byte("\n")))
}

// delayProxy serves a proxy of the service at addr that passes each request on at once and
// holds the answer back for delay: a service that does its work but answers late. It returns
// the proxy's URL.
func (in *infra) delayProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: addr}
	p := httputil.NewSingleHostReverseProxy(target)
	p.Transport = lateTransport{next: http.DefaultTransport, delay: delay}
	// A caller that gave up is the point of the hung scenario, not news: answer 502 quietly.
	p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

type lateTransport struct {
	next  http.RoundTripper
	delay time.Duration
}

func (l lateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(l.delay):
		return resp, nil
	case <-r.Context().Done(): // the caller gave up
		resp.Body.Close()
		return nil, r.Context().Err()
	}
}

// orphans counts the live users of the run's User Service whose account the Account Service
// does not have, from their databases (SQLite files under the run's data directory; the
// processes have stopped).
func orphans(t *testing.T, dir string) int {
	t.Helper()
	ids := func(service, query string) map[string]bool {
		db, err := sqlite.Open(t.Context(), filepath.Join(dir, service, service+".db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(t.Context(), query)
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	accounts := ids("account-service", `SELECT id FROM accounts`)
	n := 0
	for id := range ids("user-service", `SELECT account_id FROM users WHERE deleted_at IS NULL`) {
		if !accounts[id] {
			n++
		}
	}
	return n
}

// startBroker runs the embedded broker alone (choreo dev -broker-only) in a process of its own
// and returns its address; it is stopped when t ends.
func startBroker(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "choreo"), "dev", "-broker-only", "-kafka-port", "0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the broker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "kafka ")
	if err != nil || !ok {
		t.Fatalf("the broker did not say its address (%q, %v): %s", line, err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return addr
}

// unsettled returns the work the run's services have not finished, as their /metrics report it:
// events in an outbox, records their consumer groups have not committed, emails not yet sent.
// nil means settled.
func unsettled(addrs map[string]string) error {
	var errs []error
	for _, svc := range []string{"account", "user", "notification"} {
		resp, err := http.Get("http://" + addrs[svc] + "/metrics")
		if err != nil {
			return fmt.Errorf("%s: %w", svc, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", svc, err)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			metric, _, _ := strings.Cut(name, "{")
			switch {
			case metric == "choreo_outbox_pending", metric == "kafka_consumergroup_lag",
				metric == "choreo_emails" && strings.Contains(name, `status="pending"`):
			default:
				continue
			}
			seen[metric] = true
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil || v != 0 {
				errs = append(errs, fmt.Errorf("%s: %s", svc, line))
			}
		}
		// A metric that is not there cannot say the work is done.
		if !seen["choreo_outbox_pending"] || (svc == "notification" && !seen["choreo_emails"]) {
			errs = append(errs, fmt.Errorf("%s: /metrics lacks choreo_outbox_pending or choreo_emails", svc))
		}
	}
	return errors.Join(errs...)
}
