package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/avrojson"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// parseEvent parses the JSON of an event named name in Avro's JSON encoding (see package
// avrojson: defaults applied, missing, unknown and mistyped fields refused). The key field must
// not be empty either: an event without its key would be unroutable.
func parseEvent(types *event.TypeSet, name, js string) (event.Event, *event.Type, error) {
	t, err := types.ByName(name)
	if err != nil {
		var names []string
		for _, t := range types.Types() {
			names = append(names, t.Name)
		}
		return nil, nil, fmt.Errorf("%w: %w; events are %s", errUsage, err, strings.Join(names, ", "))
	}
	ev := t.New()
	if err := avrojson.Unmarshal(t.Schema, []byte(js), ev); err != nil {
		return nil, nil, fmt.Errorf("%w: %s JSON: %w", errUsage, name, err)
	}
	if t.KeyOf(ev) == "" {
		return nil, nil, fmt.Errorf("%w: %s JSON: %s (the record key) must not be empty", errUsage, name, t.Key)
	}
	return ev, t, nil
}

func runEncode(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("encode", flag.ContinueOnError)
	cn := connFlags(fs, env)
	if err := parse(fs, env, args, 2); err != nil {
		return err
	}
	c, err := newCodec(ctx, cn, "")
	if err != nil {
		return err
	}
	ev, _, err := parseEvent(c.Types(), fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	b, err := c.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}

func runPublish(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	cn := connFlags(fs, env)
	id := fs.String("id", "", "ce_id of the event (default: a new UUID); the same ID twice is one fact")
	ns := fs.String("namespace", env.Getenv("CHOREO_NAMESPACE"),
		"publish to the topics of this namespace, as the services' CHOREO_NAMESPACE (env CHOREO_NAMESPACE)")
	if err := parse(fs, env, args, 2); err != nil {
		return err
	}
	c, err := newCodec(ctx, cn, *ns)
	if err != nil {
		return err
	}
	ev, t, err := parseEvent(c.Types(), fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	if *id == "" {
		*id = envelope.NewID()
	}
	rec, err := c.Record(envelope.Envelope{
		ID: *id, Type: t.Name, Source: "/choreo-cli", Time: time.Now().UTC(), CorrelationID: *id,
	}, ev)
	if err != nil {
		return err
	}
	opts, err := cn.kafkaOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s: %w", cn.brokers, err)
	}
	defer cl.Close()
	// With OTEL_* set, the publication is the root span of a new trace that the services continue.
	tp, shutdown, err := telemetry.Provider(ctx, "choreo-cli", env.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}()
	span := telemetry.NewTracer(tp).StartSend(ctx, rec)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := cl.ProduceSync(pctx, rec)
	telemetry.EndSend(span, res[0].Record, res.FirstErr())
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("publish to %s on %s (KAFKA_BROKERS, -brokers): %w", rec.Topic, cn.brokers, cn.explain(err))
	}
	out := res[0].Record
	reply := map[string]any{
		"topic": out.Topic, "partition": out.Partition, "offset": out.Offset, "key": string(out.Key),
		"id": *id, "type": t.Name,
	}
	if sc := span.SpanContext(); sc.IsValid() {
		reply["traceId"] = sc.TraceID().String()
	}
	return json.NewEncoder(env.Stdout).Encode(reply)
}

// Line is one record as tail prints it.
type Line struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Timestamp time.Time         `json:"timestamp"`
	Headers   map[string]string `json:"headers"`
	Type      string            `json:"type,omitempty"`
	ID        string            `json:"id,omitempty"`
	Event     json.RawMessage   `json:"event,omitempty"` // Avro's JSON encoding: choreo encode takes it back

	Error string `json:"error,omitempty"`
	Value string `json:"valueBase64,omitempty"`
}

func runTail(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	cn := connFlags(fs, env)
	max := fs.Int("n", 0, "stop after this many records (0: no limit)")
	idle := fs.Duration("idle", 0, "stop when no record arrives for this long (0: follow until Ctrl-C)")
	ns := fs.String("namespace", env.Getenv("CHOREO_NAMESPACE"),
		"the namespace the topic belongs to, as the services' CHOREO_NAMESPACE (env CHOREO_NAMESPACE)")
	if err := parse(fs, env, args, 1); err != nil {
		return err
	}
	c, err := newCodec(ctx, cn, *ns)
	if err != nil {
		return err
	}
	opts, err := cn.kafkaOpts(kgo.ConsumeTopics(fs.Arg(0)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s: %w", cn.brokers, err)
	}
	defer cl.Close()
	if err := cn.checkTopic(ctx, cl, fs.Arg(0)); err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	n := 0
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if *idle > 0 {
			pctx, cancel = context.WithTimeout(ctx, *idle)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil || (pctx.Err() != nil && fetches.NumRecords() == 0) {
			return nil
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if pctx.Err() == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, cn.explain(err))
			}
		})
		if ferr != nil {
			return ferr
		}
		for _, rec := range fetches.Records() {
			if err := enc.Encode(describe(ctx, c, rec)); err != nil {
				return err
			}
			if n++; *max > 0 && n >= *max {
				return nil
			}
		}
	}
}

func describe(ctx context.Context, c *codec.Codec, rec *kgo.Record) Line {
	l := Line{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: string(rec.Key),
		Timestamp: rec.Timestamp.UTC(), Headers: map[string]string{},
	}
	for _, h := range rec.Headers {
		l.Headers[h.Key] = string(h.Value)
	}
	d, err := c.DecodeRecord(ctx, rec)
	if err != nil && bytes.HasPrefix(rec.Value, []byte{0}) {
		// A parked record sits on a dead-letter topic: decode its value as the event it was.
		if ev, t, uerr := c.Unmarshal(ctx, rec.Value); uerr == nil {
			d, err = codec.Decoded{Event: ev, Type: t}, nil
		}
	}
	if err != nil {
		l.Error = err.Error()
		l.Value = base64.StdEncoding.EncodeToString(rec.Value)
		return l
	}
	js, err := avrojson.Marshal(d.Type.Schema, d.Event)
	if err != nil {
		l.Error = err.Error()
		l.Value = base64.StdEncoding.EncodeToString(rec.Value)
		return l
	}
	l.Type, l.ID, l.Event = d.Type.Name, d.Envelope.ID, js
	return l
}
