package connect_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/connect"
)

// TestKafkaAgainstSecuredKfake connects through TLS with a client certificate and SCRAM to
// the embedded broker, and checks that an unknown CA and a missing client certificate fail
// naming the setting to fix. (kfake closes the connection on a wrong password without saying
// why; the secured real broker's suite checks that case.)
func TestKafkaAgainstSecuredKfake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	other := newPKI(t, t.TempDir())
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "admin", "right"),
		kfake.TLS(p.serverTLS(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := connect.Kafka{
		TLS:  connect.TLS{Enabled: true, CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey},
		SASL: connect.SASL{Mechanism: "SCRAM-SHA-512", Username: "admin", PasswordFile: write(t, dir, "pw", "right\n")},
	}
	ping := func(k connect.Kafka) error {
		opts, err := k.Opts()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(c.ListenAddrs()...))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		return k.Explain(cl.Ping(ctx))
	}
	if err := ping(good); err != nil {
		t.Fatalf("good settings: %v", err)
	}

	wrongPw := good
	wrongPw.SASL.PasswordFile, wrongPw.SASL.Password = "", "wrong"
	unknownCA := good
	unknownCA.TLS.CAFile = other.ca
	noClientCert := good
	noClientCert.TLS.CertFile, noClientCert.TLS.KeyFile = "", ""
	for name, tt := range map[string]struct {
		k    connect.Kafka
		want string
	}{
		"unknown CA":            {unknownCA, "KAFKA_TLS_CA_FILE (" + other.ca + ")"},
		"no client certificate": {noClientCert, "KAFKA_TLS_CERT_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			err := ping(tt.k)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ping = %v, want an error naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "right") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestRegistryClient talks to an https registry that wants a client certificate and basic
// auth, with the credentials given separately and as user info in the URL.
func TestRegistryClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, pw, ok := r.BasicAuth(); !ok || u != "reg" || pw != "open-sesame" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte(`["accounts-value"]`))
	}))
	srv.TLS = p.serverTLS(t)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA case makes the server log a handshake error
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "https://", "https://reg:open-sesame@", 1)
	withTLS := connect.Registry{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey}
	separate := withTLS
	separate.Username, separate.PasswordFile = "reg", write(t, dir, "reg.pw", "open-sesame\n")
	wrong := separate
	wrong.PasswordFile, wrong.Password = "", "nope"
	noCA := separate
	noCA.CAFile = ""

	for _, tt := range []struct {
		name string
		r    connect.Registry
		url  string
		want string // "" for success
	}{
		{"user info in the URL", withTLS, url, ""},
		{"separate settings", separate, srv.URL, ""},
		{"wrong password", wrong, srv.URL, "SCHEMA_REGISTRY_PASSWORD"},
		{"unknown CA", noCA, srv.URL, "SCHEMA_REGISTRY_CA_FILE (unset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := (connect.Settings{Registry: tt.r}).Validate(tt.url); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			cl, err := tt.r.RegistryClient(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			subjects, err := cl.Subjects(ctx)
			err = tt.r.Explain(err)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Subjects: %v", err)
			case tt.want == "" && (len(subjects) != 1 || subjects[0] != "accounts-value"):
				t.Fatalf("Subjects = %v", subjects)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Subjects error = %v, want one containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "open-sesame") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	_, err := connect.Registry{Username: "reg", PasswordFile: dir + "/missing"}.RegistryClient(srv.URL)
	if err == nil || !strings.Contains(err.Error(), "SCHEMA_REGISTRY_PASSWORD_FILE") {
		t.Errorf("missing password file: %v", err)
	}
	_, err = connect.Registry{CAFile: dir + "/missing.pem"}.RegistryClient(srv.URL)
	if err == nil || !strings.Contains(err.Error(), "SCHEMA_REGISTRY_CA_FILE") {
		t.Errorf("missing CA file: %v", err)
	}
	if errors.Is(err, connect.ErrAuthorization) {
		t.Error("a file error is not an authorization error")
	}
}
