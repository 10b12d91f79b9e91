package stack_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/acl"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/dlq"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/registry"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/schemas"
	"github.com/choreo-dev/choreo/services/stack"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

// secured is a secured cluster for a test: the admin's settings and a namespace whose topics,
// users and ACLs choreo acls apply has provisioned.
type secured struct {
	brokers []string
	admin   connect.Kafka
	cl      *kgo.Client // logged in as the admin
	adm     *kadm.Client
	ns      string
	plan    acl.Plan
	pws     map[string]string // user -> password
}

// securedCluster connects to the secured broker CHOREO_SECURE_ENV describes: a file of
// `export NAME=value` lines with the admin's KAFKA_BROKERS, KAFKA_TLS* and KAFKA_SASL_*
// settings, as deployments/kafka/kafka-secure.sh writes it (admin.env). It skips t without one.
func securedCluster(t *testing.T) *secured {
	t.Helper()
	path := os.Getenv("CHOREO_SECURE_ENV")
	if path == "" {
		t.Skip("no secured broker: set CHOREO_SECURE_ENV to the admin.env of deployments/kafka/kafka-secure.sh (make test-secure does)")
	}
	vars := readEnvFile(t, path)
	var set connect.Settings
	if err := set.FromEnv(func(k string) string { return vars[k] }); err != nil {
		t.Fatal(err)
	}
	s := &secured{brokers: strings.Split(vars["KAFKA_BROKERS"], ","), admin: set.Kafka, ns: kafkatest.Namespace(t)}
	opts, err := s.admin.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kafka.ClientOpts(s.brokers, "secure-test-admin", append(opts, kgo.MetadataMinAge(50*time.Millisecond))...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s.cl, s.adm = cl, kadm.NewClient(cl)
	return s
}

// provision does what `choreo acls apply` does for s's namespace: topics, users, ACLs.
func (s *secured) provision(t *testing.T) {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	if s.plan, err = acl.Derive(cat, acl.Namespace(s.ns)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var topics []kafka.Topic
	for _, name := range s.plan.Topics() {
		topics = append(topics, kafka.Topic{Name: name, Partitions: 3, ReplicationFactor: 1})
	}
	if _, err := kafka.EnsureTopics(ctx, s.adm, topics...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	s.pws = map[string]string{}
	for _, u := range s.plan.Users() {
		s.pws[u] = "pw-" + u + "-" + s.ns
	}
	if err := acl.UpsertUsers(ctx, s.adm, s.pws); err != nil {
		t.Fatal(err)
	}
	if err := acl.Apply(ctx, s.adm, s.plan); err != nil {
		t.Fatal(err)
	}
}

// login returns the Kafka settings of user with password on s.
func (s *secured) login(user, password string) connect.Kafka {
	k := s.admin
	k.SASL.Username, k.SASL.Password, k.SASL.PasswordFile = user, connect.Secret(password), ""
	return k
}

// stackConfig returns a stack on s with every service logged in as its own principal.
func (s *secured) stackConfig(t *testing.T) stack.Config {
	conns := map[string]connect.Kafka{}
	for _, name := range stack.Services() {
		u := s.ns + "." + name
		conns[name] = s.login(u, s.pws[u])
	}
	return stack.Config{
		DataDir: t.TempDir(), RegistryAddr: "127.0.0.1:0", HTTPAddrs: stacktest.HTTPAddrs(), Partitions: 3,
		Brokers: s.brokers, Namespace: s.ns, KafkaConns: conns,
		DatabaseURL: os.Getenv("TEST_DATABASE_URL"),
	}
}

// TestSecuredCluster runs the stack on the secured broker with one principal per service, whose
// ACLs are exactly those the catalog implies.
func TestSecuredCluster(t *testing.T) {
	sc := securedCluster(t)
	sc.provision(t)
	ctx := t.Context()

	drift, err := acl.Check(ctx, sc.adm, sc.plan)
	if err != nil || !drift.Empty() {
		t.Fatalf("check after apply: %+v %v", drift, err)
	}

	// The user-service's log, to see how it reports a denied write.
	var logs syncBuffer
	cfg := sc.stackConfig(t)
	cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	s := stacktest.StartConfig(t, cfg)

	t.Run("registration and deletion chains", func(t *testing.T) {
		var created struct{ AccountID string }
		code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"secure-jane","email":"jane@mail.com"}`, &created)
		if err != nil || code != http.StatusCreated {
			t.Fatalf("POST /accounts: %d %v", code, err)
		}
		stacktest.Eventually(t, 30*time.Second, func() error {
			ns, err := stacktest.Notifications(s, created.AccountID)
			if err == nil && (len(ns) != 1 || ns[0].Kind != "welcome" || ns[0].Status != "sent") {
				err = fmt.Errorf("notifications %+v, want one welcome sent", ns)
			}
			return err
		})
		if code, err := stacktest.DoJSON("DELETE", stacktest.URL(s, "account-service", "/accounts/"+created.AccountID), "", nil); err != nil || code != 200 {
			t.Fatalf("DELETE: %d %v", code, err)
		}
		stacktest.Eventually(t, 30*time.Second, func() error {
			ns, err := stacktest.Notifications(s, created.AccountID)
			if err == nil && (len(ns) != 2 || ns[1].Kind != "farewell") {
				err = fmt.Errorf("notifications %+v, want welcome and farewell", ns)
			}
			return err
		})
	})

	t.Run("saga", func(t *testing.T) {
		register := func(email string) string {
			var c struct{ AccountID string }
			if code, err := stacktest.DoJSON("POST", stacktest.URL(s, "account-service", "/accounts"), `{"username":"secure-alice","email":"`+email+`"}`, &c); code != 201 {
				t.Fatalf("POST: %d %v", code, err)
			}
			return c.AccountID
		}
		first := register("alice@mail.com")
		stacktest.Eventually(t, 30*time.Second, func() error {
			if ns, err := stacktest.Notifications(s, first); err != nil || len(ns) != 1 {
				return fmt.Errorf("welcome of the first alice: %v %v", ns, err)
			}
			return nil
		})
		second := register("alice2@mail.com")
		stacktest.Eventually(t, 30*time.Second, func() error {
			if a := getAccount(t, s, second); a.Status != "rejected" {
				return fmt.Errorf("second account is %s", a.Status)
			}
			return nil
		})
	})

	t.Run("write outside the catalog is denied and kept", func(t *testing.T) {
		users := s.Service("user-service")
		accounts := sc.ns + ".accounts"
		dead := deadletter.Topic(sc.ns + ".user-service")
		before := endOffsets(t, sc.adm, accounts, dead)

		// The user-service's own code cannot emit AccountCreated (Emit checks the declared
		// events); a bug or a compromised service could still put it in its outbox.
		rec, err := users.Codec.Record(envelope.Envelope{ID: envelope.NewID(), Source: "/user-service", Time: time.Now()},
			&event.AccountCreated{AccountID: "intruder", Username: "intruder", Email: "i@mail.com", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Topic != accounts {
			t.Fatalf("record topic %s, want %s", rec.Topic, accounts)
		}
		if err := outbox.Add(ctx, users.DB, rec); err != nil {
			t.Fatal(err)
		}
		users.Relay.Notify()
		stacktest.Eventually(t, 60*time.Second, func() error {
			if f := users.Relay.Failures(); f.Denied == 0 {
				return fmt.Errorf("relay failures %+v, want a denied publish", f)
			}
			return nil
		})
		if !strings.Contains(logs.String(), "authorization error") || !strings.Contains(logs.String(), "TOPIC_AUTHORIZATION_FAILED") {
			t.Errorf("the log does not report the authorization error:\n%s", logs.String())
		}
		if n := stacktest.Count(t, users.DB, `SELECT count(*) FROM outbox WHERE topic = $1`, accounts); n != 1 {
			t.Errorf("outbox holds %d records for %s, want the denied one kept", n, accounts)
		}
		metrics := get(t, stacktest.URL(s, "user-service", "/metrics"))
		if !strings.Contains(metrics, `choreo_outbox_publish_failures_total{reason="denied",service="user-service"}`) ||
			strings.Contains(metrics, `reason="denied",service="user-service"} 0`) {
			t.Errorf("/metrics does not count the denied publish:\n%s", metrics)
		}
		after := endOffsets(t, sc.adm, accounts, dead)
		if after[accounts] != before[accounts] || after[dead] != before[dead] {
			t.Errorf("end offsets moved: before %v, after %v (nothing may reach %s, nothing be parked)", before, after, accounts)
		}
		// The record stays until someone acts; here the operator removes it, so the stack
		// shuts down without waiting for it.
		if _, err := users.DB.ExecContext(ctx, `DELETE FROM outbox WHERE topic = $1`, accounts); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("replay as the dlq principal", func(t *testing.T) {
		group := sc.ns + ".user-service"
		dead := deadletter.Topic(group)
		before := endOffsets(t, sc.adm, dead)[dead]
		garbage := &kgo.Record{Topic: sc.ns + ".accounts", Key: []byte("garbage"), Value: []byte("not an event")}
		if err := sc.cl.ProduceSync(ctx, garbage).FirstErr(); err != nil {
			t.Fatal(err)
		}
		stacktest.Eventually(t, 30*time.Second, func() error {
			if n := endOffsets(t, sc.adm, dead)[dead]; n != before+1 {
				return fmt.Errorf("%s holds %d records, want %d", dead, n, before+1)
			}
			return nil
		})
		replayer := sc.ns + ".user-service-dlq"
		opts, err := sc.login(replayer, sc.pws[replayer]).Opts()
		if err != nil {
			t.Fatal(err)
		}
		d, err := dlq.Open(ctx, group, kafka.ClientOpts(sc.brokers, "secure-test-replay", opts...))
		if err != nil {
			t.Fatalf("open the dead-letter topic as %s: %v", replayer, err)
		}
		defer d.Close()
		var replayed []dlq.Result
		if _, err := d.ReplayAll(ctx, false, func(r dlq.Result) error { replayed = append(replayed, r); return nil }); err != nil {
			t.Fatalf("replay as %s: %v", replayer, err)
		}
		if len(replayed) != 1 || replayed[0].ToTopic != sc.ns+".accounts" {
			t.Fatalf("replayed %+v, want the garbage record back on accounts", replayed)
		}
		// Still garbage: parked again, and nothing else happened.
		stacktest.Eventually(t, 30*time.Second, func() error {
			if n := endOffsets(t, sc.adm, dead)[dead]; n != before+2 {
				return fmt.Errorf("%s holds %d records, want %d", dead, n, before+2)
			}
			return nil
		})
	})

	t.Run("check reports drift", func(t *testing.T) {
		extra := kadm.NewACLs().Allow("User:" + sc.ns + ".user-service").AllowHosts("*").Topics(sc.ns + ".accounts").
			Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
		if _, err := sc.adm.CreateACLs(ctx, extra); err != nil {
			t.Fatal(err)
		}
		missing := kadm.NewACLs().Allow("User:" + sc.ns + ".notification-service").AllowHosts("*").Groups(sc.ns + ".notification-service").
			Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
		if _, err := sc.adm.DeleteACLs(ctx, missing); err != nil {
			t.Fatal(err)
		}
		d, err := acl.Check(ctx, sc.adm, sc.plan)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Extra) != 1 || d.Extra[0].Name != sc.ns+".accounts" || d.Extra[0].Principal != "User:"+sc.ns+".user-service" {
			t.Errorf("extra = %v, want user-service WRITE accounts", d.Extra)
		}
		if len(d.Missing) != 1 || d.Missing[0].Name != sc.ns+".notification-service" || d.Missing[0].Operation != kadm.OpRead {
			t.Errorf("missing = %v, want notification-service READ on its group", d.Missing)
		}
		// Put things back as apply leaves them.
		if _, err := sc.adm.DeleteACLs(ctx, extra); err != nil {
			t.Fatal(err)
		}
		if err := acl.Apply(ctx, sc.adm, sc.plan); err != nil {
			t.Fatal(err)
		}
		if d, err := acl.Check(ctx, sc.adm, sc.plan); err != nil || !d.Empty() {
			t.Errorf("after apply again: %+v %v", d, err)
		}
	})
}

// TestSecuredStartupErrors: a wrong password and a principal without ACLs stop a service at
// start-up, within START_TIMEOUT, with an error naming what to fix and no secret.
func TestSecuredStartupErrors(t *testing.T) {
	sc := securedCluster(t)
	sc.provision(t)
	user := sc.ns + "." + usersvc.Name
	// A user with credentials and no ACLs at all.
	bare := sc.ns + ".nobody"
	if err := acl.UpsertUsers(t.Context(), sc.adm, map[string]string{bare: "bare-password"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		k      connect.Kafka
		want   []string
		wantIs error
		setup  func(t *testing.T)
	}{
		{"wrong password", sc.login(user, "not-the-password"), []string{"KAFKA_SASL_USERNAME=" + user, "KAFKA_SASL_PASSWORD", "SASL_AUTHENTICATION_FAILED"}, kerr.SaslAuthenticationFailed, nil},
		{"unknown user", sc.login(sc.ns+".stranger", "x-password"), []string{"KAFKA_SASL_PASSWORD"}, kerr.SaslAuthenticationFailed, nil},
		{"principal without ACLs", sc.login(bare, "bare-password"), []string{"User:" + bare, "choreo acls"}, connect.ErrAuthorization, nil},
		{"principal without its group ACL", sc.login(user, sc.pws[user]), []string{"consumer group " + user, "User:" + user, "GROUP_AUTHORIZATION_FAILED"}, connect.ErrAuthorization,
			func(t *testing.T) {
				if _, err := sc.adm.DeleteACLs(t.Context(), kadm.NewACLs().Allow("User:"+user).AllowHosts("*").Groups(user).
					Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			cfg := service.DefaultConfig("127.0.0.1:0")
			cfg.Brokers, cfg.Namespace, cfg.DataDir, cfg.Partitions = sc.brokers, sc.ns, t.TempDir(), 3
			cfg.Conn.Kafka = tt.k
			cfg.StartTimeout = 20 * time.Second
			reg, err := registry.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			cfg.RegistryURL = reg.URL()
			start := time.Now()
			svc, err := usersvc.New(t.Context(), cfg, nil)
			if err == nil {
				svc.Close()
				t.Fatal("the service started")
			}
			t.Logf("start-up error: %v", err)
			if took := time.Since(start); took > cfg.StartTimeout+5*time.Second {
				t.Errorf("start-up failed after %s; START_TIMEOUT is %s", took, cfg.StartTimeout)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), "bare-password") || strings.Contains(err.Error(), sc.pws[user]) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func endOffsets(t *testing.T, adm *kadm.Client, topics ...string) map[string]int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(t.Context(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Topic] += o.Offset
	})
	return out
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readEnvFile reads `export NAME=value` (or NAME=value) lines; # starts a comment line.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("CHOREO_SECURE_ENV: %v", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			t.Fatalf("CHOREO_SECURE_ENV %s: line %q is not NAME=value", path, line)
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// syncBuffer is a strings.Builder safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecuredMutualTLS logs in with a client certificate instead of a password (the broker
// maps its CN to the principal), and without one is refused with the setting to fix named.
func TestSecuredMutualTLS(t *testing.T) {
	path := os.Getenv("CHOREO_SECURE_MTLS_ENV")
	if path == "" {
		t.Skip("no mutual-TLS listener: set CHOREO_SECURE_MTLS_ENV to the admin-mtls.env of deployments/kafka/kafka-secure.sh (make test-secure does)")
	}
	vars := readEnvFile(t, path)
	var set connect.Settings
	if err := set.FromEnv(func(k string) string { return vars[k] }); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate("http://127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	ping := func(k connect.Kafka) error {
		opts, err := k.Opts()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kafka.ClientOpts(strings.Split(vars["KAFKA_BROKERS"], ","), "mtls-test", opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		// Describing ACLs needs the cluster's DESCRIBE: only a super user has it here.
		_, err = kadm.NewClient(cl).DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
			Operations().ResourcePatternType(kadm.ACLPatternAny))
		return k.Explain(err)
	}
	if err := ping(set.Kafka); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	noCert := set.Kafka
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	if err := ping(noCert); err == nil || !strings.Contains(err.Error(), "KAFKA_TLS_CERT_FILE") {
		t.Errorf("without a client certificate: %v, want an error naming KAFKA_TLS_CERT_FILE", err)
	}
}
