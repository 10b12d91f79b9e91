package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/schemas"
)

const traceUsage = "choreo trace <event-or-correlation-id> [-namespace ns] [-format text|json|mermaid] [-brokers host:port,...] [-registry url]"

// traceJSON is a trace as `trace -format json` prints it.
type traceJSON struct {
	*trace.Trace
	// Matches says whether the operation followed a catalog chain to its end without deviations.
	Matches    bool              `json:"matches"`
	Chains     []traceChain      `json:"chains"`
	Deviations []trace.Deviation `json:"deviations"`
}

// traceChain is a catalog chain the operation followed, to its end or as far as it got.
type traceChain struct {
	Name     string   `json:"name"`
	Complete bool     `json:"complete"`
	Events   []string `json:"events"` // ce_ids of the chain's events, in chain order
	// Next is the step after the observed events: the effect of a complete chain, the missing
	// step of an incomplete one.
	Next string `json:"next,omitempty"`
}

func runTrace(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	cn := connFlags(fs, env)
	ns := fs.String("namespace", env.Getenv("CHOREO_NAMESPACE"),
		"prefix of the topics and consumer groups the services were given (env CHOREO_NAMESPACE)")
	format := fs.String("format", "text", "output: text (a tree and the verdict), json, or mermaid (a flowchart)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up reading the topics after this long")
	pos, err := parseInterspersed(fs, env, args, 1, traceUsage)
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
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		return err
	}
	topics := trace.Topics(cat, *ns)

	// Without the registry the trace is still worth having: the headers tell the chain.
	c, err := newCodec(ctx, cn, *ns)
	if err != nil {
		fmt.Fprintf(env.Stderr, "choreo trace: events are shown undecoded: %v\n", err)
		c = nil
	}
	opts, err := cn.kafkaOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
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
	t, err := trace.FindByID(tctx, cl, c, topics, pos[0])
	switch {
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

	cmp := t.Compare(cat)
	switch *format {
	case "mermaid":
		return t.WriteMermaid(env.Stdout, cmp)
	case "json":
		out := traceJSON{Trace: t, Deviations: cmp.Deviations, Chains: []traceChain{}}
		out.Matches = len(cmp.Complete()) > 0 && len(cmp.Deviations) == 0
		if out.Deviations == nil {
			out.Deviations = []trace.Deviation{}
		}
		for _, m := range cmp.Matches {
			ch := traceChain{Name: m.Chain.Name, Complete: m.Complete, Events: []string{}}
			for _, n := range m.Path {
				ch.Events = append(ch.Events, n.ID)
			}
			if st, ok := m.Next(); ok {
				ch.Next = st.Service + " emits " + st.Emits
				if st.Effect != "" {
					ch.Next = st.Service + " effect: " + st.Effect
				}
			}
			out.Chains = append(out.Chains, ch)
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return t.WriteText(env.Stdout, cmp)
}
