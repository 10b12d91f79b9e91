// Package stack runs the whole choreography in one process: an embedded Kafka (franz-go's kfake),
// an embedded schema registry, and the Account, User and Notification services, each with its
// own Kafka clients, consumer group and database. `choreo dev` runs it; end-to-end tests run the
// very same wiring.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/registry"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

// ErrIncompleteState is returned when the data directory holds part of a previous run's state:
// records in the log would reference schema IDs or offsets that no longer exist.
var ErrIncompleteState = errors.New("incomplete state in the data directory")

// Services lists the services of the stack by name, in start order.
func Services() []string { return []string{accountsvc.Name, usersvc.Name, notificationsvc.Name} }

func builder(name string) service.Builder {
	switch name {
	case accountsvc.Name:
		return accountsvc.New
	case usersvc.Name:
		return usersvc.New
	case notificationsvc.Name:
		return notificationsvc.New
	}
	return nil
}

// Config configures a Stack.
type Config struct {
	// DataDir holds all state: broker log, registry, service databases, mail. Default "var".
	DataDir string
	// Fresh removes the state DataDir holds before starting.
	Fresh bool
	// KafkaPort is the embedded broker's port on 127.0.0.1; 0 picks a free one. Ignored with Brokers.
	KafkaPort int
	// Brokers, when set, is an external Kafka cluster to use instead of the embedded one.
	Brokers []string
	// RegistryAddr is the embedded schema registry's listen address; "127.0.0.1:0" picks a port.
	RegistryAddr string
	// HTTPAddrs maps a service name to its HTTP listen address; a missing one takes its default.
	HTTPAddrs map[string]string
	// SMTPAddr, when set, sends mail there instead of writing .eml files.
	SMTPAddr string
	// DatabaseURL, when set, keeps every service's state in this PostgreSQL database, each in a
	// schema of its own, instead of SQLite files under DataDir.
	DatabaseURL string
	// Namespace prefixes topics and consumer groups (see service.Config.Namespace).
	Namespace string
	// Conn holds the connection settings (TLS, SASL) of the external cluster named by Brokers.
	// Default: plaintext.
	Conn connect.Settings
	// KafkaConns, by service name, replaces Conn.Kafka for that service: on a secured cluster
	// each service logs in as its own principal. Default: Conn.Kafka for every service.
	KafkaConns map[string]connect.Kafka
	// Partitions of created topics. Default 6.
	Partitions int
	// Log receives the stack's logs. Default: discarded.
	Log *slog.Logger
	// TracerProvider, when set, gives each service (by name) the provider of its spans.
	// Default nil: tracing off.
	TracerProvider func(service string) trace.TracerProvider
}

// Stack is a running choreography.
type Stack struct {
	cfg      Config
	kafka    *kfake.Cluster
	registry *registry.Server
	brokers  []string

	mu       sync.Mutex
	services map[string]*running
}

type running struct {
	svc    *service.Service
	cancel context.CancelFunc
	done   chan error
}

// Start starts the embedded infrastructure (unless Brokers is set) and every service.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "var"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Fresh {
		if err := os.RemoveAll(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("--fresh: remove %s: %w", cfg.DataDir, err)
		}
	}
	if err := checkState(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("DATA_DIR %s: %w", cfg.DataDir, err)
	}
	s := &Stack{cfg: cfg, services: make(map[string]*running)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.brokers = cfg.Brokers
	if len(s.brokers) == 0 {
		s.kafka, err = kfake.NewCluster(
			kfake.Ports(cfg.KafkaPort),
			kfake.DataDir(filepath.Join(cfg.DataDir, "kafka")),
			kfake.ClusterID("choreo-dev"),
		)
		if err != nil {
			return nil, fmt.Errorf("embedded Kafka on 127.0.0.1:%d: %w", cfg.KafkaPort, err)
		}
		s.brokers = s.kafka.ListenAddrs()
	}
	s.registry, err = registry.Start(cfg.RegistryAddr,
		registry.StateFile(filepath.Join(cfg.DataDir, "registry.json")), registry.Logger(cfg.Log))
	if err != nil {
		return nil, fmt.Errorf("embedded schema registry on %s: %w", cfg.RegistryAddr, err)
	}
	for _, name := range Services() {
		if err := s.StartService(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkState refuses a data directory holding only part of the state the stack keeps together.
func checkState(cfg Config) error {
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(cfg.DataDir, p)); return err == nil }
	var have, missing []string
	parts := []string{"registry.json"}
	if len(cfg.Brokers) == 0 {
		parts = append(parts, "kafka")
	}
	for _, p := range parts {
		if exists(p) {
			have = append(have, p)
		} else {
			missing = append(missing, p)
		}
	}
	for _, name := range Services() {
		if exists(name) {
			have = append(have, name)
		}
	}
	if len(have) > 0 && len(missing) > 0 {
		return fmt.Errorf("%w: %s has %v but not %v; start with --fresh to begin again", ErrIncompleteState, cfg.DataDir, have, missing)
	}
	return nil
}

// ServiceConfig returns the configuration the stack gives service name.
func (s *Stack) ServiceConfig(name string) service.Config {
	var addr string
	switch name {
	case accountsvc.Name:
		addr = accountsvc.DefaultHTTPAddr
	case usersvc.Name:
		addr = usersvc.DefaultHTTPAddr
	case notificationsvc.Name:
		addr = notificationsvc.DefaultHTTPAddr
	}
	if a, ok := s.cfg.HTTPAddrs[name]; ok {
		addr = a
	}
	cfg := service.DefaultConfig(addr)
	cfg.Brokers = s.brokers
	cfg.RegistryURL = s.registry.URL()
	cfg.DataDir = s.cfg.DataDir
	cfg.SMTPAddr = s.cfg.SMTPAddr
	cfg.Partitions = s.cfg.Partitions
	cfg.Namespace = s.cfg.Namespace
	cfg.Conn.Kafka = s.cfg.Conn.Kafka // the embedded registry is plain HTTP on loopback
	if k, ok := s.cfg.KafkaConns[name]; ok {
		cfg.Conn.Kafka = k
	}
	if s.cfg.TracerProvider != nil {
		cfg.TracerProvider = s.cfg.TracerProvider(name)
	}
	if s.cfg.DatabaseURL != "" {
		schema := strings.ToLower(strings.NewReplacer(".", "_", "-", "_").Replace(cfg.Scoped(name)))
		if u, err := postgres.WithSearchPath(s.cfg.DatabaseURL, schema); err == nil {
			cfg.DatabaseURL = u
		}
	}
	return cfg
}

// StartService builds and runs service name (after StopService, or to restart it).
func (s *Stack) StartService(ctx context.Context, name string) error {
	b := builder(name)
	if b == nil {
		return fmt.Errorf("no service %q", name)
	}
	svc, err := b(ctx, s.ServiceConfig(name), s.cfg.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(rctx) }()
	s.mu.Lock()
	s.services[name] = r
	s.mu.Unlock()
	return nil
}

// StopService shuts service name down gracefully and waits for it.
func (s *Stack) StopService(name string) error {
	s.mu.Lock()
	r := s.services[name]
	delete(s.services, name)
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel()
	return <-r.done
}

// Service returns the running service name, or nil.
func (s *Stack) Service(name string) *service.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.services[name]; r != nil {
		return r.svc
	}
	return nil
}

// Brokers returns the Kafka bootstrap addresses.
func (s *Stack) Brokers() []string { return s.brokers }

// RegistryURL returns the schema registry's URL.
func (s *Stack) RegistryURL() string { return s.registry.URL() }

// Embedded reports whether the stack runs its own Kafka.
func (s *Stack) Embedded() bool { return s.kafka != nil }

// Close stops the services in reverse start order, then the registry and the broker.
func (s *Stack) Close() error {
	var errs []error
	names := Services()
	for i := len(names) - 1; i >= 0; i-- {
		if err := s.StopService(names[i]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", names[i], err))
		}
	}
	if s.registry != nil {
		errs = append(errs, s.registry.Close())
		s.registry = nil
	}
	if s.kafka != nil {
		s.kafka.Close()
		s.kafka = nil
	}
	return errors.Join(errs...)
}

// Describe returns what listens where, for printing.
func (s *Stack) Describe() []string {
	lines := []string{}
	kind := "external"
	if s.kafka != nil {
		kind = "embedded"
	}
	lines = append(lines, fmt.Sprintf("kafka (%s)        %v", kind, s.brokers))
	lines = append(lines, "schema registry         "+s.registry.URL())
	for _, name := range Services() {
		if svc := s.Service(name); svc != nil {
			lines = append(lines, fmt.Sprintf("%-23s http://%s", name, svc.HTTPAddr()))
		}
	}
	lines = append(lines, "data directory          "+s.cfg.DataDir+" (partitions "+strconv.Itoa(s.cfg.Partitions)+")")
	return lines
}
