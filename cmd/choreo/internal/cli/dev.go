package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/schemas"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
	"github.com/choreo-dev/choreo/services/stack"
)

func runDev(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data-dir", orDefault(env.Getenv("DATA_DIR"), "var"), "data directory (env DATA_DIR)")
	fresh := fs.Bool("fresh", false, "remove the data directory's state before starting")
	kafkaPort := fs.Int("kafka-port", 9092, "port of the embedded Kafka on 127.0.0.1")
	brokers := fs.String("brokers", "", "use this external Kafka (host:port,...) instead of the embedded one")
	registryAddr := fs.String("registry-addr", "127.0.0.1:8081", "listen address of the embedded schema registry")
	accountAddr := fs.String("account-addr", accountsvc.DefaultHTTPAddr, "Account Service HTTP address")
	userAddr := fs.String("user-addr", "127.0.0.1:8082", "User Service HTTP address")
	notifAddr := fs.String("notification-addr", "127.0.0.1:8083", "Notification Service HTTP address")
	uiAddr := fs.String("ui-addr", orDefault(env.Getenv("CHOREO_UI_ADDR"), defaultUIAddr), "listen address of the explorer (env CHOREO_UI_ADDR); empty for none")
	smtp := fs.String("smtp", env.Getenv("SMTP_ADDR"), "send mail through this SMTP server instead of writing .eml files (env SMTP_ADDR)")
	partitions := fs.Int("partitions", 6, "partitions of created topics")
	verbose := fs.Bool("v", false, "log at debug level")
	brokerOnly := fs.Bool("broker-only", false, "run only the embedded Kafka on -kafka-port (in memory), for services started as their own processes")
	// TLS and SASL of the -brokers cluster; the embedded broker and registry are plaintext.
	var conn connect.Settings
	envErr := conn.FromEnv(env.Getenv)
	conn.Kafka.RegisterFlags(fs)
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	conn.Registry = connect.Registry{}
	if err := errors.Join(envErr, conn.Validate("http://127.0.0.1")); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *brokers == "" && (conn.Kafka.TLS.Enabled || conn.Kafka.SASL.Mechanism != "") {
		return fmt.Errorf("%w: TLS and SASL settings are for an external cluster; give it with -brokers", errUsage)
	}
	if *kafkaPort < 0 || *kafkaPort > 65535 {
		return fmt.Errorf("%w: -kafka-port %d is not a port", errUsage, *kafkaPort)
	}
	if *brokerOnly {
		return runBrokerOnly(ctx, env, *kafkaPort)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := stack.Config{
		DataDir: *dataDir, Fresh: *fresh, KafkaPort: *kafkaPort, RegistryAddr: *registryAddr,
		HTTPAddrs: map[string]string{
			"account-service": *accountAddr, "user-service": *userAddr, "notification-service": *notifAddr,
		},
		SMTPAddr: *smtp, Partitions: *partitions, Conn: conn,
		Log: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if *brokers != "" {
		cfg.Brokers = strings.Split(*brokers, ",")
	}
	providers := map[string]trace.TracerProvider{}
	for _, name := range stack.Services() {
		tp, shutdown, err := telemetry.Provider(ctx, name, env.Getenv)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = shutdown(sctx)
		}()
		providers[name] = tp
	}
	cfg.TracerProvider = func(name string) trace.TracerProvider { return providers[name] }
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	uiDone := make(chan error, 1)
	var uiURL string
	if *uiAddr != "" {
		url, err := startDevUI(ctx, env, s, conn, cfg.Namespace, *uiAddr, uiDone)
		if err != nil {
			return errors.Join(err, s.Close())
		}
		uiURL = url
	}
	fmt.Fprintln(env.Stdout, "choreo dev is running:")
	for _, l := range s.Describe() {
		fmt.Fprintln(env.Stdout, "  "+l)
	}
	if uiURL != "" {
		fmt.Fprintf(env.Stdout, "  %-23s %s\n", "explorer", uiURL)
	}
	acc := s.Service("account-service").HTTPAddr()
	fmt.Fprintf(env.Stdout, `
Register an account:
  curl -XPOST %s/accounts -d '{"username":"johndoe","email":"johndoe@mail.com"}'
Publish an event with kcat:
  choreo encode AccountCreated '{"accountId":"a1","username":"jane","email":"jane@mail.com","createdAt":1767225600000}' > ev.avro
  kcat -P -b %s -t accounts -k a1 ev.avro
Watch the events:  choreo tail users
Stop with Ctrl-C.
`, "http://"+acc, s.Brokers()[0])
	var uiErr error
	select {
	case <-ctx.Done():
		if *uiAddr != "" {
			uiErr = <-uiDone
		}
	case uiErr = <-uiDone:
	}
	fmt.Fprintln(env.Stdout, "shutting down: finishing in-flight records, committing offsets, flushing outboxes")
	return errors.Join(uiErr, s.Close())
}

// startDevUI serves the explorer of the stack's catalog on addr until ctx ends, then sends
// serveUI's outcome on done. The effects come from the services that declare effects.
func startDevUI(ctx context.Context, env Env, s *stack.Stack, settings connect.Settings, ns, addr string, done chan<- error) (string, error) {
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return "", err
	}
	effects := map[string]string{}
	for _, name := range stack.Services() {
		if svc, ok := cat.Service(name); ok && len(svc.Effects) > 0 {
			effects[name] = "http://" + s.Service(name).HTTPAddr()
		}
	}
	cn := uiConn(s.Brokers(), s.RegistryURL(), settings)
	ex, closeEx, err := newExplorer(ctx, env, cn, ns, cat, schemas.FS, effects, 24*time.Hour)
	if err != nil {
		return "", err
	}
	ln, url, err := listenUI(addr)
	if err != nil {
		closeEx()
		return "", err
	}
	go func() {
		defer closeEx()
		done <- serveUI(ctx, ln, ex)
	}()
	return url, nil
}
