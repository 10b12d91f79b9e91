package connect

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/twmb/franz-go/pkg/sr"
)

// RegistryClient returns a schema registry client for rawURL with r's credentials and TLS
// settings. User info in rawURL is taken out of the URL and sent as basic auth. It reads the
// files r names now, so that a missing file fails start-up with an error naming its setting.
// Call Settings.Validate first.
func (r Registry) RegistryClient(rawURL string) (*sr.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SCHEMA_REGISTRY_URL is not a URL: %w", ErrConfig)
	}
	user, pw := r.Username, r.Password
	if u.User != nil {
		user = u.User.Username()
		p, _ := u.User.Password()
		pw = Secret(p)
		u.User = nil
	}
	if user != "" {
		if pw, err = readSecret(pw, r.PasswordFile, "SCHEMA_REGISTRY_PASSWORD_FILE"); err != nil {
			return nil, err
		}
	}
	opts := []sr.ClientOpt{sr.URLs(u.String())}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, pw.Reveal()))
	}
	if u.Scheme == "https" {
		c, err := tlsConfig("SCHEMA_REGISTRY", r.CAFile, r.CertFile, r.KeyFile, "")
		if err != nil {
			return nil, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = c
		opts = append(opts, sr.HTTPClient(&http.Client{Transport: t}))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("SCHEMA_REGISTRY_URL %s: %w", u.Redacted(), err)
	}
	return cl, nil
}

// Explain adds to a schema registry error the setting that most likely causes it: refused
// credentials point at the basic auth settings, an untrusted certificate at
// SCHEMA_REGISTRY_CA_FILE. Other errors come back unchanged.
func (r Registry) Explain(err error) error {
	var (
		resp      *sr.ResponseError
		unknownCA x509.UnknownAuthorityError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("the schema registry refused the credentials (SCHEMA_REGISTRY_USERNAME %q, SCHEMA_REGISTRY_PASSWORD / SCHEMA_REGISTRY_PASSWORD_FILE, or user info in SCHEMA_REGISTRY_URL): %d %w", r.Username, resp.StatusCode, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the schema registry's TLS certificate is not signed by a CA the client trusts; SCHEMA_REGISTRY_CA_FILE (%s) must hold its CA: %w", orNone(r.CAFile), err)
	}
	return err
}
