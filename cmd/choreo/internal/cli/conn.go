package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafka"
)

// conn is where a command connects: the brokers, the schema registry, and the connection
// settings (TLS, SASL, registry credentials) with the variables and flags the services take.
type conn struct {
	brokers, registry string
	connect.Settings
	envErr error
}

// connFlags defines -brokers, -registry and the connection settings' flags on fs, each
// defaulting to its environment variable.
func connFlags(fs *flag.FlagSet, env Env) *conn {
	c := &conn{
		brokers:  orDefault(env.Getenv("KAFKA_BROKERS"), "127.0.0.1:9092"),
		registry: orDefault(env.Getenv("SCHEMA_REGISTRY_URL"), "http://127.0.0.1:8081"),
	}
	c.envErr = c.FromEnv(env.Getenv)
	fs.StringVar(&c.brokers, "brokers", c.brokers, "Kafka seed brokers, comma-separated (env KAFKA_BROKERS)")
	fs.StringVar(&c.registry, "registry", c.registry, "schema registry URL (env SCHEMA_REGISTRY_URL)")
	c.RegisterFlags(fs)
	return c
}

func (c *conn) validate() error {
	u, err := c.Registry.TakeUserInfo(c.registry)
	if err == nil {
		c.registry = u
	}
	if err := errors.Join(c.envErr, err, c.Validate(c.registry)); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

func (c *conn) brokerList() []string { return strings.Split(c.brokers, ",") }

// kafkaOpts returns the options of a CLI Kafka client: choreo's defaults, TLS and SASL, extra.
func (c *conn) kafkaOpts(extra ...kgo.Opt) ([]kgo.Opt, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	sec, err := c.Kafka.Opts()
	if err != nil {
		return nil, err
	}
	return kafka.ClientOpts(c.brokerList(), "choreo-cli", append(sec, extra...)...), nil
}

// explain names the setting behind a Kafka error (see connect.Kafka.Explain).
func (c *conn) explain(err error) error { return c.Kafka.Explain(err) }

// newCodec registers the event schemas at the registry and returns a codec for the topics of
// namespace ns ("" for none): the codec checks that each event is on its topic, which carries
// the namespace.
func newCodec(ctx context.Context, c *conn, ns string) (*codec.Codec, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	types, err := event.Load()
	if err != nil {
		return nil, err
	}
	cl, err := c.Registry.RegistryClient(c.registry)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cd, err := codec.New(ctx, cl, types.WithNamespace(ns))
	if err != nil {
		return nil, fmt.Errorf("schema registry at %s (SCHEMA_REGISTRY_URL, -registry): %w", connect.RedactURL(c.registry), c.Registry.Explain(err))
	}
	return cd, nil
}

// checkTopic asks the cluster about topic once: a consumer of a topic it may not describe (or
// that does not exist) would otherwise wait in silence, retrying.
func (c *conn) checkTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false // asking must not create it on a cluster that auto-creates
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS %s (-brokers): %w", c.brokers, c.explain(err))
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", topic, c.explain(err))
		}
	}
	return nil
}
