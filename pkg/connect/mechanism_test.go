package connect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOAuthTokenReadAtEachLogin: a mounted token is rotated in place; the next login must send
// the new one, and the token must not be needed in the environment.
func TestOAuthTokenReadAtEachLogin(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("token-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := Kafka{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: "OAUTHBEARER", PasswordFile: file}}
	m, err := k.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	first := func() string {
		t.Helper()
		_, msg, err := m.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	if msg := first(); !strings.Contains(msg, "auth=Bearer token-one") {
		t.Fatalf("first login sends %q", msg)
	}
	if err := os.WriteFile(file, []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := first(); !strings.Contains(msg, "auth=Bearer token-two") {
		t.Fatalf("after rotation the login sends %q", msg)
	}
	if m.Name() != "OAUTHBEARER" {
		t.Errorf("mechanism %s", m.Name())
	}
	for mech, name := range map[string]string{"PLAIN": "PLAIN", "SCRAM-SHA-256": "SCRAM-SHA-256", "SCRAM-SHA-512": "SCRAM-SHA-512"} {
		m, err := Kafka{SASL: SASL{Mechanism: mech, Username: "u", Password: "p"}}.mechanism()
		if err != nil || m.Name() != name {
			t.Errorf("%s: %v %v", mech, m, err)
		}
	}
}
