package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/schemas"
)

const traceUsage = "choreo trace <event-or-correlation-id> | -recent N  [-around time] [-lookback 24h] [-effects service=url,...] [-namespace ns] [-format text|json|mermaid] [-brokers host:port,...] [-registry url]"

// traceJSON is a trace as `trace -format json` prints it.
type traceJSON struct {
	*trace.Trace
	trace.Verdict
}

func runTrace(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	cn := connFlags(fs, env)
	ns := fs.String("namespace", env.Getenv("CHOREO_NAMESPACE"),
		"prefix of the topics and consumer groups the services were given (env CHOREO_NAMESPACE)")
	format := fs.String("format", "text", "output: text (a tree and the verdict), json, or mermaid (a flowchart)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up reading the topics after this long")
	around := fs.String("around", "", "when the operation happened, roughly (RFC 3339, e.g. the API answer's time): the search for the ID starts there instead of at the topics' end")
	lookback := fs.Duration("lookback", 24*time.Hour, "search for the ID this far back from the topics' end (or either side of -around); 0 searches the topics whole")
	recent := fs.Int("recent", 0, "list the last N operations with their status and duration instead of tracing one")
	effects := fs.String("effects", env.Getenv("CHOREO_EFFECTS"),
		"services to ask for the operation's effects (GET /effects), as service=url,... e.g. notification-service=http://127.0.0.1:8083 (env CHOREO_EFFECTS)")
	nargs := 1
	if slices.ContainsFunc(args, func(a string) bool {
		f, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		return strings.HasPrefix(a, "-") && f == "recent"
	}) {
		nargs = 0
	}
	pos, err := parseInterspersed(fs, env, args, nargs, traceUsage)
	if err != nil {
		return err
	}
	switch *format {
	case "text", "json", "mermaid":
	default:
		return fmt.Errorf("%w: -format %q: want text, json or mermaid\n  %s", errUsage, *format, traceUsage)
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: -timeout %s: want a positive duration\n  %s", errUsage, *timeout, traceUsage)
	}
	if nargs == 0 && *recent <= 0 {
		return fmt.Errorf("%w: -recent %d: want a positive number\n  %s", errUsage, *recent, traceUsage)
	}
	opts := []trace.Option{trace.WithLookback(*lookback)}
	if *around != "" {
		at, err := time.Parse(time.RFC3339Nano, *around)
		if err != nil {
			return fmt.Errorf("%w: -around %q: want an RFC 3339 time such as 2026-11-26T06:00:00Z\n  %s", errUsage, *around, traceUsage)
		}
		opts = append(opts, trace.WithAround(at))
	}
	effectURLs, err := parseEffects(*effects)
	if err != nil {
		return err
	}
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return err
	}
	topics := trace.Topics(cat, *ns)
	opts = append(opts, trace.WithComplete(func(t *trace.Trace) bool { return t.Settled(t.Compare(cat)) }))

	// Without the registry the trace is still worth having: the headers tell the chain.
	c, err := newCodec(ctx, cn, *ns)
	if err != nil {
		fmt.Fprintf(env.Stderr, "choreo trace: events are shown undecoded: %v\n", err)
		c = nil
	}
	kopts, err := cn.kafkaOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s (-brokers): %w", cn.brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s (-brokers): no broker answers: %w", cn.brokers, cn.explain(err))
	}

	tctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if nargs == 0 {
		trs, err := trace.Recent(tctx, cl, c, topics, *recent, opts...)
		if err != nil {
			return err
		}
		for _, t := range trs {
			attachEffects(tctx, env, t, effectURLs)
		}
		return writeRecent(env, cat, trs, *format)
	}
	t, err := trace.FindByID(tctx, cl, c, topics, pos[0], opts...)
	switch {
	case errors.Is(err, trace.ErrNotInWindow):
		return fmt.Errorf("%w\n(an older operation? give -around <time> or a longer -lookback; is the namespace right? -namespace %q)", err, *ns)
	case errors.Is(err, trace.ErrNotFound):
		return fmt.Errorf("%w\n(is the namespace right? -namespace %q, env CHOREO_NAMESPACE)", err, *ns)
	case err != nil && ctx.Err() == nil && tctx.Err() != nil:
		return fmt.Errorf("%w (-timeout %s)", err, *timeout)
	case err != nil:
		return err
	}
	if len(t.MissingTopics) > 0 {
		fmt.Fprintf(env.Stderr, "choreo trace: not read, the topics do not exist: %s\n", strings.Join(t.MissingTopics, ", "))
	}
	attachEffects(tctx, env, t, effectURLs)

	cmp := t.Compare(cat)
	switch *format {
	case "mermaid":
		return t.WriteMermaid(env.Stdout, cmp)
	case "json":
		out := traceJSON{Trace: t, Verdict: t.Verdict(cmp)}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return t.WriteText(env.Stdout, cmp)
}

// parseEffects parses -effects: service=url pairs, comma-separated.
func parseEffects(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		svc, u, ok := strings.Cut(kv, "=")
		if !ok || svc == "" || !strings.HasPrefix(u, "http") {
			return nil, fmt.Errorf("%w: -effects %q: want service=http://host:port, comma-separated\n  %s", errUsage, kv, traceUsage)
		}
		out[svc] = strings.TrimRight(u, "/")
	}
	return out, nil
}

// attachEffects asks each service for the operation's effects. A service that does not answer
// leaves its effects unobserved, with a warning: the trace from Kafka is still worth having.
func attachEffects(ctx context.Context, env Env, t *trace.Trace, urls map[string]string) {
	errs := t.AskEffects(ctx, &http.Client{Timeout: 10 * time.Second}, urls)
	for _, svc := range slices.Sorted(maps.Keys(errs)) {
		fmt.Fprintf(env.Stderr, "choreo trace: %s's effects are not shown: %v\n", svc, errs[svc])
	}
}

func writeRecent(env Env, cat *catalog.Catalog, trs []*trace.Trace, format string) error {
	rows := []trace.Summary{}
	for _, t := range trs {
		rows = append(rows, t.Summary(t.Compare(cat)))
	}
	if format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tCORRELATION ID\tFIRST EVENT\tEVENTS\tDURATION\tSTATUS\tDETAIL")
	for _, r := range rows {
		detail := strings.Join(r.Chains, ", ")
		if len(r.Deviations) > 0 {
			detail = r.Deviations[0]
			if len(r.Deviations) > 1 {
				detail += fmt.Sprintf(" (+%d more)", len(r.Deviations)-1)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Start.Format("2006-01-02T15:04:05.000Z07:00"), r.CorrelationID,
			r.First, r.Events, time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Microsecond), r.Status, detail)
	}
	return tw.Flush()
}
