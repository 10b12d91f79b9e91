package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/choreo-dev/choreo/pkg/registry"
)

// runRegistry serves the embedded schema registry on its own, for running the services as
// separate processes without Docker (make up).
func runRegistry(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	dataDir := fs.String("data-dir", orDefault(env.Getenv("DATA_DIR"), "var"), "where registry.json keeps the schemas (env DATA_DIR)")
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	srv, err := registry.Start(*addr, registry.StateFile(filepath.Join(*dataDir, "registry.json")),
		registry.Logger(slog.New(slog.NewTextHandler(env.Stderr, nil))))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "schema registry listening on %s (state: %s)\n", srv.URL(), filepath.Join(*dataDir, "registry.json"))
	<-ctx.Done()
	return srv.Close()
}
