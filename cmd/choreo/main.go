// Command choreo is choreo's command line: `choreo dev` runs the whole choreography in one
// process; encode, publish and tail work with events on Kafka; catalog renders the event catalog.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/choreo-dev/choreo/cmd/choreo/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
