package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/schemas"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

func TestRegistrationAndDeletionChains(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	s := stacktest.StartConfig(t, cfg)

	var created struct{ AccountID, Status, EventID string }
	code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"johndoe","email":"johndoe@mail.com"}`, &created)
	if err != nil || code != http.StatusCreated || created.AccountID == "" {
		t.Fatalf("POST /accounts: %d %+v %v", code, created, err)
	}

	var user struct{ UserID, AccountID, Username, Email string }
	stacktest.Eventually(t, 10*time.Second, func() error {
		code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users?accountId="+created.AccountID), "", &user)
		if err == nil && code != 200 {
			err = fmt.Errorf("GET user: %d", code)
		}
		return err
	})
	if user.Username != "johndoe" || user.Email != "johndoe@mail.com" {
		t.Fatalf("user = %+v", user)
	}
	if code, _ := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users/"+user.UserID), "", nil); code != 200 {
		t.Fatalf("GET /users/%s = %d", user.UserID, code)
	}

	var ns []stacktest.Notification
	stacktest.Eventually(t, 10*time.Second, func() error {
		ns, err = stacktest.Notifications(s, created.AccountID)
		if err == nil && (len(ns) != 1 || ns[0].Status != "sent") {
			err = fmt.Errorf("notifications %+v, want one sent", ns)
		}
		return err
	})
	n := ns[0]
	if n.Kind != "welcome" || n.To != "johndoe@mail.com" || n.UserID != user.UserID || n.EventType != "UserCreated" {
		t.Fatalf("welcome notification = %+v", n)
	}
	if n.CorrelationID != created.EventID {
		t.Errorf("welcome email correlation %q, want the AccountCreated ID %q", n.CorrelationID, created.EventID)
	}
	eml, err := os.ReadFile(filepath.Join(cfg.DataDir, "mail", n.MessageID+".eml"))
	if err != nil {
		t.Fatalf("welcome .eml: %v", err)
	}
	for _, want := range []string{"Message-ID: <" + n.MessageID + ">", "To: <johndoe@mail.com>", "Welcome to choreo, johndoe"} {
		if !bytes.Contains(eml, []byte(want)) {
			t.Errorf(".eml lacks %q:\n%s", want, eml)
		}
	}

	// The deletion chain: a new event and new handlers; the creation path is untouched.
	code, err = stacktest.DoJSON("DELETE", stacktest.URL(s, "account-service", "/accounts/"+created.AccountID), "", nil)
	if err != nil || code != 200 {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	stacktest.Eventually(t, 10*time.Second, func() error {
		code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users/"+user.UserID), "", nil)
		if err == nil && code != http.StatusGone {
			err = fmt.Errorf("GET deleted user: %d", code)
		}
		return err
	})
	stacktest.Eventually(t, 10*time.Second, func() error {
		ns, err = stacktest.Notifications(s, created.AccountID)
		if err == nil && (len(ns) != 2 || ns[1].Kind != "farewell") {
			err = fmt.Errorf("notifications %+v", ns)
		}
		return err
	})
	// A second DELETE is answered the same and causes nothing more.
	if code, _ := stacktest.DoJSON("DELETE", stacktest.URL(s, "account-service", "/accounts/"+created.AccountID), "", nil); code != 200 {
		t.Fatalf("second DELETE = %d", code)
	}
	stacktest.Settled(t, s, 30*time.Second)
	if ns, _ := stacktest.Notifications(s, created.AccountID); len(ns) != 2 {
		t.Fatalf("after a second DELETE: %d notifications, want 2", len(ns))
	}
}

func TestDuplicateEventHasOneEffect(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	smtp := stacktest.WithSMTP(t, &cfg)
	s := stacktest.StartConfig(t, cfg)
	id := envelope.NewID()
	rec := stacktest.AccountCreated(t, s, id, "acc-dup", "dupe")
	again := *rec
	stacktest.Produce(t, s, rec)
	stacktest.Produce(t, s, &again) // the same fact, delivered twice

	// A different event (new ce_id) for the same account: the same business fact told twice.
	stacktest.Produce(t, s, stacktest.AccountCreated(t, s, envelope.NewID(), "acc-dup", "dupe"))

	user := s.Service("user-service")
	stacktest.Eventually(t, 10*time.Second, func() error {
		if smtp.Count() == 0 {
			return errors.New("no email delivered yet")
		}
		return nil
	})
	// Every record consumed and committed, every outbox drained, no email queued: whatever the
	// three records could cause has happened.
	stacktest.Settled(t, s, 30*time.Second)
	if st := user.Runner().Stats(); st.Handled+st.Duplicates != 3 || st.Duplicates != 1 {
		t.Errorf("user-service stats %+v, want 3 records of which 1 duplicate (the redelivered ce_id)", st)
	}
	if n := stacktest.Count(t, user.DB, `SELECT count(*) FROM users WHERE account_id = 'acc-dup'`); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	if ns, _ := stacktest.Notifications(s, "acc-dup"); len(ns) != 1 || ns[0].Status != "sent" {
		t.Errorf("notifications %+v, want one sent", ns)
	}
	for _, bad := range stacktest.Deliveries(smtp, "dupe@mail.com") {
		t.Error(bad)
	}
}

func TestServiceRestartMidStreamLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	smtp := stacktest.WithSMTP(t, &cfg)
	s := stacktest.StartConfig(t, cfg)
	const n = 300
	var (
		recs []*kgo.Record
		to   []string
	)
	for i := range n {
		recs = append(recs, stacktest.AccountCreated(t, s, envelope.NewID(), fmt.Sprintf("acc-%03d", i), fmt.Sprintf("user%03d", i)))
		to = append(to, fmt.Sprintf("user%03d@mail.com", i))
	}
	stacktest.Produce(t, s, recs[:n/2]...)
	stacktest.Eventually(t, 10*time.Second, func() error {
		if st := s.Service("user-service").Runner().Stats(); st.Handled == 0 {
			return errors.New("nothing handled yet")
		}
		return nil
	})
	for _, name := range []string{"user-service", "notification-service"} {
		if err := s.StopService(name); err != nil {
			t.Fatalf("stop %s: %v", name, err)
		}
	}
	stacktest.Produce(t, s, recs[n/2:]...)
	for _, name := range []string{"user-service", "notification-service"} {
		if err := s.StartService(context.Background(), name); err != nil {
			t.Fatalf("restart %s: %v", name, err)
		}
	}
	// Sent emails, not queued ones: the SMTP server's deliveries.
	stacktest.Eventually(t, 60*time.Second, func() error {
		if got := smtp.Count(); got < n {
			return fmt.Errorf("%d of %d welcome emails delivered", got, n)
		}
		return nil
	})
	stacktest.Settled(t, s, 30*time.Second)
	for i, bad := range stacktest.Deliveries(smtp, to...) {
		if i == 10 {
			t.Errorf("... and more")
			break
		}
		t.Error(bad)
	}
	if got := stacktest.Count(t, s.Service("user-service").DB, `SELECT count(*) FROM users`); got != n {
		t.Errorf("%d users, want %d", got, n)
	}
	if got := stacktest.Count(t, s.Service("notification-service").DB, `SELECT count(*) FROM notifications WHERE status = 'sent'`); got != n {
		t.Errorf("%d notifications sent, want %d", got, n)
	}
}

func TestGarbageIsParkedAndTheNextEventProcessed(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	garbage := make([]byte, 64)
	_, _ = rand.Read(garbage)
	garbage[0] = 0x7f // not the Confluent magic byte
	stacktest.Produce(t, s, &kgo.Record{Topic: stacktest.Topic(t, s, "AccountCreated"), Key: []byte("acc-g"), Value: garbage})
	stacktest.Produce(t, s, stacktest.AccountCreated(t, s, envelope.NewID(), "acc-g", "after"))

	stacktest.Eventually(t, 10*time.Second, func() error {
		code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users?accountId=acc-g"), "", nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("user of the valid event: %d", code)
		}
		return err
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...),
		kgo.ConsumeTopics(deadletter.Topic(s.ServiceConfig("user-service").Scoped("user-service"))), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := cl.PollRecords(ctx, 10)
	if err := fs.Err0(); err != nil {
		t.Fatalf("poll dead-letter topic: %v", err)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d parked records, want 1", len(recs))
	}
	p := recs[0]
	if !bytes.Equal(p.Value, garbage) || string(p.Key) != "acc-g" {
		t.Errorf("parked record has value %x key %q, want the original", p.Value, p.Key)
	}
	hs := map[string]string{}
	for _, h := range p.Headers {
		hs[h.Key] = string(h.Value)
	}
	if hs[deadletter.HeaderTopic] != stacktest.Topic(t, s, "AccountCreated") || hs[deadletter.HeaderGroup] != s.ServiceConfig("user-service").Scoped("user-service") ||
		hs[deadletter.HeaderReason] != "decode" || !strings.Contains(hs[deadletter.HeaderError], "Confluent") {
		t.Errorf("parked record headers = %v", hs)
	}
}

// TestCatalogMatchesCode checks each running service's registered handlers and emitted events
// against schemas/catalog.yaml: the catalog documents what the code does, not what it once did.
func TestCatalogMatchesCode(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range stack.Services() {
		if err := cat.CheckService(s.Service(name).Description()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(cat.Services) != len(stack.Services()) {
		t.Errorf("catalog has %d services, the stack runs %d", len(cat.Services), len(stack.Services()))
	}
}

// TestHeaderlessRecordIsProcessed: a record with no headers at all (kcat without -H) is still an
// event: its type comes from its schema and its identity from its position in the log.
func TestHeaderlessRecordIsProcessed(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	rec := stacktest.AccountCreated(t, s, "ignored", "acc-bare", "bare")
	rec.Headers = nil
	stacktest.Produce(t, s, rec)
	stacktest.Eventually(t, 10*time.Second, func() error {
		ns, err := stacktest.Notifications(s, "acc-bare")
		if err == nil && len(ns) != 1 {
			err = fmt.Errorf("%d notifications", len(ns))
		}
		return err
	})
	var eventID string
	if err := s.Service("user-service").DB.QueryRow(`SELECT event_id FROM inbox WHERE event_type = 'AccountCreated'`).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	if want := envelope.RecordID(stacktest.Topic(t, s, "AccountCreated"), rec.Partition, rec.Offset); eventID != want {
		t.Errorf("inbox event ID %s, want the record's position ID %s", eventID, want)
	}
}

// TestStartFailsCleanly: a stack that cannot start says why and leaves nothing running.
func TestStartFailsCleanly(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = stack.Start(context.Background(), stack.Config{DataDir: t.TempDir(), KafkaPort: port, RegistryAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "embedded Kafka") {
		t.Fatalf("Start on a taken port: %v, want an error naming the embedded Kafka", err)
	}
	// A data directory holding part of a previous run's state is refused.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "registry.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = stack.Start(context.Background(), stack.Config{DataDir: dir, KafkaPort: 0, RegistryAddr: "127.0.0.1:0"})
	if !errors.Is(err, stack.ErrIncompleteState) {
		t.Fatalf("Start on a half state: %v, want ErrIncompleteState", err)
	}
}

// TestDevRestartKeepsState stops the whole embedded stack and starts it again on the same data
// directory, as `choreo dev` twice: the broker log, the registry's schema IDs, the offsets and the
// stores survive, so nothing is re-applied and new work flows.
func TestDevRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func() *stack.Stack {
		s, err := stack.Start(context.Background(), stack.Config{DataDir: dir, RegistryAddr: "127.0.0.1:0", HTTPAddrs: stacktest.HTTPAddrs(), Partitions: 3})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		return s
	}
	welcomes := func(s *stack.Stack, acc string, want int) {
		t.Helper()
		stacktest.Eventually(t, 10*time.Second, func() error {
			ns, err := stacktest.Notifications(s, acc)
			if err == nil && len(ns) != want {
				err = fmt.Errorf("%d notifications for %s, want %d", len(ns), acc, want)
			}
			for _, n := range ns {
				if err == nil && n.Status != "sent" {
					err = fmt.Errorf("notification %s is %s, want sent", n.MessageID, n.Status)
				}
			}
			return err
		})
	}
	s := start()
	var first struct{ AccountID string }
	if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"before","email":"before@mail.com"}`, &first); code != 201 {
		t.Fatalf("POST: %d %v", code, err)
	}
	welcomes(s, first.AccountID, 1)
	ids := map[string]int{}
	for _, typ := range s.Service("account-service").Codec.Types().Types() {
		ids[typ.Name] = s.Service("account-service").Codec.SchemaID(typ)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = start()
	defer s.Close()
	for _, typ := range s.Service("account-service").Codec.Types().Types() {
		if got := s.Service("account-service").Codec.SchemaID(typ); got != ids[typ.Name] {
			t.Errorf("%s has schema ID %d after the restart, %d before", typ.Name, got, ids[typ.Name])
		}
	}
	var second struct{ AccountID string }
	if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"after","email":"after@mail.com"}`, &second); code != 201 {
		t.Fatalf("POST after restart: %d %v", code, err)
	}
	welcomes(s, second.AccountID, 1)
	welcomes(s, first.AccountID, 1)
	if st := s.Service("user-service").Runner().Stats(); st.Handled != 1 || st.Duplicates != 0 {
		t.Errorf("user-service after the restart: %+v, want only the new account handled (offsets kept)", st)
	}
}
