package handlers_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestWelcomeEmailGolden renders the welcome email in each language, as the Sender sends it,
// and compares it with testdata/welcome.<lang>.golden.eml.
func TestWelcomeEmailGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ locale, golden string }{
		{"en", "welcome.en.golden.eml"},
		{"", "welcome.en.golden.eml"}, // a UserCreated written before locale existed
		{"fr", "welcome.en.golden.eml"},
		{"de", "welcome.de.golden.eml"},
		{"de-AT", "welcome.de.golden.eml"},
	} {
		subject, text := handlers.WelcomeEmail(tc.locale, "jöhn")
		m := mail.Message{
			ID: handlers.MessageID(handlers.Welcome, "u-1"), From: handlers.From, To: "john@mail.com",
			Subject: subject, Text: text, Date: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
			Headers: map[string]string{"X-Choreo-Event-Id": "e-1", "X-Choreo-Correlation-Id": "c-1"},
		}
		got, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", tc.golden)
		if *update && tc.locale != "" {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden (run with -update to create it): %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("locale %q: email differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", tc.locale, golden, got, want)
		}
	}
}

// TestMessageIDIsGolden: the Message-ID is the idempotency key a mail server or a reader uses to
// recognise a resend, and the notifications table's key; a change would make every email of an
// upgraded service new.
func TestMessageIDIsGolden(t *testing.T) {
	t.Parallel()
	if got, want := handlers.MessageID(handlers.Welcome, "ff643d8b-b51f-55e7-854e-cd748a9f47e0"), "cfb872b2-dd5f-56be-b534-0edd32caea94@choreo.local"; got != want {
		t.Errorf("MessageID(welcome, user of acc-1) = %s, want %s", got, want)
	}
}
