package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

// welcomeMessage is the fixture shared by the tests: non-ASCII in the
// display name, subject and body, lines starting with dots (SMTP
// dot-stuffing), a trailing space and a line long enough for a soft break.
func welcomeMessage() mail.Message {
	return mail.Message{
		ID:      "welcome-42@choreo.local",
		From:    "choreo <welcome@choreo.local>",
		To:      "Jöhn Doe <john@example.com>",
		Subject: "Willkommen, Jöhn",
		Text: "Hallo Jöhn,\n\n" +
			"willkommen bei choreo! Dein Konto ist angelegt und wartet auf dich; diese Zeile ist länger als 76 Zeichen.\n" +
			".\n" +
			"..zwei Punkte am Zeilenanfang\n" +
			"Leerzeichen am Ende \n" +
			"Grüße, dein choreo-Team",
		Date: time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600)),
		Headers: map[string]string{
			"X-Choreo-Event-Id":       "0193f2a4-7c1e-7d3b-9a51-3c8e2f6b1d90",
			"X-Choreo-Correlation-Id": "corr-7",
		},
	}
}

// mailerHarness is what the conformance suite needs from one Mailer
// implementation.
type mailerHarness struct {
	mailer mail.Mailer
	// delivered returns the raw messages the backend holds, in any order.
	delivered func(t *testing.T) [][]byte
}

// testMailer is the behaviour every Mailer must share; each implementation's
// test runs it against a fresh backend per case.
func testMailer(t *testing.T, newHarness func(t *testing.T) mailerHarness) {
	t.Run("delivers exactly Bytes", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		m := welcomeMessage()
		if err := h.mailer.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want := mustBytes(t, m)
		got := h.delivered(t)
		if len(got) != 1 {
			t.Fatalf("delivered %d messages, want 1", len(got))
		}
		if !bytes.Equal(got[0], want) {
			t.Errorf("delivered:\n%q\nwant:\n%q", got[0], want)
		}
		parsed, err := netmail.ReadMessage(bytes.NewReader(got[0]))
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		if id := parsed.Header.Get("Message-Id"); id != "<"+m.ID+">" {
			t.Errorf("Message-Id = %q, want <%s>", id, m.ID)
		}
	})

	t.Run("invalid message is permanent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		m := welcomeMessage()
		m.Subject = "hi\r\nBcc: victim@example.com"
		err := h.mailer.Send(t.Context(), m)
		if !errors.Is(err, mail.ErrInvalidMessage) {
			t.Fatalf("Send = %v, want ErrInvalidMessage", err)
		}
		if mail.IsTemporary(err) {
			t.Errorf("IsTemporary(%v) = true, want false", err)
		}
		if got := h.delivered(t); len(got) != 0 {
			t.Errorf("delivered %d messages, want 0", len(got))
		}
	})

	t.Run("prepared: abort delivers nothing, commit delivers", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		p, ok := h.mailer.(mail.Preparer)
		if !ok {
			t.Fatalf("%T is no mail.Preparer", h.mailer)
		}
		aborted, committed := welcomeMessage(), welcomeMessage()
		aborted.ID, committed.ID = "aborted@choreo.local", "committed@choreo.local"
		pa, err := p.Prepare(t.Context(), aborted)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		pc, err := p.Prepare(t.Context(), committed)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if got := h.delivered(t); len(got) != 0 {
			t.Fatalf("delivered %d messages before any Commit, want 0", len(got))
		}
		pa.Abort()
		if err := pc.Commit(t.Context()); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		got := h.delivered(t)
		if len(got) != 1 || !bytes.Equal(got[0], mustBytes(t, committed)) {
			t.Fatalf("delivered %q, want only the committed message", got)
		}
		// The mailer still works after an abort.
		if err := h.mailer.Send(t.Context(), welcomeMessage()); err != nil {
			t.Fatalf("Send after Abort: %v", err)
		}
		if got := h.delivered(t); len(got) != 2 {
			t.Errorf("delivered %d messages, want 2", len(got))
		}
	})

	t.Run("concurrent sends", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		const n = 16
		want := make(map[string]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			m := welcomeMessage()
			m.ID = fmt.Sprintf("concurrent-%d@choreo.local", i)
			want[string(mustBytes(t, m))] = true
			wg.Go(func() { errs[i] = h.mailer.Send(context.Background(), m) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := h.delivered(t)
		if len(got) != n {
			t.Fatalf("delivered %d messages, want %d", len(got), n)
		}
		for _, g := range got {
			if !want[string(g)] {
				t.Errorf("unexpected message delivered:\n%q", g)
			}
			delete(want, string(g))
		}
	})
}

func mustBytes(t *testing.T, m mail.Message) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	return b
}
