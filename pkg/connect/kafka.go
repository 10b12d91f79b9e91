package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Opts returns the franz-go options for k: a TLS dialer and a SASL mechanism, or nothing for a
// plaintext, unauthenticated cluster. It reads the files k names now, so that a missing or
// unreadable file fails start-up with an error naming its setting. Call Settings.Validate first.
func (k Kafka) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if k.TLS.Enabled {
		c, err := tlsConfig("KAFKA_TLS", k.TLS.CAFile, k.TLS.CertFile, k.TLS.KeyFile, k.TLS.ServerName)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(c))
	}
	if k.SASL.Mechanism == "" {
		return opts, nil
	}
	m, err := k.mechanism()
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.SASL(m)), nil
}

// mechanism returns the SASL mechanism of k, with the password (or token) read now.
func (k Kafka) mechanism() (sasl.Mechanism, error) {
	pw, err := readSecret(k.SASL.Password, k.SASL.PasswordFile, "KAFKA_SASL_PASSWORD_FILE")
	if err != nil {
		return nil, err
	}
	user := k.SASL.Username
	var m sasl.Mechanism
	switch k.SASL.Mechanism {
	case "PLAIN":
		m = plain.Auth{User: user, Pass: pw.Reveal()}.AsMechanism()
	case "SCRAM-SHA-256":
		m = scram.Auth{User: user, Pass: pw.Reveal()}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		m = scram.Auth{User: user, Pass: pw.Reveal()}.AsSha512Mechanism()
	case "OAUTHBEARER":
		file := k.SASL.PasswordFile
		m = oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := readSecret(pw, file, "KAFKA_SASL_PASSWORD_FILE") // tokens expire: read again
			if err != nil {
				return oauth.Auth{}, err
			}
			return oauth.Auth{Zid: user, Token: tok.Reveal()}, nil
		})
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%q: want one of %s: %w", k.SASL.Mechanism, mechanisms, ErrConfig)
	}
	return m, nil
}

// ErrAuthorization is wrapped by Explain around the broker's authorization errors.
var ErrAuthorization = errors.New("not authorized")

// Explain adds to a Kafka client error the setting that most likely causes it: an untrusted
// certificate points at KAFKA_TLS_CA_FILE, refused credentials at the SASL settings, a denied
// request at the principal's ACLs (wrapping ErrAuthorization). Other errors come back unchanged.
func (k Kafka) Explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recHeader tls.RecordHeaderError
		op        *net.OpError
	)
	who := "the client"
	if k.SASL.Username != "" {
		who = fmt.Sprintf("principal User:%s", k.SASL.Username)
	}
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the broker's TLS certificate is not signed by a CA the client trusts; KAFKA_TLS_CA_FILE (%s) must hold its CA: %w", orNone(k.TLS.CAFile), err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the broker's TLS certificate does not name the host dialled; fix KAFKA_BROKERS or set KAFKA_TLS_SERVER_NAME: %w", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the broker's TLS certificate is invalid (expired?); KAFKA_TLS_CA_FILE %s: %w", orNone(k.TLS.CAFile), err)
	case errors.As(err, &recHeader):
		return fmt.Errorf("the broker did not answer TLS: is KAFKA_TLS on for a plaintext listener? %w", err)
	case errors.As(err, &op) && op.Op == "remote error": // a TLS alert from the broker
		return fmt.Errorf("the broker refused the TLS handshake: does it need a client certificate (KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE) signed by a CA it trusts? %w", err)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("the broker refused the credentials of KAFKA_SASL_USERNAME=%s with KAFKA_SASL_MECHANISM=%s: check KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE: %w", k.SASL.Username, k.SASL.Mechanism, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("the broker does not accept KAFKA_SASL_MECHANISM=%q on this listener: %w", k.SASL.Mechanism, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("%w: %s lacks an ACL this needs (derive them from the catalog: choreo acls plan / apply / check): %w", ErrAuthorization, who, err)
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "unset: the system's CAs"
	}
	return s
}
