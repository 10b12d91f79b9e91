package cli

import (
	"bytes"
	"context"
	"encoding/json"
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
		return fmt.Errorf("%w: want docs, check, impact or asyncapi", errUsage)
	}
	switch args[0] {
	case "docs":
		return runCatalogDocs(env, args[1:])
	case "asyncapi":
		return runCatalogAsyncAPI(env, args[1:])
	case "check":
		return runCatalogCheck(env, args[1:])
	case "impact":
		return runCatalogImpact(env, args[1:])
	}
	return fmt.Errorf("%w: unknown catalog command %q", errUsage, args[0])
}

// schemasFlag is the -schemas flag of the catalog commands: another catalog directory than the
// one built into choreo, e.g. a service repository's or the large test catalog.
func schemasFlag(fs *flag.FlagSet) *string {
	return fs.String("schemas", "", "directory holding catalog.yaml and its .avsc schemas (default: choreo's built-in schemas/)")
}

func loadCatalog(dir string) (*catalog.Catalog, error) {
	if dir == "" {
		return catalog.Load(schemas.FS)
	}
	return catalog.Load(os.DirFS(dir))
}

func runCatalogDocs(env Env, args []string) error {
	fs := flag.NewFlagSet("catalog docs", flag.ContinueOnError)
	out := fs.String("o", "schemas/CATALOG.md", "output file; - for stdout")
	dir := fs.String("dir", "", "write linked pages instead (index.md, services/, chains/) into this directory, for big catalogs")
	from := schemasFlag(fs)
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	cat, err := loadCatalog(*from)
	if err != nil {
		return err
	}
	if *dir != "" {
		return cat.WriteDir(*dir)
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
}

// runCatalogCheck checks the catalog entry by entry (and, for the built-in one, that every event
// type compiles), then its flow as a whole: errors fail the command, warnings are printed.
func runCatalogCheck(env Env, args []string) error {
	fs := flag.NewFlagSet("catalog check", flag.ContinueOnError)
	from := schemasFlag(fs)
	if err := parse(fs, env, args, 0); err != nil {
		return err
	}
	if *from == "" {
		if _, err := event.Load(); err != nil {
			return err
		}
	}
	cat, err := loadCatalog(*from)
	if err != nil {
		return err
	}
	findings := cat.Analyze()
	errs := 0
	for _, f := range findings {
		fmt.Fprintln(env.Stdout, f)
		if f.Severity == catalog.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		return fmt.Errorf("%w: %d error(s) in the flow of the catalog", catalog.ErrInvalid, errs)
	}
	fmt.Fprintf(env.Stdout, "catalog ok: %d events, %d services, %d chains, %d warning(s)\n",
		len(cat.Events), len(cat.Services), len(cat.Chains), len(findings))
	return nil
}

func runCatalogImpact(env Env, args []string) error {
	fs := flag.NewFlagSet("catalog impact", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the impact as JSON")
	from := schemasFlag(fs)
	if err := parse(fs, env, args, 1); err != nil {
		return err
	}
	cat, err := loadCatalog(*from)
	if err != nil {
		return err
	}
	im, err := cat.Impact(fs.Arg(0))
	if err != nil {
		return err
	}
	if !*asJSON {
		return im.WriteText(env.Stdout)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(im)
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
