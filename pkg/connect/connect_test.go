package connect_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/connect"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestFromEnvAndFlags(t *testing.T) {
	t.Parallel()
	var s connect.Settings
	err := s.FromEnv(env(map[string]string{
		"KAFKA_TLS":                       "true",
		"KAFKA_TLS_CA_FILE":               "/ca.pem",
		"KAFKA_TLS_CERT_FILE":             "/c.pem",
		"KAFKA_TLS_KEY_FILE":              "/c.key",
		"KAFKA_TLS_SERVER_NAME":           "kafka.internal",
		"KAFKA_SASL_MECHANISM":            "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME":             "user-service",
		"KAFKA_SASL_PASSWORD":             "s3cret",
		"KAFKA_SASL_ALLOW_PLAINTEXT":      "1",
		"SCHEMA_REGISTRY_USERNAME":        "reg",
		"SCHEMA_REGISTRY_PASSWORD_FILE":   "/reg.pw",
		"SCHEMA_REGISTRY_CA_FILE":         "/rca.pem",
		"SCHEMA_REGISTRY_CERT_FILE":       "/rc.pem",
		"SCHEMA_REGISTRY_KEY_FILE":        "/rc.key",
		"SCHEMA_REGISTRY_ALLOW_PLAINTEXT": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := connect.Settings{
		Kafka: connect.Kafka{
			TLS:  connect.TLS{Enabled: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/c.key", ServerName: "kafka.internal"},
			SASL: connect.SASL{Mechanism: "SCRAM-SHA-512", Username: "user-service", Password: "s3cret", AllowPlaintext: true},
		},
		Registry: connect.Registry{Username: "reg", PasswordFile: "/reg.pw", CAFile: "/rca.pem", CertFile: "/rc.pem", KeyFile: "/rc.key"},
	}
	if s != want {
		t.Errorf("FromEnv:\n got %+v\nwant %+v", s, want)
	}

	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	s.RegisterFlags(fs)
	if err := fs.Parse([]string{"-kafka-tls=false", "-kafka-sasl-username", "other", "-kafka-sasl-password-file", "/pw", "-registry-username", "r2"}); err != nil {
		t.Fatal(err)
	}
	if s.Kafka.TLS.Enabled || s.Kafka.SASL.Username != "other" || s.Kafka.SASL.PasswordFile != "/pw" || s.Registry.Username != "r2" {
		t.Errorf("flags did not override the environment: %+v", s)
	}
	if fs.Lookup("kafka-sasl-password") != nil || fs.Lookup("registry-password") != nil {
		t.Error("a password flag exists; passwords would show in the process list")
	}
}

func TestFromEnvBadBool(t *testing.T) {
	t.Parallel()
	var s connect.Settings
	err := s.FromEnv(env(map[string]string{"KAFKA_TLS": "yes please", "SCHEMA_REGISTRY_ALLOW_PLAINTEXT": "maybe"}))
	if !errors.Is(err, connect.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, name := range []string{"KAFKA_TLS=", "SCHEMA_REGISTRY_ALLOW_PLAINTEXT="} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tlsOn := connect.TLS{Enabled: true}
	scram := connect.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}
	plain := connect.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}
	tests := []struct {
		name string
		s    connect.Settings
		url  string
		want []string // substrings of the error; none: valid
	}{
		{name: "plaintext", url: "http://127.0.0.1:8081"},
		{name: "tls with ca and client cert", s: connect.Settings{Kafka: connect.Kafka{TLS: connect.TLS{Enabled: true, CAFile: "a", CertFile: "b", KeyFile: "c", ServerName: "d"}}}, url: "http://r"},
		{name: "scram over tls", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: scram}}, url: "http://r"},
		{name: "scram without tls", s: connect.Settings{Kafka: connect.Kafka{SASL: scram}}, url: "http://r"},
		{name: "plain over tls", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: plain}}, url: "http://r"},
		{name: "plain without tls, opted in", s: connect.Settings{Kafka: connect.Kafka{SASL: connect.SASL{Mechanism: "PLAIN", Username: "u", PasswordFile: "f", AllowPlaintext: true}}}, url: "http://r"},
		{name: "oauth over tls", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: connect.SASL{Mechanism: "OAUTHBEARER", PasswordFile: "tok"}}}, url: "http://r"},
		{name: "registry basic auth over https", s: connect.Settings{Registry: connect.Registry{Username: "u", Password: "p", CAFile: "ca"}}, url: "https://r"},
		{name: "registry user info over https", url: "https://u:p@r"},
		{name: "registry user in url, password from file", s: connect.Settings{Registry: connect.Registry{PasswordFile: "pw"}}, url: "https://u@r"},
		{name: "registry basic auth over http, opted in", s: connect.Settings{Registry: connect.Registry{Username: "u", Password: "p", AllowPlaintext: true}}, url: "http://r"},

		{name: "plain without tls", s: connect.Settings{Kafka: connect.Kafka{SASL: plain}}, url: "http://r",
			want: []string{"KAFKA_SASL_MECHANISM=PLAIN without KAFKA_TLS", "KAFKA_SASL_ALLOW_PLAINTEXT"}},
		{name: "oauth without tls", s: connect.Settings{Kafka: connect.Kafka{SASL: connect.SASL{Mechanism: "OAUTHBEARER", Password: "t"}}}, url: "http://r",
			want: []string{"KAFKA_SASL_MECHANISM=OAUTHBEARER without KAFKA_TLS"}},
		{name: "unknown mechanism", s: connect.Settings{Kafka: connect.Kafka{SASL: connect.SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}}}, url: "http://r",
			want: []string{`KAFKA_SASL_MECHANISM="scram-sha-512"`, "SCRAM-SHA-512"}},
		{name: "scram without user", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: connect.SASL{Mechanism: "SCRAM-SHA-256", Password: "p"}}}, url: "http://r",
			want: []string{"needs KAFKA_SASL_USERNAME"}},
		{name: "scram without password", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: connect.SASL{Mechanism: "SCRAM-SHA-256", Username: "u"}}}, url: "http://r",
			want: []string{"needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"}},
		{name: "password twice", s: connect.Settings{Kafka: connect.Kafka{TLS: tlsOn, SASL: connect.SASL{Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p", PasswordFile: "f"}}}, url: "http://r",
			want: []string{"KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set"}},
		{name: "user without mechanism", s: connect.Settings{Kafka: connect.Kafka{SASL: connect.SASL{Username: "u"}}}, url: "http://r",
			want: []string{"KAFKA_SASL_MECHANISM is not"}},
		{name: "ca file without tls", s: connect.Settings{Kafka: connect.Kafka{TLS: connect.TLS{CAFile: "ca.pem"}}}, url: "http://r",
			want: []string{"KAFKA_TLS_CA_FILE is set but KAFKA_TLS is off"}},
		{name: "cert without key", s: connect.Settings{Kafka: connect.Kafka{TLS: connect.TLS{Enabled: true, CertFile: "c"}}}, url: "http://r",
			want: []string{"KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"}},
		{name: "registry basic auth over http", s: connect.Settings{Registry: connect.Registry{Username: "u", Password: "p"}}, url: "http://r",
			want: []string{"basic auth over http://", "SCHEMA_REGISTRY_ALLOW_PLAINTEXT"}},
		{name: "registry user info over http", url: "http://u:p@r", want: []string{"basic auth over http://"}},
		{name: "registry user twice", s: connect.Settings{Registry: connect.Registry{Username: "u"}}, url: "https://v:p@r",
			want: []string{"SCHEMA_REGISTRY_URL holds user info and SCHEMA_REGISTRY_USERNAME is set"}},
		{name: "registry ca over http", s: connect.Settings{Registry: connect.Registry{CAFile: "ca"}}, url: "http://r",
			want: []string{"SCHEMA_REGISTRY_CA_FILE is set but SCHEMA_REGISTRY_URL is not https://"}},
		{name: "registry password without user", s: connect.Settings{Registry: connect.Registry{PasswordFile: "f"}}, url: "https://r",
			want: []string{"without SCHEMA_REGISTRY_USERNAME"}},
		{name: "every problem at once", s: connect.Settings{
			Kafka:    connect.Kafka{TLS: connect.TLS{KeyFile: "k"}, SASL: connect.SASL{Mechanism: "GSSAPI"}},
			Registry: connect.Registry{CertFile: "c"},
		}, url: "https://r", want: []string{"KAFKA_TLS_KEY_FILE is set", "GSSAPI", "SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.s.Validate(tt.url)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, connect.ErrConfig) {
				t.Fatalf("Validate = %v, want an error wrapping ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":p@") {
				t.Errorf("error shows a password: %q", err)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	const pw, regPw = "hunter2-kafka", "hunter2-registry"
	s := connect.Settings{
		Kafka:    connect.Kafka{TLS: connect.TLS{Enabled: true}, SASL: connect.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: pw}},
		Registry: connect.Registry{Username: "r", Password: regPw},
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "settings", s, "password", s.Kafka.SASL.Password)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "settings", s)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s),
		"%s": fmt.Sprintf("%s", s.Kafka.SASL.Password), "json": string(js), "slog": logged.String(),
		"url": connect.RedactURL("https://u:" + regPw + "@registry:8081/x"),
	} {
		if strings.Contains(out, pw) || strings.Contains(out, regPw) {
			t.Errorf("%s shows a secret: %s", name, out)
		}
	}
	if s.Kafka.SASL.Password.Reveal() != pw {
		t.Error("Reveal does not return the secret")
	}
}

func TestKafkaOptsFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := newPKI(t, dir)
	notPEM := write(t, dir, "not.pem", "hello")
	emptyPw := write(t, dir, "empty.pw", "\n")
	tests := []struct {
		name string
		k    connect.Kafka
		want string
	}{
		{"missing ca", connect.Kafka{TLS: connect.TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}}, "KAFKA_TLS_CA_FILE"},
		{"ca not pem", connect.Kafka{TLS: connect.TLS{Enabled: true, CAFile: notPEM}}, "KAFKA_TLS_CA_FILE " + notPEM + " holds no PEM certificate"},
		{"cert and key mismatch", connect.Kafka{TLS: connect.TLS{Enabled: true, CertFile: pki.clientCert, KeyFile: pki.serverKey}}, "KAFKA_TLS_CERT_FILE"},
		{"missing password file", connect.Kafka{SASL: connect.SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: filepath.Join(dir, "nope")}}, "KAFKA_SASL_PASSWORD_FILE"},
		{"empty password file", connect.Kafka{SASL: connect.SASL{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: emptyPw}}, "KAFKA_SASL_PASSWORD_FILE " + emptyPw + " is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.k.Opts()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Opts() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	ok := connect.Kafka{
		TLS:  connect.TLS{Enabled: true, CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey},
		SASL: connect.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: write(t, dir, "pw", "pw\n")},
	}
	if opts, err := ok.Opts(); err != nil || len(opts) != 2 {
		t.Errorf("Opts() = %d options, %v; want TLS and SASL", len(opts), err)
	}
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(name, cn string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
			write(t, dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	}
	p := pki{ca: write(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.serverCert, p.serverKey = issue("server", "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("client", "client", x509.ExtKeyUsageClientAuth)
	return p
}

// serverTLS returns a server configuration that requires a client certificate of the CA.
func (p pki) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTakeUserInfo(t *testing.T) {
	t.Parallel()
	var r connect.Registry
	u, err := r.TakeUserInfo("https://reg:p%40ss@registry:8081/ctx")
	if err != nil || u != "https://registry:8081/ctx" || r.Username != "reg" || r.Password.Reveal() != "p@ss" {
		t.Fatalf("TakeUserInfo = %q, %v; registry %+v", u, err, r)
	}
	if u, err := r.TakeUserInfo("https://registry:8081"); err != nil || u != "https://registry:8081" {
		t.Errorf("without user info: %q %v", u, err)
	}
	if _, err := r.TakeUserInfo("https://other@registry:8081"); !errors.Is(err, connect.ErrConfig) || !strings.Contains(err.Error(), "SCHEMA_REGISTRY_USERNAME") {
		t.Errorf("user info with SCHEMA_REGISTRY_USERNAME set: %v", err)
	}
}
