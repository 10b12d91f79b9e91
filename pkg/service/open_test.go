package service_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/service"
)

// TestOpenDependencyErrors: a service whose configuration is well-formed but whose dependencies
// cannot be reached or created fails to open promptly, with a one-line error that names the
// setting to fix.
func TestOpenDependencyErrors(t *testing.T) {
	t.Parallel()
	// The broker and the registry that work, for the cases about the other dependency.
	reg := srfake.New()
	t.Cleanup(reg.Close)

	tests := []struct {
		name    string
		config  func(t *testing.T, c *service.Config)
		setting string // the error must name it
		others  []string
	}{
		{
			name: "unreachable broker",
			config: func(t *testing.T, c *service.Config) {
				c.Brokers = []string{"127.0.0.1:1"}
				c.RegistryURL = reg.URL()
			},
			setting: "KAFKA_BROKERS",
			others:  []string{"SCHEMA_REGISTRY_URL", "DATA_DIR"},
		},
		{
			name: "broker that accepts connections and never answers",
			config: func(t *testing.T, c *service.Config) {
				c.Brokers = []string{blackHole(t)}
				c.RegistryURL = reg.URL()
			},
			setting: "KAFKA_BROKERS",
			others:  []string{"SCHEMA_REGISTRY_URL", "DATA_DIR"},
		},
		{
			name: "unreachable registry",
			config: func(t *testing.T, c *service.Config) {
				c.Brokers = kafkatest.Brokers(t)
				c.RegistryURL = "http://127.0.0.1:1"
			},
			setting: "SCHEMA_REGISTRY_URL",
			others:  []string{"KAFKA_BROKERS", "DATA_DIR"},
		},
		{
			name: "registry that accepts connections and never answers",
			config: func(t *testing.T, c *service.Config) {
				c.Brokers = kafkatest.Brokers(t)
				c.RegistryURL = "http://" + blackHole(t)
			},
			setting: "SCHEMA_REGISTRY_URL",
			others:  []string{"KAFKA_BROKERS", "DATA_DIR"},
		},
		{
			name: "unreachable database",
			config: func(t *testing.T, c *service.Config) {
				c.DatabaseURL = "postgres://choreo@127.0.0.1:1/choreo?sslmode=disable"
				c.Brokers = kafkatest.Brokers(t)
				c.RegistryURL = reg.URL()
			},
			setting: "DATABASE_URL",
			others:  []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "DATA_DIR"},
		},
		{
			name: "database that accepts connections and never answers",
			config: func(t *testing.T, c *service.Config) {
				c.DatabaseURL = "postgres://choreo@" + blackHole(t) + "/choreo?sslmode=disable"
				c.Brokers = kafkatest.Brokers(t)
				c.RegistryURL = reg.URL()
			},
			setting: "DATABASE_URL",
			others:  []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "DATA_DIR"},
		},
		{
			name: "data directory under a regular file",
			config: func(t *testing.T, c *service.Config) {
				file := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
					t.Fatal(err)
				}
				c.DataDir = filepath.Join(file, "data")
				c.Brokers = kafkatest.Brokers(t)
				c.RegistryURL = reg.URL()
			},
			setting: "DATA_DIR",
			others:  []string{"KAFKA_BROKERS", "SCHEMA_REGISTRY_URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := service.DefaultConfig("127.0.0.1:0")
			cfg.DataDir = t.TempDir()
			cfg.Namespace = kafkatest.Namespace(t)
			tt.config(t, &cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the configuration itself is invalid: %v", err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			began := time.Now()
			s, err := service.Open(ctx, "open-test", cfg, nil)
			took := time.Since(began)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded; want an error naming %s", tt.setting)
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if took > 10*time.Second {
				t.Errorf("Open took %v to fail with a context of 3s", took)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.setting) {
				t.Errorf("error %q does not name %s", msg, tt.setting)
			}
			for _, o := range tt.others {
				if strings.Contains(msg, o) {
					t.Errorf("error %q also names %s; it must point at %s alone", msg, o, tt.setting)
				}
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
		})
	}
}

// TestOpenGivesUpOnAnUnresponsiveDatabase: service.Main opens a service with a context that has no
// deadline (it ends only at SIGINT or SIGTERM), so Open must bound each dependency itself, as it
// does the registry and the brokers (30s): a database that accepts connections and never answers
// must fail the start with an error naming DATABASE_URL, not hang it silently.
func TestOpenGivesUpOnAnUnresponsiveDatabase(t *testing.T) {
	t.Parallel()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cfg := service.DefaultConfig("127.0.0.1:0")
	cfg.DataDir = t.TempDir()
	cfg.Namespace = kafkatest.Namespace(t)
	cfg.Brokers = kafkatest.Brokers(t)
	cfg.RegistryURL = reg.URL()
	cfg.DatabaseURL = "postgres://choreo@" + blackHole(t) + "/choreo?sslmode=disable"
	cfg.StartTimeout = 2 * time.Second

	// Past the default StartTimeout (30s) Open would have ignored the 2s it was given; the margin
	// between the two absorbs any load.
	const bound = 25 * time.Second
	done := make(chan error, 1)
	go func() {
		s, err := service.Open(context.Background(), "open-test", cfg, nil)
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("Open = %v, want an error naming DATABASE_URL", err)
		}
	case <-time.After(bound):
		t.Fatalf("Open still waiting for an unresponsive DATABASE_URL after %v, with no deadline of the caller's: "+
			"a service started by service.Main hangs at start without a word", bound)
	}
}

// blackHole returns the address of a listener that accepts connections and never writes to them,
// as a host behind a misconfigured proxy or a hung process looks to a client.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
