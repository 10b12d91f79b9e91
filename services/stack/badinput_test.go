package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

// deadLetters reads a consumer group's dead-letter topic from its start and keeps every parked
// record by key.
type deadLetters struct {
	cl *kgo.Client

	mu    sync.Mutex
	byKey map[string][]*kgo.Record
}

func readDeadLetters(t *testing.T, s *stack.Stack, service, group string) *deadLetters {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...),
		kgo.ConsumeTopics(deadletter.Topic(s.ServiceConfig(service).Scoped(group))),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &deadLetters{cl: cl, byKey: make(map[string][]*kgo.Record)}
}

// wait returns the records parked under key once there is at least one, polling for up to 10s.
func (d *deadLetters) wait(t *testing.T, key string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		d.mu.Lock()
		recs := d.byKey[key]
		d.mu.Unlock()
		if len(recs) > 0 {
			return recs
		}
		fs := d.cl.PollRecords(ctx, 100)
		if ctx.Err() != nil {
			t.Fatalf("nothing parked under key %q after 10s", key)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll dead-letter topic: %v", err)
		}
		d.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) { d.byKey[string(r.Key)] = append(d.byKey[string(r.Key)], r) })
		d.mu.Unlock()
	}
}

func headerMap(hs []kgo.RecordHeader) map[string][]string {
	m := map[string][]string{}
	for _, h := range hs {
		m[h.Key] = append(m[h.Key], string(h.Value))
	}
	return m
}

// userExists reports whether the User Service has a user for accountID (an error if not).
func userExists(s *stack.Stack, accountID string) error {
	code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/users?accountId="+accountID), "", nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET user of %s: %d", accountID, code)
	}
	return err
}

// TestBadRecordsAreParkedAndTheNextEventProcessed publishes records that break the contract of
// the accounts topic in every way a producer can, each followed on its partition by a valid
// AccountCreated: each bad record is parked on the User Service's dead-letter topic with a
// reason that says what was wrong, has no effect, and the valid record after it is processed.
func TestBadRecordsAreParkedAndTheNextEventProcessed(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	accounts := stacktest.Topic(t, s, "AccountCreated")
	group := s.ServiceConfig("user-service").Scoped("user-service")
	dlq := readDeadLetters(t, s, "user-service", "user-service")
	codec := s.Service("account-service").Codec
	now := time.Now().UTC().Truncate(time.Millisecond)

	// record encodes ev with headers that tell the truth about it, on ev's own topic.
	record := func(t *testing.T, ev event.Event) *kgo.Record {
		t.Helper()
		id := envelope.NewID()
		rec, err := codec.Record(envelope.Envelope{ID: id, Source: "/test", Time: now, CorrelationID: id}, ev)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	setHeader := func(rec *kgo.Record, key, value string) {
		for i := range rec.Headers {
			if rec.Headers[i].Key == key {
				rec.Headers[i].Value = []byte(value)
			}
		}
	}

	type kcatInput struct {
		stdin []byte
		args  []string // beside broker, topic and partitioner
		value []byte   // what the record carries
	}
	randomBytes := make([]byte, 64)
	_, _ = rand.Read(randomBytes)
	randomBytes[0] = 0x7f // not the Confluent magic byte
	for i, b := range randomBytes {
		if b == '\n' { // kcat's message delimiter on stdin
			randomBytes[i] = 0xff
		}
	}

	tests := []struct {
		name string
		key  string // the bad record's key, and the next valid record's
		// Exactly one of rec and kcat is set.
		rec  func(t *testing.T, key string) *kgo.Record
		kcat *kcatInput

		wantReason  string
		wantHandler string // "" for records no handler saw
		wantError   []string
		noUserOf    string // an account that must have no user
	}{
		{
			name: "email not-an-email",
			key:  "acc-bad-email",
			rec: func(t *testing.T, key string) *kgo.Record {
				return record(t, &event.AccountCreated{AccountID: key, Username: "bademail", Email: "not-an-email", CreatedAt: now})
			},
			wantReason: "handler", wantHandler: "create-user", wantError: []string{"invalid account", "not-an-email"},
			noUserOf: "acc-bad-email",
		},
		{
			name: "empty username",
			key:  "acc-empty-username",
			rec: func(t *testing.T, key string) *kgo.Record {
				return record(t, &event.AccountCreated{AccountID: key, Username: "", Email: "empty@mail.com", CreatedAt: now})
			},
			wantReason: "handler", wantHandler: "create-user", wantError: []string{"invalid account", "empty username"},
			noUserOf: "acc-empty-username",
		},
		{
			name: "ce_id given twice with different values",
			key:  "acc-two-ids",
			rec: func(t *testing.T, key string) *kgo.Record {
				rec := record(t, &event.AccountCreated{AccountID: key, Username: "twoids", Email: "twoids@mail.com", CreatedAt: now})
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: envelope.HeaderID, Value: []byte(envelope.NewID())})
				return rec
			},
			wantReason: "headers", wantError: []string{"ce_id", "given twice"},
			noUserOf: "acc-two-ids",
		},
		{
			name: "ce_type UserCreated on an AccountCreated value",
			key:  "acc-wrong-type",
			rec: func(t *testing.T, key string) *kgo.Record {
				rec := record(t, &event.AccountCreated{AccountID: key, Username: "wrongtype", Email: "wrongtype@mail.com", CreatedAt: now})
				setHeader(rec, envelope.HeaderType, "UserCreated")
				return rec
			},
			wantReason: "contract", wantError: []string{"ce_type", "UserCreated"},
			noUserOf: "acc-wrong-type",
		},
		{
			name: "UserCreated on the accounts topic",
			key:  "acc-wrong-topic",
			rec: func(t *testing.T, key string) *kgo.Record {
				rec := record(t, &event.UserCreated{
					UserID: envelope.DeriveUUID("user", key), AccountID: key, Username: "wrongtopic", Email: "wrongtopic@mail.com", CreatedAt: now,
				})
				rec.Topic = accounts
				return rec
			},
			wantReason: "contract", wantError: []string{"wrong topic", "UserCreated"},
			noUserOf: "acc-wrong-topic",
		},
		{
			name:       "random bytes with kcat",
			key:        "acc-kcat-garbage",
			kcat:       &kcatInput{stdin: append(bytes.Clone(randomBytes), '\n'), args: []string{"-k", "acc-kcat-garbage"}, value: randomBytes},
			wantReason: "decode", wantError: []string{"Confluent"},
		},
		{
			name: "tombstone with kcat",
			key:  "acc-kcat-tombstone",
			// kcat skips empty lines: a tombstone is a key with an empty value, sent as NULL (-Z).
			kcat:       &kcatInput{stdin: []byte("acc-kcat-tombstone:\n"), args: []string{"-K:", "-Z"}},
			wantReason: "empty", wantError: []string{"empty"},
		},
	}
	parked := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The next valid record goes to the bad one's partition (same key), which must not be
			// held up by it; its username is its own, as usernames are unique.
			next := stacktest.AccountCreated(t, s, envelope.NewID(), tt.key+"-next", tt.key+"-next")
			next.Key = []byte(tt.key)

			var want *kgo.Record // what the parked record must carry, when known
			if tt.rec != nil {
				want = tt.rec(t, tt.key)
				want.Key = []byte(tt.key)
				stacktest.Produce(t, s, want, next)
			} else {
				kcat, err := exec.LookPath("kcat")
				if err != nil {
					t.Skipf("kcat is missing (%v): this case publishes with kcat", err)
				}
				args := append([]string{"-P", "-b", strings.Join(s.Brokers(), ","), "-t", accounts,
					"-X", "partitioner=murmur2_random"}, tt.kcat.args...) // murmur2: the partition franz-go picks for the key
				cmd := exec.Command(kcat, args...)
				cmd.Stdin = bytes.NewReader(tt.kcat.stdin)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", cmd, err, out)
				}
				stacktest.Produce(t, s, next)
			}
			parked++

			stacktest.Eventually(t, 10*time.Second, func() error { return userExists(s, tt.key+"-next") })

			recs := dlq.wait(t, tt.key)
			if len(recs) != 1 {
				t.Fatalf("%d records parked under key %q, want 1", len(recs), tt.key)
			}
			p := recs[0]
			hs := headerMap(p.Headers)
			one := func(k string) string {
				if len(hs[k]) != 1 {
					t.Errorf("parked record has %s %q, want one", k, hs[k])
					return ""
				}
				return hs[k][0]
			}
			if got := one(deadletter.HeaderReason); got != tt.wantReason {
				t.Errorf("%s = %q, want %q (error %q)", deadletter.HeaderReason, got, tt.wantReason, hs[deadletter.HeaderError])
			}
			if got := one(deadletter.HeaderClass); got != "permanent" {
				t.Errorf("%s = %q, want permanent", deadletter.HeaderClass, got)
			}
			if got := hs[deadletter.HeaderHandler]; tt.wantHandler == "" && len(got) != 0 || tt.wantHandler != "" && (len(got) != 1 || got[0] != tt.wantHandler) {
				t.Errorf("%s = %q, want %q", deadletter.HeaderHandler, got, tt.wantHandler)
			}
			msg := one(deadletter.HeaderError)
			for _, w := range tt.wantError {
				if !strings.Contains(msg, w) {
					t.Errorf("%s %q does not mention %q", deadletter.HeaderError, msg, w)
				}
			}
			if got := one(deadletter.HeaderTopic); got != accounts {
				t.Errorf("%s = %q, want %q", deadletter.HeaderTopic, got, accounts)
			}
			if got := one(deadletter.HeaderGroup); got != group {
				t.Errorf("%s = %q, want %q", deadletter.HeaderGroup, got, group)
			}
			if got := one(deadletter.HeaderPartition); got != strconv.Itoa(int(next.Partition)) {
				t.Errorf("parked from partition %s, the next record went to %d: the case does not prove the partition moved on", got, next.Partition)
			}
			if want != nil {
				if !bytes.Equal(p.Value, want.Value) {
					t.Errorf("parked value %x, want the original %x", p.Value, want.Value)
				}
				for _, h := range want.Headers { // the original headers, kept as they were
					if !slices.Contains(hs[h.Key], string(h.Value)) {
						t.Errorf("parked record lost header %s=%q: %v", h.Key, h.Value, hs[h.Key])
					}
				}
			} else if !bytes.Equal(p.Value, tt.kcat.value) {
				t.Errorf("parked value %x, want what kcat sent, %x", p.Value, tt.kcat.value)
			}
			if tt.noUserOf != "" {
				if err := userExists(s, tt.noUserOf); err == nil {
					t.Errorf("a user was created for the parked account %s", tt.noUserOf)
				}
				if n := stacktest.Count(t, s.Service("user-service").DB, `SELECT count(*) FROM users WHERE account_id = $1`, tt.noUserOf); n != 0 {
					t.Errorf("%d users of the parked account %s, want 0", n, tt.noUserOf)
				}
			}
		})
	}

	// Nothing but the bad records was parked, and the service is still up.
	user := s.Service("user-service")
	if user == nil {
		t.Fatal("user-service is no longer running")
	}
	if st := user.Runner().Stats(); st.Parked != int64(parked) {
		t.Errorf("user-service stats %+v: want %d parked", st, parked)
	}
	if code, err := stacktest.DoJSON("GET", stacktest.URL(s, "user-service", "/healthz"), "", nil); err != nil || code != http.StatusOK {
		t.Errorf("user-service /healthz: %d %v", code, err)
	}
}

// TestAcceptedRegistrationReachesEveryService: what the Account Service's API accepts, the
// services downstream accept too. A registration answered 201 whose AccountCreated the User
// Service then parks is an account without a user, and its owner is never told.
func TestAcceptedRegistrationReachesEveryService(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t)
	dlq := readDeadLetters(t, s, "user-service", "user-service")
	tests := []struct {
		name, username, email string
	}{
		{name: "ASCII", username: "ascii", email: "ascii@mail.com"},
		// The API counts MaxUsername (64) in characters: 40 two-byte characters are 80 bytes.
		{name: "username of 40 two-byte characters", username: strings.Repeat("é", 40), email: "accents@mail.com"},
		{name: "username of 64 one-byte characters", username: strings.Repeat("a", 64), email: "long@mail.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parkedBefore := s.Service("user-service").Runner().HandlerStats()["create-user"].Parked
			var created struct{ AccountID string }
			body := fmt.Sprintf(`{"username":%q,"email":%q}`, tt.username, tt.email)
			code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), body, &created)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("POST /accounts %s: %d %v", body, code, err)
			}
			// The user, or the record parked instead of it, whichever comes first.
			deadline := time.Now().Add(10 * time.Second)
			for userExists(s, created.AccountID) != nil {
				if st := s.Service("user-service").Runner().HandlerStats()["create-user"]; st.Parked > parkedBefore {
					recs := dlq.wait(t, created.AccountID)
					t.Fatalf("the API accepted %s (201) but the User Service parked its AccountCreated: %v",
						body, headerMap(recs[0].Headers)[deadletter.HeaderError])
				}
				if time.Now().After(deadline) {
					t.Fatalf("no user for the account of %s after 10s", body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			stacktest.Eventually(t, 10*time.Second, func() error {
				ns, err := stacktest.Notifications(s, created.AccountID)
				if err == nil && len(ns) != 1 {
					err = fmt.Errorf("%d welcome emails", len(ns))
				}
				return err
			})
		})
	}
}
