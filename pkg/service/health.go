package service

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"
)

// Paths of the probes every service serves beside its API.
const (
	// LivenessPath answers 200 while the process serves HTTP: restart it when this fails.
	LivenessPath = "/healthz"
	// ReadinessPath answers 200 when the service can do its work, 503 naming what fails.
	ReadinessPath = "/readyz"
	// MetricsPath serves the Prometheus metrics.
	MetricsPath = "/metrics"
)

// RelayStuckAfter is how long the outbox relay may fail every publish, or wait for the broker to
// acknowledge one batch, before readiness fails.
const RelayStuckAfter = 30 * time.Second

// probeTimeout bounds each readiness check: an unreachable dependency fails fast.
const probeTimeout = 2 * time.Second

// Check is the result of one readiness check.
type Check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Detail adds what the check saw when it passed, e.g. the partitions owned.
	Detail string `json:"detail,omitempty"`
}

// Readiness is the body of /readyz.
type Readiness struct {
	Status  string  `json:"status"` // "ready" or "not ready"
	Service string  `json:"service"`
	Checks  []Check `json:"checks"`
	// Failing names the checks that failed.
	Failing []string `json:"failing,omitempty"`
}

// health is what readiness needs to know beyond the service's clients.
type health struct {
	running atomic.Bool // Run has started the relay and the consumer
}

// Ready runs the readiness checks: broker reachable, database reachable, consumer group joined
// (owning partitions or legitimately none), outbox relay not stuck, start-up provisioning done.
func (s *Service) Ready(ctx context.Context) Readiness {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	checks := make([]Check, 0, 5)
	add := func(name string, err error, detail string) {
		c := Check{Name: name, OK: err == nil, Detail: detail}
		if err != nil {
			c.Error = err.Error()
		}
		checks = append(checks, c)
	}
	add("kafka", s.producer.Ping(ctx), "")
	add("database", s.DB.PingContext(ctx), "")
	if s.runner != nil {
		joined, n := s.runner.Membership()
		var err error
		if !joined {
			err = errNotJoined
		}
		add("consumer-group", err, plural(n, "partition")+" assigned")
	}
	add("outbox-relay", s.Relay.Stuck(RelayStuckAfter), "")
	var err error
	if !s.health.running.Load() {
		err = errNotStarted
	}
	add("provisioning", err, "")
	r := Readiness{Status: "ready", Service: s.Name, Checks: checks}
	for _, c := range checks {
		if !c.OK {
			r.Status = "not ready"
			r.Failing = append(r.Failing, c.Name)
		}
	}
	return r
}

type probeError string

func (e probeError) Error() string { return string(e) }

const (
	errNotJoined  = probeError("consumer group not joined yet")
	errNotStarted = probeError("start-up not finished: topics, consumer and relay not running yet")
)

func plural(n int, word string) string {
	b, _ := json.Marshal(n)
	if n == 1 {
		return string(b) + " " + word
	}
	return string(b) + " " + word + "s"
}

func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.Ready(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if rd.Status != "ready" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rd)
}
