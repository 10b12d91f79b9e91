package peers

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
)

// keyMetadata carries the Kafka key from hop 1's handler to the publisher's partitioner.
const keyMetadata = "partition_key"

// RunWatermill runs the chain as a Watermill router over watermill-kafka (Sarama) until ctx
// ends: hop 1 is a handler from the accounts topic to the users topic, hop 2 a consumer handler
// that sends the email. Watermill acknowledges a message (and Sarama marks its offset) after
// the handler returns and, for hop 1, after the synchronous publish; a handler error nacks it
// and Watermill redelivers it. Settings are watermill-kafka's defaults but for reading new
// groups from the oldest offset and keying UserCreated by account, as the other chains do.
func RunWatermill(ctx context.Context, cfg Config, report func(error)) error {
	c := newCodec(cfg.UserSchemaID)
	logger := watermill.NopLogger{}
	marshaler := kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
		return m.Metadata.Get(keyMetadata), nil
	})
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: cfg.Brokers, Marshaler: marshaler}, logger)
	if err != nil {
		return fmt.Errorf("watermill publisher: %w", err)
	}
	defer pub.Close()
	subscriber := func(group string) (*kafka.Subscriber, error) {
		sc := kafka.DefaultSaramaSubscriberConfig()
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
		s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers: cfg.Brokers, Unmarshaler: marshaler, OverwriteSaramaConfig: sc, ConsumerGroup: cfg.Group + group,
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("watermill subscriber %s: %w", group, err)
		}
		return s, nil
	}
	s1, err := subscriber("users")
	if err != nil {
		return err
	}
	defer s1.Close()
	s2, err := subscriber("email")
	if err != nil {
		return err
	}
	defer s2.Close()
	r, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	r.AddHandler("create-user", cfg.Accounts, s1, cfg.Users, pub, func(m *message.Message) ([]*message.Message, error) {
		a, err := c.accountCreated(m.Payload)
		if err != nil {
			report(fmt.Errorf("watermill: message %s: %w", m.UUID, err))
			return nil, nil // skipped, as the bare chain does
		}
		v, err := c.userOf(a)
		if err != nil {
			return nil, err
		}
		hs := make([]kgo.RecordHeader, 0, len(m.Metadata))
		for k, v := range m.Metadata {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		in, _ := envelope.FromHeaders(hs)
		out := message.NewMessage(watermill.NewUUID(), v)
		for _, h := range in.Caused("UserCreated", "/watermill-peer", "", time.Now()).AppendHeaders(nil) {
			out.Metadata.Set(h.Key, string(h.Value))
		}
		out.Metadata.Set(keyMetadata, a.AccountID)
		return []*message.Message{out}, nil
	})
	r.AddConsumerHandler("send-welcome", cfg.Users, s2, func(m *message.Message) error {
		u, err := c.userCreated(m.Payload)
		if err != nil {
			report(fmt.Errorf("watermill: message %s: %w", m.UUID, err))
			return nil
		}
		if err := sendWelcome(cfg.SMTPAddr, u); err != nil {
			report(err)
			return err // nacked: Watermill redelivers it
		}
		return nil
	})
	return r.Run(ctx)
}
