// Command bench is make bench: choreo's registration chain end to end (AccountCreated published
// to the accounts topic until its welcome email is accepted by an SMTP server), beside the same
// chain on bare franz-go and on Watermill, on one broker in one run. See the README's
// "Performance" section. `bench peer -system bare|watermill` is one peer, started by the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/choreo-dev/choreo/bench/internal/harness"
	"github.com/choreo-dev/choreo/bench/internal/peers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "peer" {
		err = runPeer(ctx, os.Args[2:])
	} else {
		err = runBench(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := harness.Config{Out: os.Stdout, Log: os.Stderr}
	fs.StringVar(&cfg.Root, "root", "..", "the repository's root")
	fs.StringVar(&cfg.Bin, "bin", "../bin", "directory of the choreo, account, user and notification binaries (make build)")
	brokers := fs.String("brokers", "", "Kafka to run on (host:port,...); empty starts choreo dev -broker-only")
	systems := fs.String("systems", strings.Join(harness.AllSystems, ","), "systems to measure")
	fs.IntVar(&cfg.N, "n", 20000, "chains in the burst")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long each fixed rate runs")
	rates := fs.String("rates", "500,1000", "fixed rates, chains per second")
	fs.IntVar(&cfg.Partitions, "partitions", 6, "partitions of every topic")
	fs.DurationVar(&cfg.Drain, "drain", 2*time.Minute, "longest wait for a phase's last emails after its last publication")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Self = self
	if *brokers != "" {
		cfg.Brokers = strings.Split(*brokers, ",")
	}
	cfg.Systems = strings.Split(*systems, ",")
	for _, r := range strings.Split(*rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			return fmt.Errorf("-rates: %q is not a positive whole number", r)
		}
		cfg.Rates = append(cfg.Rates, n)
	}
	if cfg.N <= 0 || cfg.Duration <= 0 || cfg.Partitions <= 0 {
		return errors.New("-n, -duration and -partitions must be positive")
	}
	_, err = harness.Run(ctx, cfg)
	return err
}

func runPeer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	system := fs.String("system", "", "bare or watermill")
	brokers := fs.String("brokers", "", "Kafka seed brokers")
	var cfg peers.Config
	fs.StringVar(&cfg.Accounts, "accounts", "accounts", "topic of AccountCreated")
	fs.StringVar(&cfg.Users, "users", "users", "topic of UserCreated")
	fs.StringVar(&cfg.Group, "group", "", "prefix of the consumer groups")
	fs.StringVar(&cfg.SMTPAddr, "smtp", "", "SMTP server host:port")
	fs.IntVar(&cfg.UserSchemaID, "user-schema-id", 0, "registry ID of UserCreated's schema")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	report := func(err error) { fmt.Fprintln(os.Stderr, "peer:", err) }
	switch *system {
	case "bare":
		return peers.RunBare(ctx, cfg, report)
	case "watermill":
		return peers.RunWatermill(ctx, cfg, report)
	}
	return fmt.Errorf("peer -system %q: want bare or watermill", *system)
}
