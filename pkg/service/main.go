package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// Builder builds a ready-to-run service from its configuration.
type Builder func(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error)

// Main is the whole of a service binary: configuration from the environment, flags overriding,
// build, run until SIGINT or SIGTERM. Unless GOMEMLIMIT is set, Go's soft memory limit is
// DefaultMemoryLimit while Main runs. It returns the process exit code: 2 for bad
// configuration or flags, 1 for a failure to start or run.
func Main(name, defaultHTTPAddr string, args []string, getenv func(string) string, stderr io.Writer, build Builder) int {
	cfg := DefaultConfig(defaultHTTPAddr)
	if err := cfg.FromEnv(getenv); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer applyMemoryLimit(getenv)()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tp, shutdown, err := telemetry.Provider(ctx, name, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() {
		// Spans still batched are sent before the process exits, within a bound.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("exporting the last spans failed", "err", err)
		}
	}()
	cfg.TracerProvider = tp
	s, err := build(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if errors.Is(err, ErrConfig) {
			return 2 // a service's own setting, read by its builder
		}
		return 1
	}
	log.Info("started", "service", name, "http", s.HTTPAddr(), "brokers", cfg.Brokers, "registry", connect.RedactURL(cfg.RegistryURL))
	if err := s.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
