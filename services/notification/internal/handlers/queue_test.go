package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// partitions of the users topic in these tests, as many as in the consumer's BenchmarkHop.
const partitions = 3

// notifier is the Notification Service's handlers in a consumer runner of their own: a database
// (PostgreSQL in a schema of the test's own with TEST_DATABASE_URL, else SQLite), the users topic
// of kafkatest.Brokers in the test's namespace, and an in-process schema registry.
type notifier struct {
	db       *sql.DB
	runner   *consumer.Runner
	codec    *codec.Codec
	producer *kgo.Client
	topic    string
	postgres bool
}

func startNotifier(t testing.TB, opts ...consumer.Opt) *notifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := &notifier{db: notificationsDB(t), postgres: os.Getenv("TEST_DATABASE_URL") != ""}
	ns, brokers := kafkatest.Namespace(t), kafkatest.Brokers(t)
	group := ns + ".notification-service"
	n.topic = ns + ".users"
	var err error
	if n.producer, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.producer.Close)
	adm := kadm.NewClient(n.producer)
	created, err := adm.CreateTopics(ctx, partitions, 1, nil, n.topic, deadletter.Topic(group))
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	reg := srfake.New()
	t.Cleanup(reg.Close)
	srClient, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	types, err := event.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n.codec, err = codec.New(ctx, srClient, types.WithNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n.runner, err = consumer.New(consumer.Config{
		Service: "notification-service", Group: group, DB: n.db, Codec: n.codec,
		Relay:      outbox.NewRelay(n.db, nil), // parked records stay in the outbox: these tests read them there
		ClientOpts: kafka.ClientOpts(brokers, "notification-service", kgo.FetchMaxWait(200*time.Millisecond)),
	}, (&handlers.Notifier{}).Handlers(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.runner.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

func notificationsDB(t testing.TB) *sql.DB {
	t.Helper()
	ctx := context.Background()
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		db, _ := storetest.PostgresSchema(t, base, "handlers_test", store.Migrations())
		return db
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "n.db"), store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// produce publishes evs, with envelope IDs ids, to partition 0 of the users topic, in one
// request.
func (n *notifier) produce(t testing.TB, ids []string, evs ...event.Event) {
	t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		recs[i] = n.record(t, 0, ids[i], ev)
	}
	n.send(t, recs...)
}

// record returns ev as a record for partition p of the users topic.
func (n *notifier) record(t testing.TB, p int32, id string, ev event.Event) *kgo.Record {
	t.Helper()
	rec, err := n.codec.Record(envelope.Envelope{ID: id, Source: "/test", Time: time.Now(), CorrelationID: "corr-" + id}, ev)
	if err != nil {
		t.Fatal(err)
	}
	rec.Partition = p
	return rec
}

func (n *notifier) send(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitStats waits until done(stats) holds; the deadline only bounds a failure.
func (n *notifier) waitStats(t testing.TB, what string, done func(consumer.Stats) bool) {
	t.Helper()
	kafkatest.Eventually(t, 5*time.Minute, func() error {
		if st := n.runner.Stats(); !done(st) {
			return fmt.Errorf("waiting for %s: stats %+v", what, st)
		}
		return nil
	})
}

func userCreated(user, username string) *event.UserCreated {
	return &event.UserCreated{UserID: user, AccountID: "acc-" + user, Username: username, Email: user + "@mail.com",
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// TestABatchQueuesOneEmailPerUserAndKind: the handlers' emails of one batch are written together
// when it commits; a second UserCreated for a user in the same batch (same Message-ID, same
// (kind, user)) queues nothing more, the first one's email stays.
func TestABatchQueuesOneEmailPerUserAndKind(t *testing.T) {
	t.Parallel()
	n := startNotifier(t)
	n.produce(t, []string{"e-1", "e-2", "e-3", "e-4"},
		userCreated("u-1", "ann"),
		userCreated("u-2", "bob"),
		userCreated("u-1", "ann again"), // another event for the same user: no second welcome
		&event.UserDeleted{UserID: "u-1", AccountID: "acc-u-1", Email: "u-1@mail.com", Username: "ann", DeletedAt: time.Now().UTC().Truncate(time.Millisecond)})
	n.waitStats(t, "4 handled", func(s consumer.Stats) bool { return s.Handled >= 4 })
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 4}) {
		t.Errorf("stats = %+v, want 4 handled", st)
	}
	type email struct{ Kind, Subject, EventID, MessageID, Status string }
	var got []email
	for _, acc := range []string{"acc-u-1", "acc-u-2"} {
		ns, err := store.ByAccount(context.Background(), n.db, acc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ns {
			got = append(got, email{e.Kind, e.Subject, e.EventID, e.MessageID, e.Status})
		}
	}
	want := []email{
		{handlers.Welcome, "Welcome to choreo, ann", "e-1", handlers.MessageID(handlers.Welcome, "u-1"), store.StatusPending},
		{handlers.Farewell, "Goodbye from choreo, ann", "e-4", handlers.MessageID(handlers.Farewell, "u-1"), store.StatusPending},
		{handlers.Welcome, "Welcome to choreo, bob", "e-2", handlers.MessageID(handlers.Welcome, "u-2"), store.StatusPending},
	}
	// Emails queued in the same millisecond have no order of their own.
	byEvent := func(a, b email) int { return strings.Compare(a.EventID, b.EventID) }
	slices.SortFunc(got, byEvent)
	slices.SortFunc(want, byEvent)
	if !slices.Equal(got, want) {
		t.Errorf("queued emails\n%+v,\nwant\n%+v", got, want)
	}
}

// TestAnEmailPostgreSQLRefusesIsParked: PostgreSQL refuses text that is not UTF-8, which shows
// only when the batch's emails are written at commit. The other events' emails must be queued,
// and the bad event's handler retried and its record parked, not the batch retried forever.
func TestAnEmailPostgreSQLRefusesIsParked(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("TEST_DATABASE_URL unset: SQLite stores text that is not UTF-8 as it is")
	}
	n := startNotifier(t, consumer.Retry(consumer.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond}))
	n.produce(t, []string{"e-1", "e-2", "e-3"},
		userCreated("u-1", "ann"),
		userCreated("u-2", "b\xffb"),
		userCreated("u-3", "cat"))
	n.waitStats(t, "2 handled and 1 parked", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 3 })
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 2, Parked: 1, Retried: 1}) {
		t.Errorf("stats = %+v, want 2 handled, 1 retried once and parked", st)
	}
	counts, err := store.Counts(context.Background(), n.db)
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.StatusPending] != 2 {
		t.Errorf("%d emails queued, want 2 (ann's and cat's)", counts[store.StatusPending])
	}
	var parked int
	if err := n.db.QueryRow(`SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'`).Scan(&parked); err != nil {
		t.Fatal(err)
	}
	if parked != 1 {
		t.Errorf("%d records parked in the outbox, want 1", parked)
	}
}
