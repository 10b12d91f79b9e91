package service

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/connect"
)

// ErrConfig is wrapped by every configuration error; the message names the setting. It is
// connect.ErrConfig, so connection settings and the rest of the configuration fail alike.
var ErrConfig = connect.ErrConfig

// Config is what every choreo service reads from its environment, with flags overriding.
type Config struct {
	// Brokers are the Kafka seed brokers (KAFKA_BROKERS, comma-separated). Default 127.0.0.1:9092.
	Brokers []string
	// RegistryURL is the schema registry (SCHEMA_REGISTRY_URL). Default http://127.0.0.1:8081.
	RegistryURL string
	// DataDir holds the service's database (DATA_DIR). Default var.
	DataDir string
	// DatabaseURL selects PostgreSQL (DATABASE_URL, a postgres:// URL; a search_path parameter
	// names the service's schema). Default "": SQLite under DataDir.
	DatabaseURL string
	// HTTPAddr is where the service's HTTP API listens (HTTP_ADDR); each service has its own default.
	HTTPAddr string
	// Namespace, when set, prefixes every topic and consumer group with "<Namespace>." so that
	// several deployments can share one Kafka cluster (CHOREO_NAMESPACE). Default "".
	Namespace string
	// SMTPAddr is the SMTP server mail is sent through (SMTP_ADDR, host:port). Default "": mail
	// is written as .eml files under DataDir/mail instead.
	SMTPAddr string
	// SMTPSendBatch is how many emails the Notification Service may have sent over SMTP and not
	// yet recorded (SMTP_SEND_BATCH): on SQLite, that many are committed at once, each recorded
	// as the server accepts it; on PostgreSQL, that many are sent, then recorded in one
	// transaction. It is also how many emails a crash can deliver twice (SMTP has no idempotent
	// delivery; the second copy carries the same Message-ID). Default 1: each email is recorded
	// before the next is committed, while up to 16 others are prepared; a larger value trades
	// that guarantee for throughput where the server's round trip is the limit.
	SMTPSendBatch int
	// StartTimeout bounds how long start-up waits for each dependency (database, schema
	// registry, Kafka) to answer (START_TIMEOUT, a Go duration). Default 30s.
	StartTimeout time.Duration
	// Partitions, when positive, overrides the catalog's partition count of every topic
	// (TOPIC_PARTITIONS). Default 0: as schemas/catalog.yaml declares.
	Partitions int
	// ReplicationFactor, when positive, overrides the catalog's replication factor of every
	// topic; -1 leaves replication and min.insync.replicas to the broker's defaults
	// (TOPIC_REPLICATION_FACTOR). Default 0: as the catalog declares, capped at 1 on a single broker.
	ReplicationFactor int
	// Conn holds the connection settings of Kafka and the schema registry: TLS, SASL and
	// registry credentials (see package connect for their variables). Default: plaintext.
	Conn connect.Settings
	// FetchMaxBytes bounds what one fetch of the consumer brings from Kafka
	// (KAFKA_FETCH_MAX_BYTES, bytes; kgo.FetchMaxBytes). The consumer holds the records it has
	// fetched until its handlers have applied them, so this bounds what a backlog takes in memory;
	// a record batch larger than the bound is still fetched, alone. Default 1 MiB (franz-go's own
	// default, 50 MiB, is most of a service's memory budget).
	FetchMaxBytes int
	// FetchMaxPartitionBytes bounds one partition's share of a fetch
	// (KAFKA_FETCH_MAX_PARTITION_BYTES, bytes; kgo.FetchMaxPartitionBytes). Default 256 KiB.
	FetchMaxPartitionBytes int
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on HTTPAddr, beside
	// /metrics, for finding where memory or CPU goes in a running service (CHOREO_PPROF, true or
	// false). Default false: profiles show internals and cost CPU while taken.
	Pprof bool
	// TracerProvider receives the service's spans. Default nil: tracing off. Main builds it from
	// the OTEL_* variables (see telemetry.Provider).
	TracerProvider trace.TracerProvider
}

// DefaultConfig returns the defaults, with httpAddr as the service's HTTP address.
func DefaultConfig(httpAddr string) Config {
	return Config{
		Brokers:       []string{"127.0.0.1:9092"},
		RegistryURL:   "http://127.0.0.1:8081",
		DataDir:       "var",
		HTTPAddr:      httpAddr,
		StartTimeout:  30 * time.Second,
		SMTPSendBatch: 1,
		// Bounds on what the consumer holds ahead of its handlers: see the fields.
		FetchMaxBytes:          1 << 20,
		FetchMaxPartitionBytes: 256 << 10,
	}
}

// FromEnv overrides c with the variables getenv (os.Getenv) defines.
func (c *Config) FromEnv(getenv func(string) string) error {
	if v := getenv("KAFKA_BROKERS"); v != "" {
		c.Brokers = splitList(v)
	}
	if v := getenv("SCHEMA_REGISTRY_URL"); v != "" {
		c.RegistryURL = v
	}
	if v := getenv("DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := getenv("DATABASE_URL"); v != "" {
		c.DatabaseURL = v
	}
	if v := getenv("HTTP_ADDR"); v != "" {
		c.HTTPAddr = v
	}
	if v := getenv("CHOREO_NAMESPACE"); v != "" {
		c.Namespace = v
	}
	if v := getenv("START_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("START_TIMEOUT=%q: not a duration such as 30s: %w", v, ErrConfig)
		}
		c.StartTimeout = d
	}
	if v := getenv("SMTP_ADDR"); v != "" {
		c.SMTPAddr = v
	}
	if v := getenv("CHOREO_PPROF"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("CHOREO_PPROF=%q: not true or false: %w", v, ErrConfig)
		}
		c.Pprof = b
	}
	if err := c.Conn.FromEnv(getenv); err != nil {
		return err
	}
	var err error
	if c.RegistryURL, err = c.Conn.Registry.TakeUserInfo(c.RegistryURL); err != nil {
		return err
	}
	for _, iv := range []struct {
		name string
		dst  *int
	}{{"TOPIC_PARTITIONS", &c.Partitions}, {"TOPIC_REPLICATION_FACTOR", &c.ReplicationFactor},
		{"KAFKA_FETCH_MAX_BYTES", &c.FetchMaxBytes}, {"KAFKA_FETCH_MAX_PARTITION_BYTES", &c.FetchMaxPartitionBytes},
		{"SMTP_SEND_BATCH", &c.SMTPSendBatch}} {
		if v := getenv(iv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a whole number: %w", iv.name, v, ErrConfig)
			}
			*iv.dst = n
		}
	}
	return nil
}

// RegisterFlags defines flags on fs that override c (so call FromEnv first).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("brokers", "Kafka seed brokers, comma-separated (env KAFKA_BROKERS)", func(s string) error {
		c.Brokers = splitList(s)
		return nil
	})
	fs.Func("registry", "schema registry URL; user info in it is used as basic auth (env SCHEMA_REGISTRY_URL)", func(s string) error {
		u, err := c.Conn.Registry.TakeUserInfo(s)
		c.RegistryURL = u
		return err
	})
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (env DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database", c.DatabaseURL, "PostgreSQL URL; empty uses SQLite under the data directory (env DATABASE_URL)")
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "HTTP listen address (env HTTP_ADDR)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "prefix of topics and consumer groups, for sharing a cluster (env CHOREO_NAMESPACE)")
	fs.StringVar(&c.SMTPAddr, "smtp", c.SMTPAddr, "SMTP server host:port; empty writes .eml files (env SMTP_ADDR)")
	fs.IntVar(&c.SMTPSendBatch, "smtp-send-batch", c.SMTPSendBatch, "emails that may be sent over SMTP and not yet recorded: how many a crash can resend (env SMTP_SEND_BATCH)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve Go's profiles under /debug/pprof/ on the HTTP address (env CHOREO_PPROF)")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of created topics; 0 takes the catalog's (env TOPIC_PARTITIONS)")
	c.Conn.RegisterFlags(fs)
	fs.IntVar(&c.ReplicationFactor, "replication-factor", c.ReplicationFactor, "replication factor of created topics; 0 takes the catalog's, -1 the broker default (env TOPIC_REPLICATION_FACTOR)")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports every invalid setting, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format+": %w", append(a, ErrConfig)...)) }
	if len(c.Brokers) == 0 {
		bad("KAFKA_BROKERS is empty; set host:port[,host:port]")
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad("KAFKA_BROKERS entry %q is not host:port", b)
		}
	}
	if u, err := url.Parse(c.RegistryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("SCHEMA_REGISTRY_URL %q is not an http(s) URL", connect.RedactURL(c.RegistryURL))
	} else if err := c.Conn.Validate(c.RegistryURL); err != nil {
		errs = append(errs, err)
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("DATABASE_URL is not a postgres:// URL")
		}
	}
	if c.DataDir == "" {
		bad("DATA_DIR is empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR %q is not host:port", c.HTTPAddr)
	}
	if c.Namespace != "" && !validName(c.Namespace) {
		bad("CHOREO_NAMESPACE %q may hold only letters, digits, '-' and '_'", c.Namespace)
	}
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			bad("SMTP_ADDR %q is not host:port", c.SMTPAddr)
		}
	}
	if c.SMTPSendBatch < 1 || c.SMTPSendBatch > 4096 {
		bad("SMTP_SEND_BATCH is %d; it must be 1 to 4096 emails", c.SMTPSendBatch)
	}
	if c.StartTimeout <= 0 {
		bad("START_TIMEOUT is %s; it must be positive", c.StartTimeout)
	}
	if c.Partitions < 0 || c.Partitions > math.MaxInt32 {
		bad("TOPIC_PARTITIONS is %d; it must be 0 (the catalog's) or a partition count", c.Partitions)
	}
	if c.FetchMaxBytes <= 0 || c.FetchMaxBytes > math.MaxInt32 {
		bad("KAFKA_FETCH_MAX_BYTES is %d; it must be a positive number of bytes", c.FetchMaxBytes)
	}
	if c.FetchMaxPartitionBytes <= 0 || c.FetchMaxPartitionBytes > math.MaxInt32 {
		bad("KAFKA_FETCH_MAX_PARTITION_BYTES is %d; it must be a positive number of bytes", c.FetchMaxPartitionBytes)
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor > math.MaxInt16 {
		bad("TOPIC_REPLICATION_FACTOR is %d; it must be 0 (the catalog's), -1 (the broker's) or a replica count", c.ReplicationFactor)
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Scoped returns name within the configured namespace: "<Namespace>.<name>", or name alone.
func (c Config) Scoped(name string) string {
	if c.Namespace == "" {
		return name
	}
	return c.Namespace + "." + name
}
