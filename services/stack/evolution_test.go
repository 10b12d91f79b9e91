package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/schemas"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// accountCreatedV1 is AccountCreated as version 1 of its schema (schemas/history) wrote and
// read it, before locale existed: what producers and consumers not yet upgraded use.
type accountCreatedV1 struct {
	AccountID string    `avro:"accountId"`
	Username  string    `avro:"username"`
	Email     string    `avro:"email"`
	CreatedAt time.Time `avro:"createdAt"`
}

func historySchema(t *testing.T, event string, version int) (string, avro.Schema) {
	t.Helper()
	text, err := schemas.History.ReadFile(fmt.Sprintf("history/%s/v%d.avsc", event, version))
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return string(text), s
}

// TestLocaleEvolution is the locale added to AccountCreated and UserCreated in version 2 of
// their schemas: an AccountCreated written with version 1, as the records already in the topic
// are, is processed by the current services (welcome email in English, the default); a new
// registration in German gets a German welcome email; and a consumer still on version 1 reads
// the new AccountCreated.
func TestLocaleEvolution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := stacktest.Start(t)
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	typ, err := types.ByName("AccountCreated")
	if err != nil {
		t.Fatal(err)
	}
	topic := stacktest.Topic(t, s, "AccountCreated")
	cl, err := sr.NewClient(sr.URLs(s.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}

	// An old producer: version 1 of the schema, registered under choreo's subject (the
	// registry checks it against the current version: BACKWARD, which v1 passes as a reader
	// of v2 ignores locale).
	v1Text, v1 := historySchema(t, "AccountCreated", 1)
	ss, err := cl.CreateSchema(ctx, topic+"-"+typ.FullName, sr.Schema{Schema: v1Text})
	if err != nil {
		t.Fatalf("register version 1: %v", err)
	}
	oldID := "0b6a9e1c-2d3f-4a5b-8c7d-6e5f4a3b2c1d"
	body, err := avro.Marshal(v1, accountCreatedV1{AccountID: oldID, Username: "olga", Email: "olga@mail.com", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var h sr.ConfluentHeader
	value, err := h.AppendEncode(nil, ss.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Produce(t, s, &kgo.Record{Topic: topic, Key: []byte(oldID), Value: append(value, body...),
		Headers: []kgo.RecordHeader{{Key: envelope.HeaderType, Value: []byte("AccountCreated")}}})

	// A new registration in German.
	var created struct {
		AccountID string `json:"accountId"`
	}
	code, err := stacktest.DoJSON(http.MethodPost, stacktest.URL(s, "account-service", "/accounts"),
		`{"username":"dora","email":"dora@mail.com","locale":"de"}`, &created)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, err)
	}

	for accountID, subject := range map[string]string{oldID: "Welcome to choreo, olga", created.AccountID: "Willkommen bei choreo, dora"} {
		stacktest.Eventually(t, 60*time.Second, func() error {
			ns, err := stacktest.Notifications(s, accountID)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Kind == "welcome" {
					if n.Subject != subject {
						t.Fatalf("welcome email of %s: subject %q, want %q", accountID, n.Subject, subject)
					}
					return nil
				}
			}
			return fmt.Errorf("no welcome email for %s yet", accountID)
		})
	}

	// A consumer still on version 1 reads the new AccountCreated (written with version 2).
	consumer, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got *accountCreatedV1
	stacktest.Eventually(t, 60*time.Second, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var ferr error
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) != created.AccountID || got != nil {
				return
			}
			id, body, err := h.DecodeID(r.Value)
			if err != nil {
				ferr = err
				return
			}
			writer, err := cl.SchemaByID(ctx, id)
			if err != nil {
				ferr = err
				return
			}
			ws, err := avro.ParseWithCache(writer.Schema, "", &avro.SchemaCache{})
			if err != nil {
				ferr = err
				return
			}
			resolved, err := avro.NewSchemaCompatibility().Resolve(v1, ws)
			if err != nil {
				ferr = fmt.Errorf("version 1 cannot read the new schema: %w", err)
				return
			}
			var ev accountCreatedV1
			if err := avro.Unmarshal(resolved, body, &ev); err != nil {
				ferr = err
				return
			}
			got = &ev
		})
		if ferr != nil {
			t.Fatal(ferr)
		}
		if got == nil {
			return fmt.Errorf("new AccountCreated not read yet")
		}
		return nil
	})
	if got.AccountID != created.AccountID || got.Username != "dora" || got.Email != "dora@mail.com" {
		t.Errorf("version 1 consumer read %+v", got)
	}
}
