package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/dlq"
)

const (
	dlqListUsage   = "choreo dlq list <group> [-brokers host:port,...] [-registry url]"
	dlqShowUsage   = "choreo dlq show <group> <offset> [-partition N] [-brokers host:port,...] [-registry url]"
	dlqReplayUsage = "choreo dlq replay <group> (-offset N [-partition P] | -all) [-force] [-brokers host:port,...] [-replication-factor N]"
)

func runDLQ(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want list, show or replay\n  %s\n  %s\n  %s", errUsage, dlqListUsage, dlqShowUsage, dlqReplayUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(env.Stderr, "usage:\n  %s\n  %s\n  %s\nRun 'choreo dlq <list|show|replay> -h' for their flags.\n", dlqListUsage, dlqShowUsage, dlqReplayUsage)
		return flag.ErrHelp
	case "list":
		return runDLQList(ctx, env, args[1:])
	case "show":
		return runDLQShow(ctx, env, args[1:])
	case "replay":
		return runDLQReplay(ctx, env, args[1:])
	}
	return fmt.Errorf("%w: unknown dlq command %q; want list, show or replay", errUsage, args[0])
}

// dlqLine is one parked record as `dlq list` prints it.
type dlqLine struct {
	dlq.Parked
	Replayed    bool        `json:"replayed"`
	Replay      *dlq.Replay `json:"replay,omitempty"`
	DecodeError string      `json:"decodeError,omitempty"`
}

func runDLQList(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
	cn := connFlags(fs, env)
	pos, err := parseInterspersed(fs, env, args, 1, dlqListUsage)
	if err != nil {
		return err
	}
	d, err := openDLQ(ctx, cn, pos[0])
	if err != nil {
		return err
	}
	defer d.Close()
	replays, err := d.Replays(ctx)
	if err != nil {
		return err
	}
	// The registry is asked only about records without a ce_type header, and when it cannot
	// be reached their type stays unknown: the listing is what one needs when things are broken.
	var (
		c    *codec.Codec
		cerr error
	)
	enc := json.NewEncoder(env.Stdout)
	return d.Each(ctx, func(p dlq.Parked) error {
		l := dlqLine{Parked: p}
		if r, ok := replays[p.Position]; ok {
			l.Replayed, l.Replay = true, &r
		}
		if p.Type == "" && len(p.Record.Value) > 0 {
			if c == nil && cerr == nil {
				if c, cerr = newCodec(ctx, cn, ""); cerr != nil {
					fmt.Fprintf(env.Stderr, "choreo dlq list: records without a ce_type header are listed without their type: %v\n", cerr)
				}
			}
			if cerr != nil {
				l.DecodeError = cerr.Error()
			} else if _, t, err := c.Unmarshal(ctx, p.Record.Value); err != nil {
				l.DecodeError = err.Error()
			} else {
				l.Type = t.Name
			}
		}
		return enc.Encode(l)
	})
}

// dlqShown is a parked record as `dlq show` prints it.
type dlqShown struct {
	Line
	Replayed bool        `json:"replayed"`
	Replay   *dlq.Replay `json:"replay,omitempty"`
}

func runDLQShow(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	cn := connFlags(fs, env)
	partition := fs.Int("partition", -1, "partition of the dead-letter topic; -1: whichever holds <offset>")
	pos, err := parseInterspersed(fs, env, args, 2, dlqShowUsage)
	if err != nil {
		return err
	}
	offset, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || offset < 0 {
		return fmt.Errorf("%w: offset %q is not a number >= 0\n  %s", errUsage, pos[1], dlqShowUsage)
	}
	if err := checkPartition(*partition, dlqShowUsage); err != nil {
		return err
	}
	d, err := openDLQ(ctx, cn, pos[0])
	if err != nil {
		return err
	}
	defer d.Close()
	p, err := d.Get(ctx, int32(*partition), offset)
	if err != nil {
		return hintPartition(err)
	}
	replays, err := d.Replays(ctx)
	if err != nil {
		return err
	}
	c, err := newCodec(ctx, cn, "")
	if err != nil {
		return err
	}
	out := dlqShown{Line: describe(ctx, c, p.Record)}
	if out.ID == "" {
		out.ID = p.ID // the identity the consumer gave the event (describe decodes only the value here)
	}
	if r, ok := replays[p.Position]; ok {
		out.Replayed, out.Replay = true, &r
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runDLQReplay(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	cn := connFlags(fs, env)
	offset := fs.Int64("offset", -1, "offset of the parked record to replay")
	partition := fs.Int("partition", -1, "partition of the dead-letter topic; -1: whichever holds -offset")
	all := fs.Bool("all", false, "replay every parked record not replayed yet")
	force := fs.Bool("force", false, "replay records that were replayed before as well")
	rfDefault := 3 // as the catalog's topicDefaults; capped at 1 on a single broker when created
	if v := env.Getenv("TOPIC_REPLICATION_FACTOR"); v != "" && v != "0" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%w: TOPIC_REPLICATION_FACTOR %q is not a number", errUsage, v)
		}
		rfDefault = n
	}
	rf := fs.Int("replication-factor", rfDefault,
		"replication factor of <group>.dlq.replays if it has to be created (capped at 1 on a single broker); -1: the broker's default (env TOPIC_REPLICATION_FACTOR)")
	pos, err := parseInterspersed(fs, env, args, 1, dlqReplayUsage)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["offset"] == *all:
		return fmt.Errorf("%w: give either -offset or -all\n  %s", errUsage, dlqReplayUsage)
	case *all && set["partition"]:
		return fmt.Errorf("%w: -partition goes with -offset, not -all\n  %s", errUsage, dlqReplayUsage)
	case set["offset"] && *offset < 0:
		return fmt.Errorf("%w: -offset %d is negative\n  %s", errUsage, *offset, dlqReplayUsage)
	case *rf == 0 || *rf < -1 || *rf > math.MaxInt16:
		return fmt.Errorf("%w: -replication-factor %d: want -1 or 1 to %d\n  %s", errUsage, *rf, math.MaxInt16, dlqReplayUsage)
	}
	if err := checkPartition(*partition, dlqReplayUsage); err != nil {
		return err
	}
	d, err := openDLQ(ctx, cn, pos[0], dlq.ReplicationFactor(int16(*rf)))
	if err != nil {
		return err
	}
	defer d.Close()
	enc := json.NewEncoder(env.Stdout)
	if !*all {
		r, err := d.ReplayOne(ctx, int32(*partition), *offset, *force)
		if errors.Is(err, dlq.ErrReplayed) {
			return fmt.Errorf("%w; use --force to replay it again", err)
		}
		if err != nil {
			return hintPartition(err)
		}
		return enc.Encode(r)
	}
	n := 0
	skipped, err := d.ReplayAll(ctx, *force, func(r dlq.Result) error {
		n++
		return enc.Encode(r)
	})
	fmt.Fprintf(env.Stderr, "replayed %d record(s) of %s", n, d.Topic())
	if skipped > 0 {
		fmt.Fprintf(env.Stderr, "; skipped %d replayed before (--force replays them again)", skipped)
	}
	fmt.Fprintln(env.Stderr)
	return err
}

// openDLQ opens group's dead-letter topic, naming the setting to fix when that fails.
func openDLQ(ctx context.Context, cn *conn, group string, opts ...dlq.Opt) (*dlq.DLQ, error) {
	kopts, err := cn.kafkaOpts(kgo.RecordDeliveryTimeout(30 * time.Second))
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	d, err := dlq.Open(octx, group, kopts, opts...)
	switch {
	case errors.Is(err, dlq.ErrNoTopic):
		return nil, fmt.Errorf("%w (a service creates it when it starts consuming: is %q the group's full name, namespace included?)", err, group)
	case err != nil:
		return nil, fmt.Errorf("KAFKA_BROKERS %s (-brokers): %w", cn.brokers, cn.explain(err))
	}
	return d, nil
}

func checkPartition(p int, usage string) error {
	if p < -1 || p > math.MaxInt32 {
		return fmt.Errorf("%w: -partition %d is not a partition\n  %s", errUsage, p, usage)
	}
	return nil
}

func hintPartition(err error) error {
	if errors.Is(err, dlq.ErrAmbiguous) {
		return fmt.Errorf("%w; pick one with -partition", err)
	}
	return err
}

// parseInterspersed parses flags given before, between or after the nargs positional arguments
// (the flag package stops at the first positional one), and returns the positional arguments.
// After "--" every argument is positional. A negative nargs takes any number.
func parseInterspersed(fs *flag.FlagSet, env Env, args []string, nargs int, usage string) ([]string, error) {
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n", usage)
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if nargs >= 0 && len(pos) != nargs {
		return nil, fmt.Errorf("%w: want %d argument(s), got %d\n  %s", errUsage, nargs, len(pos), usage)
	}
	for _, a := range pos {
		if a == "" {
			return nil, fmt.Errorf("%w: empty argument\n  %s", errUsage, usage)
		}
	}
	return pos, nil
}
