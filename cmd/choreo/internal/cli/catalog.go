package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/schemas"
)

func runCatalog(_ context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want docs or check", errUsage)
	}
	switch args[0] {
	case "docs":
		fs := flag.NewFlagSet("catalog docs", flag.ContinueOnError)
		out := fs.String("o", "schemas/CATALOG.md", "output file; - for stdout")
		if err := parse(fs, env, args[1:], 0); err != nil {
			return err
		}
		cat, err := catalog.Load(schemas.FS)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := cat.WriteMarkdown(&b); err != nil {
			return err
		}
		if *out == "-" {
			_, err = env.Stdout.Write(b.Bytes())
			return err
		}
		return os.WriteFile(*out, b.Bytes(), 0o644)
	case "check":
		fs := flag.NewFlagSet("catalog check", flag.ContinueOnError)
		if err := parse(fs, env, args[1:], 0); err != nil {
			return err
		}
		if _, err := event.Load(); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "catalog ok")
		return nil
	}
	return fmt.Errorf("%w: unknown catalog command %q", errUsage, args[0])
}
