package stack_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// readiness returns a service's /readyz status code and body.
func readiness(s *stack.Stack, name string) (int, service.Readiness, error) {
	var rd service.Readiness
	code, err := stacktest.DoJSON("GET", stacktest.URL(s, name, service.ReadinessPath), "", &rd)
	return code, rd, err
}

// waitReady waits until every service answers /readyz with want (200 or 503), with failing
// naming exactly check for 503.
func waitReady(t *testing.T, s *stack.Stack, want int, check string) {
	t.Helper()
	stacktest.Eventually(t, 60*time.Second, func() error {
		for _, name := range stack.Services() {
			code, rd, err := readiness(s, name)
			if err != nil {
				return err
			}
			if code != want {
				return fmt.Errorf("%s /readyz %d %+v, want %d", name, code, rd, want)
			}
			if want == http.StatusOK && (rd.Status != "ready" || len(rd.Failing) > 0) {
				return fmt.Errorf("%s: %+v", name, rd)
			}
			if want != http.StatusOK && !slices.Contains(rd.Failing, check) {
				return fmt.Errorf("%s: failing %v, want %s named: %+v", name, rd.Failing, check, rd)
			}
		}
		return nil
	})
}

// TestReadinessFollowsTheBroker: with the broker gone, every service is alive but not ready,
// naming Kafka; with the broker back (same port, same data), they are ready again.
func TestReadinessFollowsTheBroker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func(port int) *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.Ports(port), kfake.DataDir(filepath.Join(dir, "kafka")), kfake.ClusterID("readiness"))
		if err != nil {
			t.Fatalf("broker on port %d: %v", port, err)
		}
		return c
	}
	broker := start(0)
	_, portStr, _ := net.SplitHostPort(broker.ListenAddrs()[0])
	var port int
	fmt.Sscan(portStr, &port)
	defer func() { broker.Close() }()
	cfg := stacktest.Config(t)
	cfg.Brokers = broker.ListenAddrs()
	s := stacktest.StartConfig(t, cfg)
	waitReady(t, s, http.StatusOK, "")
	for _, name := range stack.Services() {
		code, rd, _ := readiness(s, name)
		if len(rd.Checks) < 5 || code != http.StatusOK {
			t.Errorf("%s: %d %+v: want every check named", name, code, rd)
		}
	}

	broker.Close()
	waitReady(t, s, http.StatusServiceUnavailable, "kafka")
	// Liveness does not follow dependencies: restarting the process would not bring Kafka back.
	resp, err := http.Get(stacktest.URL(s, "user-service", service.LivenessPath))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the broker down: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}

	broker = start(port)
	waitReady(t, s, http.StatusOK, "")
}

// proxy forwards TCP connections to target until cut, which closes the listener and every
// connection; restore listens again on the same address.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestReadinessFollowsTheDatabase: with PostgreSQL unreachable, every service is not ready,
// naming the database; reachable again, they are ready again.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL := os.Getenv("TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("TEST_DATABASE_URL is not set: a PostgreSQL server is needed (an embedded SQLite file cannot become unreachable)")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr
	cfg := stacktest.Config(t)
	cfg.DatabaseURL = u.String()
	s := stacktest.StartConfig(t, cfg)
	waitReady(t, s, http.StatusOK, "")
	p.cut()
	waitReady(t, s, http.StatusServiceUnavailable, "database")
	p.restore()
	waitReady(t, s, http.StatusOK, "")
}
