package service_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/service"
)

// env returns a getenv reading only vars, so tests never see the process environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaultConfigIsValid(t *testing.T) {
	t.Parallel()
	if err := service.DefaultConfig("127.0.0.1:8080").Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	c := service.DefaultConfig("127.0.0.1:8080")
	err := c.FromEnv(env(map[string]string{
		"KAFKA_BROKERS":                   " k1:9092, ,k2:9093,",
		"SCHEMA_REGISTRY_URL":             "https://registry.example.com:8081",
		"DATA_DIR":                        "/srv/choreo",
		"HTTP_ADDR":                       ":9000",
		"SMTP_ADDR":                       "mail.example.com:25",
		"TOPIC_PARTITIONS":                "12",
		"TOPIC_REPLICATION_FACTOR":        "-1",
		"DATABASE_URL":                    "postgres://u:p@db:5432/choreo?search_path=users",
		"CHOREO_NAMESPACE":                "staging",
		"START_TIMEOUT":                   "1m30s",
		"KAFKA_FETCH_MAX_BYTES":           "4194304",
		"KAFKA_FETCH_MAX_PARTITION_BYTES": "65536",
		"CHOREO_PPROF":                    "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := service.Config{
		Brokers:                []string{"k1:9092", "k2:9093"},
		RegistryURL:            "https://registry.example.com:8081",
		DataDir:                "/srv/choreo",
		DatabaseURL:            "postgres://u:p@db:5432/choreo?search_path=users",
		HTTPAddr:               ":9000",
		Namespace:              "staging",
		SMTPAddr:               "mail.example.com:25",
		StartTimeout:           90 * time.Second,
		Partitions:             12,
		ReplicationFactor:      -1,
		FetchMaxBytes:          4 << 20,
		FetchMaxPartitionBytes: 64 << 10,
		Pprof:                  true,
	}
	if !equalConfig(c, want) {
		t.Errorf("FromEnv:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestFromEnvUnsetKeepsDefaults(t *testing.T) {
	t.Parallel()
	c := service.DefaultConfig("127.0.0.1:8081")
	if err := c.FromEnv(env(nil)); err != nil {
		t.Fatal(err)
	}
	if want := service.DefaultConfig("127.0.0.1:8081"); !equalConfig(c, want) {
		t.Errorf("FromEnv with nothing set:\n got %+v\nwant %+v", c, want)
	}
}

func TestFromEnvRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
	}{
		{"TOPIC_PARTITIONS", "six"},
		{"TOPIC_PARTITIONS", "6.0"},
		{"TOPIC_PARTITIONS", "0x6"},
		{"TOPIC_REPLICATION_FACTOR", "one"},
		{"TOPIC_REPLICATION_FACTOR", "99999999999999999999"},
		{"START_TIMEOUT", "30"},
		{"START_TIMEOUT", "soon"},
		{"KAFKA_FETCH_MAX_BYTES", "1MiB"},
		{"KAFKA_FETCH_MAX_PARTITION_BYTES", "lots"},
		{"CHOREO_PPROF", "yes please"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			c := service.DefaultConfig("127.0.0.1:8080")
			err := c.FromEnv(env(map[string]string{tt.name: tt.value}))
			if !errors.Is(err, service.ErrConfig) {
				t.Fatalf("FromEnv error = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.value) {
				t.Errorf("error %q does not name %s and its value", err, tt.name)
			}
		})
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	c := service.DefaultConfig("127.0.0.1:8080")
	if err := c.FromEnv(env(map[string]string{
		"KAFKA_BROKERS":            "env:9092",
		"SCHEMA_REGISTRY_URL":      "http://env:8081",
		"DATA_DIR":                 "/env",
		"HTTP_ADDR":                "env:8080",
		"SMTP_ADDR":                "env:25",
		"TOPIC_PARTITIONS":         "3",
		"TOPIC_REPLICATION_FACTOR": "3",
	})); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{
		"-brokers", "f1:1,f2:2", "-registry", "https://flag:1", "-data-dir", "/flag", "-http", "flag:2",
		"-smtp", "flag:25", "-partitions", "9", "-replication-factor", "-1", "-pprof",
	}); err != nil {
		t.Fatal(err)
	}
	want := service.Config{
		Brokers: []string{"f1:1", "f2:2"}, RegistryURL: "https://flag:1", DataDir: "/flag", HTTPAddr: "flag:2",
		SMTPAddr: "flag:25", Partitions: 9, ReplicationFactor: -1, StartTimeout: 30 * time.Second,
		FetchMaxBytes: 1 << 20, FetchMaxPartitionBytes: 256 << 10, Pprof: true,
	}
	if !equalConfig(c, want) {
		t.Errorf("after flags:\n got %+v\nwant %+v", c, want)
	}
}

func TestFlagsUnsetKeepEnv(t *testing.T) {
	t.Parallel()
	c := service.DefaultConfig("127.0.0.1:8080")
	if err := c.FromEnv(env(map[string]string{"KAFKA_BROKERS": "env:9092", "DATA_DIR": "/env", "TOPIC_PARTITIONS": "3"})); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-http", ":1"}); err != nil {
		t.Fatal(err)
	}
	want := service.DefaultConfig(":1")
	want.Brokers, want.DataDir, want.Partitions = []string{"env:9092"}, "/env", 3
	if !equalConfig(c, want) {
		t.Errorf("after flags:\n got %+v\nwant %+v", c, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*service.Config)
		wantVar []string // variables the error names; none: valid
	}{
		{name: "defaults", mutate: func(*service.Config) {}},
		{name: "https registry", mutate: func(c *service.Config) { c.RegistryURL = "https://sr.example.com" }},
		{name: "HTTP on all interfaces", mutate: func(c *service.Config) { c.HTTPAddr = ":8080" }},
		{name: "SMTP set", mutate: func(c *service.Config) { c.SMTPAddr = "mail:25" }},
		{name: "replication factor -1", mutate: func(c *service.Config) { c.ReplicationFactor = -1 }},
		{name: "IPv6 broker", mutate: func(c *service.Config) { c.Brokers = []string{"[::1]:9092"} }},

		{name: "no brokers", mutate: func(c *service.Config) { c.Brokers = nil }, wantVar: []string{"KAFKA_BROKERS"}},
		{name: "broker without port", mutate: func(c *service.Config) { c.Brokers = []string{"k1:9092", "k2"} }, wantVar: []string{"KAFKA_BROKERS"}},
		{name: "broker with empty port", mutate: func(c *service.Config) { c.Brokers = []string{"k1:"} }, wantVar: []string{"KAFKA_BROKERS"}},
		{name: "registry URL without scheme", mutate: func(c *service.Config) { c.RegistryURL = "registry.example.com:8081" }, wantVar: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "registry IP without scheme", mutate: func(c *service.Config) { c.RegistryURL = "127.0.0.1:8081" }, wantVar: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "registry ftp URL", mutate: func(c *service.Config) { c.RegistryURL = "ftp://registry.example.com" }, wantVar: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "registry URL without host", mutate: func(c *service.Config) { c.RegistryURL = "http://" }, wantVar: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "empty registry URL", mutate: func(c *service.Config) { c.RegistryURL = "" }, wantVar: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "empty data dir", mutate: func(c *service.Config) { c.DataDir = "" }, wantVar: []string{"DATA_DIR"}},
		{name: "HTTP addr without port", mutate: func(c *service.Config) { c.HTTPAddr = "localhost" }, wantVar: []string{"HTTP_ADDR"}},
		{name: "HTTP addr port only, no colon", mutate: func(c *service.Config) { c.HTTPAddr = "8080" }, wantVar: []string{"HTTP_ADDR"}},
		{name: "SMTP addr without port", mutate: func(c *service.Config) { c.SMTPAddr = "mail.example.com" }, wantVar: []string{"SMTP_ADDR"}},
		{name: "partitions 0 (the catalog's)", mutate: func(c *service.Config) { c.Partitions = 0 }},
		{name: "partitions -1", mutate: func(c *service.Config) { c.Partitions = -1 }, wantVar: []string{"TOPIC_PARTITIONS"}},
		{name: "replication factor 0 (the catalog's)", mutate: func(c *service.Config) { c.ReplicationFactor = 0 }},
		{name: "replication factor beyond int16", mutate: func(c *service.Config) { c.ReplicationFactor = 40000 }, wantVar: []string{"TOPIC_REPLICATION_FACTOR"}},
		{name: "replication factor -2", mutate: func(c *service.Config) { c.ReplicationFactor = -2 }, wantVar: []string{"TOPIC_REPLICATION_FACTOR"}},
		{name: "start timeout 0", mutate: func(c *service.Config) { c.StartTimeout = 0 }, wantVar: []string{"START_TIMEOUT"}},
		{name: "start timeout negative", mutate: func(c *service.Config) { c.StartTimeout = -time.Second }, wantVar: []string{"START_TIMEOUT"}},
		{name: "fetch max bytes 0", mutate: func(c *service.Config) { c.FetchMaxBytes = 0 }, wantVar: []string{"KAFKA_FETCH_MAX_BYTES"}},
		{name: "fetch max bytes beyond int32", mutate: func(c *service.Config) { c.FetchMaxBytes = 1 << 31 }, wantVar: []string{"KAFKA_FETCH_MAX_BYTES"}},
		{name: "fetch max partition bytes negative", mutate: func(c *service.Config) { c.FetchMaxPartitionBytes = -1 }, wantVar: []string{"KAFKA_FETCH_MAX_PARTITION_BYTES"}},
		{
			name:    "several bad settings, each reported",
			mutate:  func(c *service.Config) { c.Brokers, c.DataDir, c.Partitions = []string{"k1"}, "", -1 },
			wantVar: []string{"KAFKA_BROKERS", "DATA_DIR", "TOPIC_PARTITIONS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := service.DefaultConfig("127.0.0.1:8080")
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.wantVar) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, service.ErrConfig) {
				t.Fatalf("Validate error = %v, want ErrConfig", err)
			}
			for _, v := range tt.wantVar {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.wantVar) {
				t.Errorf("error has %d lines, want one per bad setting (%d): %q", n, len(tt.wantVar), err)
			}
		})
	}
}

func TestMainRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr []string
		oneLine    bool
	}{
		{name: "unknown flag", args: []string{"-nope"}, wantCode: 2, wantStderr: []string{"-nope"}},
		{name: "bad flag value", args: []string{"-partitions", "many"}, wantCode: 2, wantStderr: []string{"-partitions", "many"}},
		{name: "non-numeric TOPIC_PARTITIONS", env: map[string]string{"TOPIC_PARTITIONS": "six"}, wantCode: 2, wantStderr: []string{"TOPIC_PARTITIONS", "six"}, oneLine: true},
		{name: "broker without port", env: map[string]string{"KAFKA_BROKERS": "kafka"}, wantCode: 2, wantStderr: []string{"KAFKA_BROKERS", "kafka"}, oneLine: true},
		{name: "registry without scheme", env: map[string]string{"SCHEMA_REGISTRY_URL": "registry:8081"}, wantCode: 2, wantStderr: []string{"SCHEMA_REGISTRY_URL"}, oneLine: true},
		{name: "bad setting by flag", args: []string{"-replication-factor", "-2"}, wantCode: 2, wantStderr: []string{"TOPIC_REPLICATION_FACTOR"}, oneLine: true},
		{name: "positional argument", args: []string{"extra"}, wantCode: 2, wantStderr: []string{`"extra"`}, oneLine: true},
		{name: "positional argument after flags", args: []string{"-http", ":1", "serve"}, wantCode: 2, wantStderr: []string{`"serve"`}, oneLine: true},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: []string{"-brokers", "KAFKA_BROKERS", "-kafka-sasl-mechanism", "KAFKA_TLS_CA_FILE"}},
		{name: "SASL PLAIN without TLS", env: map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "hunter2"},
			wantCode: 2, wantStderr: []string{"KAFKA_SASL_ALLOW_PLAINTEXT"}, oneLine: true},
		{name: "bad KAFKA_TLS", env: map[string]string{"KAFKA_TLS": "sure"}, wantCode: 2, wantStderr: []string{"KAFKA_TLS", "sure"}, oneLine: true},
		{name: "unknown SASL mechanism by flag", args: []string{"-kafka-sasl-mechanism", "GSSAPI"}, wantCode: 2, wantStderr: []string{"KAFKA_SASL_MECHANISM", "GSSAPI"}},
		{name: "registry password in URL over http", env: map[string]string{"SCHEMA_REGISTRY_URL": "http://u:hunter2@registry:8081"},
			wantCode: 2, wantStderr: []string{"SCHEMA_REGISTRY_ALLOW_PLAINTEXT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			build := func(context.Context, service.Config, *slog.Logger) (*service.Service, error) {
				t.Error("build called")
				return nil, errors.New("build must not be called")
			}
			code := service.Main("test-service", "127.0.0.1:8080", tt.args, env(tt.env), &stderr, build)
			if code != tt.wantCode {
				t.Errorf("Main = %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not mention %q:\n%s", s, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr shows a password:\n%s", stderr.String())
			}
			if tt.oneLine {
				if lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "test-service: ") {
					t.Errorf("stderr is not one line starting with the service name:\n%s", stderr.String())
				}
			}
		})
	}
}

// TestMainBuildError checks the other exit status: valid configuration, failing build.
func TestMainBuildError(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	var got service.Config
	build := func(_ context.Context, cfg service.Config, _ *slog.Logger) (*service.Service, error) {
		got = cfg
		return nil, errors.New("kafka unreachable")
	}
	code := service.Main("test-service", "127.0.0.1:8080", []string{"-partitions", "4"},
		env(map[string]string{"KAFKA_BROKERS": "k:1", "TOPIC_PARTITIONS": "2"}), &stderr, build)
	if code != 1 {
		t.Errorf("Main = %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "kafka unreachable") {
		t.Errorf("stderr does not carry the build error:\n%s", stderr.String())
	}
	want := service.DefaultConfig("127.0.0.1:8080")
	want.Brokers, want.Partitions = []string{"k:1"}, 4
	if !equalConfig(got, want) {
		t.Errorf("build got config\n %+v\nwant %+v", got, want)
	}
}

// equalConfig compares every field, so that a setting added later is compared too.
func equalConfig(a, b service.Config) bool {
	return reflect.DeepEqual(a, b)
}

// TestMainBuilderConfigError checks that a setting the service's builder reads itself (not one
// of Config's) is reported as bad configuration, like Config's own: exit status 2.
func TestMainBuilderConfigError(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	build := func(context.Context, service.Config, *slog.Logger) (*service.Service, error) {
		return nil, fmt.Errorf("REGISTRATION_MODE=%q: want choreography or orchestrated: %w", "sideways", service.ErrConfig)
	}
	if code := service.Main("test-service", "127.0.0.1:8080", nil, env(nil), &stderr, build); code != 2 {
		t.Errorf("Main = %d, want 2; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "REGISTRATION_MODE") {
		t.Errorf("stderr does not name the setting:\n%s", stderr.String())
	}
}
