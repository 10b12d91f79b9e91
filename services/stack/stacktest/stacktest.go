// Package stacktest runs choreo's whole stack (schema registry and every service) for end-to-end
// tests, and talks to it as its clients do: HTTP for the services' APIs, a plain franz-go
// producer for Kafka, SQL for what a service has stored.
//
// The stack runs on the cluster kafkatest.Brokers gives, under a kafkatest.Namespace of its own,
// and on the PostgreSQL server TEST_DATABASE_URL names (SQLite files when it is unset), so
// several stacks can share one broker and one database.
//
// Only tests import this package.
package stacktest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/storetest"
	"github.com/choreo-dev/choreo/services/stack"
)

// HTTPAddrs puts every service's HTTP API on a free port of 127.0.0.1.
func HTTPAddrs() map[string]string {
	addrs := map[string]string{}
	for _, n := range stack.Services() {
		addrs[n] = "127.0.0.1:0"
	}
	return addrs
}

// Config returns the configuration Start uses: state in a temporary directory of t, the
// registry and every service on free ports of 127.0.0.1, topics of 3 partitions, the cluster of
// kafkatest.Brokers (which may start one for t) under a new kafkatest.Namespace, and the
// PostgreSQL database of TEST_DATABASE_URL when it is set.
func Config(t testing.TB) stack.Config {
	t.Helper()
	return stack.Config{
		DataDir: t.TempDir(), RegistryAddr: "127.0.0.1:0", HTTPAddrs: HTTPAddrs(), Partitions: 3,
		Brokers: kafkatest.Brokers(t), Namespace: kafkatest.Namespace(t),
		DatabaseURL: os.Getenv("TEST_DATABASE_URL"), // PostgreSQL where CI provides it, else SQLite
	}
}

// Start starts a stack of Config(t) and closes it when t ends.
func Start(t testing.TB) *stack.Stack {
	t.Helper()
	return StartConfig(t, Config(t))
}

// StartConfig starts a stack of cfg and closes it when t ends; it fails t if the stack does not
// start or does not close cleanly.
func StartConfig(t testing.TB, cfg stack.Config) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return s
}

// Eventually is kafkatest.Eventually, kept here so a stack test needs one import.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	kafkatest.Eventually(t, timeout, fn)
}

// URL returns the address of path on the HTTP API of the stack's service.
func URL(s *stack.Stack, service, path string) string {
	return "http://" + s.Service(service).HTTPAddr() + path
}

// DoJSON sends body to url and returns the response's status code. A non-empty response body
// is decoded into out unless out is nil; an error is returned only when the request fails or
// that body is not JSON of out's type, whatever the status.
func DoJSON(method, url, body string, out any) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s: %w", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, nil
}

// Notification is a notification as the notification-service's API lists it.
type Notification struct {
	Kind, UserID, AccountID, To, Subject, EventType, CorrelationID, MessageID, Status string
}

// Notifications returns the notifications of an account, oldest first; a status other than
// 200 is an error.
func Notifications(s *stack.Stack, accountID string) ([]Notification, error) {
	var ns []Notification
	code, err := DoJSON("GET", URL(s, "notification-service", "/notifications?accountId="+accountID), "", &ns)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return ns, err
}

// Produce publishes records to the stack's cluster with a plain franz-go client, as any other
// producer would, and fails t unless every one is acknowledged.
func Produce(t testing.TB, s *stack.Stack, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Record encodes ev with the stack's codec (the account-service's) as a record of ev's topic,
// in an envelope of ID id that is also its correlation ID, from source /test, timed now.
func Record(t testing.TB, s *stack.Stack, id string, ev event.Event) *kgo.Record {
	t.Helper()
	rec, err := s.Service("account-service").Codec.Record(
		envelope.Envelope{ID: id, Source: "/test", Time: time.Now(), CorrelationID: id}, ev)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// AccountCreated returns the Record (event ID id) of an AccountCreated of accountID for
// username, with email <username>@mail.com, created now.
func AccountCreated(t testing.TB, s *stack.Stack, id, accountID, username string) *kgo.Record {
	t.Helper()
	return Record(t, s, id, &event.AccountCreated{AccountID: accountID, Username: username, Email: username + "@mail.com",
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
}

// Topic returns the stack's (namespaced) topic of an event type.
func Topic(t testing.TB, s *stack.Stack, eventName string) string {
	t.Helper()
	typ, err := s.Service("account-service").Codec.Types().ByName(eventName)
	if err != nil {
		t.Fatal(err)
	}
	return typ.Topic
}

// Count returns the integer query selects (a count(*)), failing t if the query fails.
func Count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	return storetest.Count(t, db, query, args...)
}
