// Package cli implements the choreo command line.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Env is the process environment a command runs in, so tests can run commands in process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// errUsage marks an error in how the command was called: exit status 2.
var errUsage = errors.New("usage")

type command struct {
	name, args, help string
	run              func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "[flags]", "run Kafka, the schema registry and all services in one process", runDev},
		{"encode", "[flags] <Event> <json>", "write one Confluent-framed Avro event to stdout", runEncode},
		{"publish", "[flags] <Event> <json>", "encode an event and publish it with CloudEvents headers", runPublish},
		{"tail", "[flags] <topic>", "print a topic's events, decoded, as JSON lines", runTail},
		{"dlq", "list|show|replay <group>", "list, show and replay the records a consumer group parked", runDLQ},
		{"trace", "[flags] <id>", "show the chain of events one operation took, checked against the catalog", runTrace},
		{"ui", "[flags]", "serve the explorer: the catalog, recent operations and each one's tree, in a browser", runUI},
		{"registry", "[flags]", "serve the embedded schema registry on its own", runRegistry},
		{"catalog", "docs|check|impact|asyncapi [flags]", "render the catalog docs or AsyncAPI documents, check the catalog, or show what depends on an event or service", runCatalog},
		{"schema", "check [flags]", "check every schema against its earlier versions (history or registry)", runSchema},
		{"acls", "plan|apply|check [flags]", "derive each service's Kafka ACLs from the catalog; apply or check them", runACLs},
	}
}

// Run runs the command in args and returns the process exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(env.Stderr, "choreo %s: %v\nusage: choreo %s %s\n", c.name, err, c.name, c.args)
			return 2
		default:
			fmt.Fprintf(env.Stderr, "choreo %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "choreo: unknown command %q\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage: choreo <command> [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %-26s %s\n", c.name, c.args, c.help)
	}
	b.WriteString("\nRun 'choreo <command> -h' for a command's flags.\n")
	_, _ = io.WriteString(w, b.String())
}

// parse parses flags, turning flag errors into usage errors, and checks the positional count.
func parse(fs *flag.FlagSet, env Env, args []string, nargs int) error {
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != nargs {
		return fmt.Errorf("%w: want %d argument(s), got %d", errUsage, nargs, fs.NArg())
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
