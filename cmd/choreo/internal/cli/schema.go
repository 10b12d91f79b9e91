package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/evolution"
)

func runSchema(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: want check", errUsage)
	}
	fs := flag.NewFlagSet("schema check", flag.ContinueOnError)
	dir := fs.String("dir", "schemas", "the schemas directory: catalog.yaml, the .avsc files and history/")
	record := fs.Bool("record", false, "append every changed schema that passes to its history (history/<Event>/vN.avsc)")
	registryURL := fs.String("registry", "", "check against the versions this schema registry holds instead of the history, e.g. http://127.0.0.1:8081")
	namespace := fs.String("namespace", "", "with -registry: the topic namespace the services run with (env CHOREO_NAMESPACE)")
	// The registry's credentials and TLS, as every command takes them.
	var conn connect.Settings
	envErr := conn.FromEnv(env.Getenv)
	conn.Registry.RegisterFlags(fs)
	if err := parse(fs, env, args[1:], 0); err != nil {
		return err
	}
	if *namespace == "" {
		*namespace = env.Getenv("CHOREO_NAMESPACE")
	}
	fsys := os.DirFS(*dir)
	cat, err := catalog.Load(fsys)
	if err != nil {
		return err
	}

	var rep *evolution.Report
	where := "history in " + *dir
	if *registryURL != "" {
		u, err := conn.Registry.TakeUserInfo(*registryURL)
		conn.Kafka = connect.Kafka{}
		if err := errors.Join(envErr, err, conn.Validate(u)); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		cl, err := conn.Registry.RegistryClient(u)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if rep, err = evolution.CheckRegistry(ctx, cl, fsys, cat, *namespace); err != nil {
			return conn.Registry.Explain(err)
		}
		where = "registry " + u
	} else if rep, err = evolution.Check(fsys, cat); err != nil {
		return err
	}

	if *record && *registryURL == "" && len(rep.Findings) == 0 {
		if err := evolution.Record(*dir, rep); err != nil {
			return err
		}
		for _, u := range rep.Unrecorded {
			fmt.Fprintf(env.Stdout, "recorded %s as %s\n", u.Schema, u.Next)
		}
		rep.Unrecorded = nil
	}
	if err := rep.Err(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "schemas ok: %d events, %d versions checked against the %s\n", len(cat.Events), rep.Versions, where)
	return nil
}
