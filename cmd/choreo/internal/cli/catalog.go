package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/choreo-dev/choreo/pkg/asyncapi"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/schemas"
)

func runCatalog(_ context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want docs, asyncapi or check", errUsage)
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
	case "asyncapi":
		return runCatalogAsyncAPI(env, args[1:])
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

// runCatalogAsyncAPI writes one AsyncAPI document per service into a directory, and removes
// documents of services the catalog no longer has, so the directory is exactly the catalog's.
func runCatalogAsyncAPI(env Env, args []string) error {
	fs := flag.NewFlagSet("catalog asyncapi", flag.ContinueOnError)
	out := fs.String("o", "schemas/asyncapi", "output directory; - for stdout (all documents, one after the other)")
	kafka := fs.String("kafka", "localhost:9092", "Kafka bootstrap address written as the documents' server")
	registry := fs.String("schema-registry", "http://localhost:8081", "schema registry URL written into the server's Kafka binding")
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return err
	}
	docs, err := asyncapi.GenerateAll(cat, schemas.FS, asyncapi.WithKafka(*kafka), asyncapi.WithRegistry(*registry))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	if *out == "-" {
		for _, name := range names {
			if _, err := fmt.Fprintf(env.Stdout, "---\n%s", docs[name]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	stale, err := filepath.Glob(filepath.Join(*out, "*.asyncapi.yaml"))
	if err != nil {
		return err
	}
	for _, path := range stale {
		if _, ok := docs[filepath.Base(path)]; !ok {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(*out, name), docs[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
