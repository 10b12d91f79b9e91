package consumer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
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
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

const (
	service = "svc"
	// group is the tests' consumer group, named as a test names it; the harness scopes it (and
	// every topic) in a namespace of the test's own, so tests can share a real cluster.
	group      = "g"
	partitions = 3
)

// testMigrations creates the tables the test handlers write to.
//
// calls records every handler call that committed; seq orders them.
// strict has a key whose conflicts roll back the whole transaction (SQLite's ON CONFLICT
// ROLLBACK), as a handler's own schema may choose.
var testMigrations = sqlite.Migrations{Component: "consumer_test", FS: fstest.MapFS{
	"0001_calls.sql": {Data: []byte(`
CREATE TABLE calls (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    handler    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    username   TEXT NOT NULL
);
CREATE TABLE strict (id TEXT PRIMARY KEY ON CONFLICT ROLLBACK);
`)},
	"0002_inserted.sql": {Data: []byte(insertedSQLite)},
}}

// pgTestMigrations are testMigrations for PostgreSQL, where any failed statement ends the
// transaction (as ON CONFLICT ROLLBACK does in SQLite).
var pgTestMigrations = postgres.Migrations{Component: "consumer_test", FS: fstest.MapFS{
	"0001_calls.sql": {Data: []byte(`
CREATE TABLE calls (
    seq        BIGSERIAL PRIMARY KEY,
    handler    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    username   TEXT NOT NULL
);
CREATE TABLE strict (id TEXT PRIMARY KEY);
`)},
	"0002_inserted.sql": {Data: []byte(insertedPostgres)},
}}

// harness is a Kafka cluster (kafkatest.Brokers: a real broker with KAFKA_BROKERS, else
// in-process kfake) with the catalog's topics in a namespace of the test's own, and an
// in-process schema registry with a codec on it.
type harness struct {
	ns       string
	brokers  []string
	reg      *srfake.Registry
	srClient *sr.Client
	codec    *codec.Codec
	producer *kgo.Client // a plain client, as any other producer; partitions set by hand
	adm      *kadm.Client
}

// newHarness creates the topics of the catalog and the dead-letter topics of groups (default:
// group) on the cluster of kafkatest.Brokers, all in the test's namespace.
func newHarness(t testing.TB, groups ...string) *harness {
	t.Helper()
	if len(groups) == 0 {
		groups = []string{group}
	}
	h := &harness{ns: kafkatest.Namespace(t), brokers: kafkatest.Brokers(t)}
	topics := []string{h.topic("accounts"), h.topic("users")}
	for _, g := range groups {
		topics = append(topics, deadletter.Topic(h.scoped(g)))
	}
	var err error
	h.producer, err = kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.producer.Close)
	h.adm = kadm.NewClient(h.producer)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := h.adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	// A real broker answers for new topics only once their metadata has spread.
	for {
		ends, err := h.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("topics %v created but not served: %v", topics, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if kafkatest.Kind() == "kfake" {
			return // the cluster goes with the test
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = h.adm.DeleteTopics(ctx, topics...)
	})
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
	c, err := codec.New(ctx, srClient, types.WithNamespace(h.ns))
	if err != nil {
		t.Fatal(err)
	}
	h.reg, h.srClient, h.codec = reg, srClient, c
	return h
}

// topic returns the harness's name of a topic of the catalog or a dead-letter topic named as a
// test names it ("accounts", deadletter.Topic(group)).
func (h *harness) topic(name string) string { return h.ns + "." + name }

// scoped returns the harness's name of a consumer group named as a test names it.
func (h *harness) scoped(g string) string { return h.ns + "." + g }

// produce publishes recs and returns them with their partitions and offsets set.
func (h *harness) produce(t testing.TB, recs ...*kgo.Record) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

// record returns ev as a record on partition p of its topic, with an envelope of ID id and
// correlation ID "corr-"+id.
func (h *harness) record(t testing.TB, p int32, id string, ev event.Event) *kgo.Record {
	t.Helper()
	rec, err := h.codec.Record(envelope.Envelope{ID: id, Source: "/test", Time: time.Now(), CorrelationID: "corr-" + id}, ev)
	if err != nil {
		t.Fatal(err)
	}
	rec.Partition = p
	return rec
}

func (h *harness) accountCreated(t testing.TB, p int32, id, accountID, username string) *kgo.Record {
	t.Helper()
	return h.record(t, p, id, &event.AccountCreated{
		AccountID: accountID, Username: username, Email: username + "@mail.com",
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	})
}

// readTopic returns every record of topic (named as a test names it) up to its current end
// offsets.
func (h *harness) readTopic(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	topic = h.topic(topic)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := h.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			total += o.Offset
		}
	})
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	got := map[int32]int64{}
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(recs), total, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] && r.Offset >= got[r.Partition] {
				recs = append(recs, r)
				got[r.Partition] = r.Offset + 1
			}
		})
	}
	return recs
}

// committed returns the group's committed offsets by topic (named as a test names it) and
// partition.
func (h *harness) committed(t testing.TB, g string) map[string]map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := h.adm.FetchOffsets(ctx, h.scoped(g))
	if err == nil {
		err = os.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", g, err)
	}
	out := map[string]map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		topic := strings.TrimPrefix(o.Topic, h.ns+".")
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][o.Partition] = o.At
	})
	return out
}

// node is one service instance: a database, its relay and a runner, all running.
type node struct {
	db     *sql.DB
	relay  *outbox.Relay
	runner *consumer.Runner
	stop   func() // stops the runner, then the relay; idempotent
}

// openDB opens a database of the test's own: a schema of its own on the PostgreSQL server of
// TEST_DATABASE_URL when that is set, else a SQLite file.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		db, _ = storetest.PostgresSchema(t, base, "consumer_test", pgTestMigrations)
		return db
	}
	db, err = sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), testMigrations)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// start runs a relay and a runner of group g on db until stop or the end of the test.
func (h *harness) start(t testing.TB, db *sql.DB, g string, handlers []consumer.Handler, opts ...consumer.Opt) *node {
	t.Helper()
	prod, err := kgo.NewClient(kafka.ClientOpts(h.brokers, "relay")...)
	if err != nil {
		t.Fatal(err)
	}
	relay := outbox.NewRelay(db, prod, outbox.PollInterval(50*time.Millisecond))
	r, err := consumer.New(consumer.Config{
		Service: service, Group: h.scoped(g), DB: db, Codec: h.codec, Relay: relay,
		ClientOpts: kafka.ClientOpts(h.brokers, service, kgo.FetchMaxWait(200*time.Millisecond)),
	}, handlers, opts...)
	if err != nil {
		prod.Close()
		t.Fatalf("consumer.New: %v", err)
	}
	relayCtx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	runCtx, stopRunner := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(runCtx) }()

	var stopped atomic.Bool
	stop := func() {
		if !stopped.CompareAndSwap(false, true) {
			return
		}
		stopRunner()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return 20s after its context was cancelled")
		}
		stopRelay()
		<-relayDone
		prod.Close()
	}
	t.Cleanup(stop)
	return &node{db: db, relay: relay, runner: r, stop: stop}
}

// flush waits until the node's outbox has been published.
func (n *node) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.relay.Flush(ctx); err != nil {
		t.Fatalf("flush outbox: %v", err)
	}
}

// waitStats waits until done(stats) holds. The deadline is generous (a real broker's
// rebalance, two loaded cores under -race); it only bounds a failure.
func (n *node) waitStats(t testing.TB, what string, done func(consumer.Stats) bool) consumer.Stats {
	t.Helper()
	var st consumer.Stats
	kafkatest.Eventually(t, 60*time.Second, func() error {
		if st = n.runner.Stats(); !done(st) {
			return fmt.Errorf("waiting for %s: stats %+v", what, st)
		}
		return nil
	})
	return st
}

// recordCall is what every test handler does first: a row in calls, in the handler's transaction.
func recordCall(ctx context.Context, tx *consumer.UnitOfWork, handler, accountID, username string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO calls (handler, event_id, account_id, username) VALUES ($1, $2, $3, $4)`,
		handler, tx.Cause().ID, accountID, username)
	return err
}

type call struct {
	Handler, EventID, AccountID, Username string
}

// calls returns the committed handler calls in the order they were made.
func calls(t testing.TB, db *sql.DB) []call {
	t.Helper()
	rows, err := db.Query(`SELECT handler, event_id, account_id, username FROM calls ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cs []call
	for rows.Next() {
		var c call
		if err := rows.Scan(&c.Handler, &c.EventID, &c.AccountID, &c.Username); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cs
}

func headers(rec *kgo.Record) map[string]string {
	hs := make(map[string]string, len(rec.Headers))
	for _, h := range rec.Headers {
		hs[h.Key] = string(h.Value)
	}
	return hs
}

// onAccountCreated is a handler that records its calls, then does what also says.
func onAccountCreated(name string, also func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error, opts ...consumer.HandlerOpt) consumer.Handler {
	return consumer.On(name, func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
		if err := recordCall(ctx, tx, name, ev.AccountID, ev.Username); err != nil {
			return err
		}
		if also != nil {
			return also(ctx, tx, ev)
		}
		return nil
	}, opts...)
}

func onUserCreated(name string) consumer.Handler {
	return consumer.On(name, func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.UserCreated) error {
		return recordCall(ctx, tx, name, ev.AccountID, ev.Username)
	})
}

var errBoom = errors.New("boom")
