// Package connect turns the connection settings every choreo service and CLI command takes (TLS,
// SASL, schema registry credentials) into franz-go client options and a schema registry client.
// The settings have the same names everywhere: environment variables, with flags overriding.
//
// Secrets (passwords, tokens) are held as Secret, which prints as "[redacted]" in logs, errors,
// JSON and %v, so that a configuration dump cannot leak them.
package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ErrConfig is wrapped by every configuration error; the message names the setting.
var ErrConfig = errors.New("invalid configuration")

// Secret is a password or token. It never prints: use Reveal where the value is needed.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]" (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v as String redacts %v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret in JSON and other text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// mechanisms are the SASL mechanisms KAFKA_SASL_MECHANISM accepts, for messages.
const mechanisms = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"

// TLS is how a client protects its connections to Kafka.
type TLS struct {
	// Enabled turns TLS on (KAFKA_TLS, true/false). Default false.
	Enabled bool
	// CAFile is a PEM file of the CAs that may sign the broker's certificate
	// (KAFKA_TLS_CA_FILE). Default "": the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key, for mutual TLS
	// (KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE). Default "": no client certificate.
	CertFile, KeyFile string
	// ServerName overrides the name the broker's certificate is checked against
	// (KAFKA_TLS_SERVER_NAME). Default "": the host dialled.
	ServerName string
}

// SASL is how a client authenticates to Kafka.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (KAFKA_SASL_MECHANISM).
	// Default "": no SASL.
	Mechanism string
	// Username is the SASL user (KAFKA_SASL_USERNAME); for OAUTHBEARER an optional
	// authorization ID.
	Username string
	// Password is the user's password, or the OAUTHBEARER token (KAFKA_SASL_PASSWORD, only from
	// the environment: a flag would show it in the process list).
	Password Secret
	// PasswordFile holds the password or token instead (KAFKA_SASL_PASSWORD_FILE), e.g. a
	// mounted secret; one trailing newline is ignored. An OAUTHBEARER token file is read again
	// at every authentication, so a rotated token is picked up.
	PasswordFile string
	// AllowPlaintext permits PLAIN or OAUTHBEARER without TLS, which sends the password or
	// token readable on the wire (KAFKA_SASL_ALLOW_PLAINTEXT). Default false.
	AllowPlaintext bool
}

// Kafka is how a client connects to Kafka, beside the seed brokers.
type Kafka struct {
	TLS  TLS
	SASL SASL
}

// Registry is how a client connects to the schema registry, beside its URL. TLS is on when the
// URL is https://.
type Registry struct {
	// Username and Password are HTTP basic auth credentials (SCHEMA_REGISTRY_USERNAME,
	// SCHEMA_REGISTRY_PASSWORD). They may instead be given as user info in the URL
	// (https://user:password@host), which the client takes out of the URL. Default: none.
	Username string
	Password Secret
	// PasswordFile holds the password instead (SCHEMA_REGISTRY_PASSWORD_FILE).
	PasswordFile string
	// CAFile, CertFile and KeyFile are as in TLS, for the registry (SCHEMA_REGISTRY_CA_FILE,
	// SCHEMA_REGISTRY_CERT_FILE, SCHEMA_REGISTRY_KEY_FILE).
	CAFile, CertFile, KeyFile string
	// AllowPlaintext permits basic auth over http://, which sends the password readable on the
	// wire (SCHEMA_REGISTRY_ALLOW_PLAINTEXT). Default false.
	AllowPlaintext bool
}

// Settings are all connection settings of a client.
type Settings struct {
	Kafka    Kafka
	Registry Registry
}

// FromEnv overrides s with the variables getenv (os.Getenv) defines.
func (s *Settings) FromEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false: %w", name, v, ErrConfig))
				return
			}
			*dst = b
		}
	}
	k, r := &s.Kafka, &s.Registry
	boolean("KAFKA_TLS", &k.TLS.Enabled)
	str("KAFKA_TLS_CA_FILE", &k.TLS.CAFile)
	str("KAFKA_TLS_CERT_FILE", &k.TLS.CertFile)
	str("KAFKA_TLS_KEY_FILE", &k.TLS.KeyFile)
	str("KAFKA_TLS_SERVER_NAME", &k.TLS.ServerName)
	str("KAFKA_SASL_MECHANISM", &k.SASL.Mechanism)
	str("KAFKA_SASL_USERNAME", &k.SASL.Username)
	if v := getenv("KAFKA_SASL_PASSWORD"); v != "" {
		k.SASL.Password = Secret(v)
	}
	str("KAFKA_SASL_PASSWORD_FILE", &k.SASL.PasswordFile)
	boolean("KAFKA_SASL_ALLOW_PLAINTEXT", &k.SASL.AllowPlaintext)
	str("SCHEMA_REGISTRY_USERNAME", &r.Username)
	if v := getenv("SCHEMA_REGISTRY_PASSWORD"); v != "" {
		r.Password = Secret(v)
	}
	str("SCHEMA_REGISTRY_PASSWORD_FILE", &r.PasswordFile)
	str("SCHEMA_REGISTRY_CA_FILE", &r.CAFile)
	str("SCHEMA_REGISTRY_CERT_FILE", &r.CertFile)
	str("SCHEMA_REGISTRY_KEY_FILE", &r.KeyFile)
	boolean("SCHEMA_REGISTRY_ALLOW_PLAINTEXT", &r.AllowPlaintext)
	return errors.Join(errs...)
}

// RegisterFlags defines flags on fs that override s (so call FromEnv first). Passwords have no
// flags: a command line is visible to every user of the machine.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	s.Kafka.RegisterFlags(fs)
	s.Registry.RegisterFlags(fs)
}

// RegisterFlags defines the -kafka-* flags on fs that override k.
func (k *Kafka) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&k.TLS.Enabled, "kafka-tls", k.TLS.Enabled, "connect to Kafka with TLS (env KAFKA_TLS)")
	fs.StringVar(&k.TLS.CAFile, "kafka-tls-ca-file", k.TLS.CAFile, "PEM CA certificates the broker's certificate must chain to; empty: the system's (env KAFKA_TLS_CA_FILE)")
	fs.StringVar(&k.TLS.CertFile, "kafka-tls-cert-file", k.TLS.CertFile, "PEM client certificate for mutual TLS (env KAFKA_TLS_CERT_FILE)")
	fs.StringVar(&k.TLS.KeyFile, "kafka-tls-key-file", k.TLS.KeyFile, "PEM key of the client certificate (env KAFKA_TLS_KEY_FILE)")
	fs.StringVar(&k.TLS.ServerName, "kafka-tls-server-name", k.TLS.ServerName, "name to check the broker's certificate against; empty: the host dialled (env KAFKA_TLS_SERVER_NAME)")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", k.SASL.Mechanism, "SASL mechanism: "+mechanisms+"; empty: no SASL (env KAFKA_SASL_MECHANISM)")
	fs.StringVar(&k.SASL.Username, "kafka-sasl-username", k.SASL.Username, "SASL user (env KAFKA_SASL_USERNAME; the password only from env KAFKA_SASL_PASSWORD or the file)")
	fs.StringVar(&k.SASL.PasswordFile, "kafka-sasl-password-file", k.SASL.PasswordFile, "file holding the SASL password or OAUTHBEARER token (env KAFKA_SASL_PASSWORD_FILE)")
	fs.BoolVar(&k.SASL.AllowPlaintext, "kafka-sasl-allow-plaintext", k.SASL.AllowPlaintext, "allow SASL PLAIN or OAUTHBEARER without TLS (env KAFKA_SASL_ALLOW_PLAINTEXT)")
}

// RegisterFlags defines the -registry-* flags on fs that override r.
func (r *Registry) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.Username, "registry-username", r.Username, "schema registry basic auth user (env SCHEMA_REGISTRY_USERNAME; the password only from env SCHEMA_REGISTRY_PASSWORD or the file)")
	fs.StringVar(&r.PasswordFile, "registry-password-file", r.PasswordFile, "file holding the schema registry password (env SCHEMA_REGISTRY_PASSWORD_FILE)")
	fs.StringVar(&r.CAFile, "registry-ca-file", r.CAFile, "PEM CA certificates of an https schema registry (env SCHEMA_REGISTRY_CA_FILE)")
	fs.StringVar(&r.CertFile, "registry-cert-file", r.CertFile, "PEM client certificate for the schema registry (env SCHEMA_REGISTRY_CERT_FILE)")
	fs.StringVar(&r.KeyFile, "registry-key-file", r.KeyFile, "PEM key of that certificate (env SCHEMA_REGISTRY_KEY_FILE)")
	fs.BoolVar(&r.AllowPlaintext, "registry-allow-plaintext", r.AllowPlaintext, "allow basic auth over http:// (env SCHEMA_REGISTRY_ALLOW_PLAINTEXT)")
}

// Validate reports every invalid or insecure combination, each naming its setting. registryURL
// is the schema registry's URL (SCHEMA_REGISTRY_URL); it is not echoed, as it may hold a password.
// Files are only read when clients are made, so that a missing file is reported at start-up.
func (s Settings) Validate(registryURL string) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format+": %w", append(a, ErrConfig)...)) }
	t, sa := s.Kafka.TLS, s.Kafka.SASL
	if !t.Enabled {
		for _, f := range []struct{ name, v string }{
			{"KAFKA_TLS_CA_FILE", t.CAFile}, {"KAFKA_TLS_CERT_FILE", t.CertFile},
			{"KAFKA_TLS_KEY_FILE", t.KeyFile}, {"KAFKA_TLS_SERVER_NAME", t.ServerName},
		} {
			if f.v != "" {
				bad("%s is set but KAFKA_TLS is off; set KAFKA_TLS=true", f.name)
			}
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together; set both or neither")
	}
	switch sa.Mechanism {
	case "":
		if sa.Username != "" || sa.Password != "" || sa.PasswordFile != "" {
			bad("KAFKA_SASL_USERNAME or a password is set but KAFKA_SASL_MECHANISM is not; set it to one of %s", mechanisms)
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if sa.Username == "" {
			bad("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_USERNAME", sa.Mechanism)
		}
		fallthrough
	case "OAUTHBEARER":
		switch {
		case sa.Password == "" && sa.PasswordFile == "":
			bad("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE", sa.Mechanism)
		case sa.Password != "" && sa.PasswordFile != "":
			bad("KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set; set one")
		}
		if (sa.Mechanism == "PLAIN" || sa.Mechanism == "OAUTHBEARER") && !t.Enabled && !sa.AllowPlaintext {
			bad("KAFKA_SASL_MECHANISM=%s without KAFKA_TLS sends the password or token in clear text; turn on KAFKA_TLS, or set KAFKA_SASL_ALLOW_PLAINTEXT=true if you mean it", sa.Mechanism)
		}
	default:
		bad("KAFKA_SASL_MECHANISM=%q: want one of %s", sa.Mechanism, mechanisms)
	}

	r := s.Registry
	u, err := url.Parse(registryURL)
	if err != nil {
		bad("SCHEMA_REGISTRY_URL is not a URL")
		return errors.Join(errs...)
	}
	if u.User != nil && r.Username != "" {
		bad("SCHEMA_REGISTRY_URL holds user info and SCHEMA_REGISTRY_USERNAME is set; use one")
	}
	if r.Password != "" && r.PasswordFile != "" {
		bad("SCHEMA_REGISTRY_PASSWORD and SCHEMA_REGISTRY_PASSWORD_FILE are both set; set one")
	}
	// A user in the URL's user info is a username too: the registry client takes it from there.
	if r.Username == "" && u.User == nil && (r.Password != "" || r.PasswordFile != "") {
		bad("a schema registry password is set without SCHEMA_REGISTRY_USERNAME")
	}
	if (r.CertFile == "") != (r.KeyFile == "") {
		bad("SCHEMA_REGISTRY_CERT_FILE and SCHEMA_REGISTRY_KEY_FILE go together; set both or neither")
	}
	if u.Scheme != "https" {
		for _, f := range []struct{ name, v string }{
			{"SCHEMA_REGISTRY_CA_FILE", r.CAFile}, {"SCHEMA_REGISTRY_CERT_FILE", r.CertFile}, {"SCHEMA_REGISTRY_KEY_FILE", r.KeyFile},
		} {
			if f.v != "" {
				bad("%s is set but SCHEMA_REGISTRY_URL is not https://", f.name)
			}
		}
		if (r.Username != "" || u.User != nil) && !r.AllowPlaintext {
			bad("schema registry basic auth over http:// sends the password in clear text; use https://, or set SCHEMA_REGISTRY_ALLOW_PLAINTEXT=true if you mean it")
		}
	}
	return errors.Join(errs...)
}

// TakeUserInfo moves the user info of a registry URL (https://user:password@host) into r's
// Username and Password and returns the URL without it, so that no copy of the URL carries the
// password. A URL without user info comes back unchanged.
func (r *Registry) TakeUserInfo(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL, nil // Validate reports an unparsable URL
	}
	if r.Username != "" {
		return "", fmt.Errorf("SCHEMA_REGISTRY_URL holds user info and SCHEMA_REGISTRY_USERNAME is set; use one: %w", ErrConfig)
	}
	r.Username = u.User.Username()
	if pw, ok := u.User.Password(); ok {
		r.Password = Secret(pw)
	}
	u.User = nil
	return u.String(), nil
}

// RedactURL returns raw with any password in its user info replaced, for logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// readSecret returns the secret, from the file if one is named; setting names the file's
// variable in the error.
func readSecret(inline Secret, file, setting string) (Secret, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", fmt.Errorf("%s %s is empty: %w", setting, file, ErrConfig)
	}
	return Secret(v), nil
}

// tlsConfig builds a client TLS configuration from PEM files; prefix names the settings
// (KAFKA_TLS or SCHEMA_REGISTRY) in errors.
func tlsConfig(prefix, caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s_CA_FILE: %w", prefix, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_CA_FILE %s holds no PEM certificate: %w", prefix, caFile, ErrConfig)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s_CERT_FILE %s / %s_KEY_FILE %s: %w", prefix, certFile, prefix, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
