package mail_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestMessageValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(m *mail.Message)
		wantErr bool
	}{
		{name: "valid", mutate: func(*mail.Message) {}},
		{name: "valid bare addresses", mutate: func(m *mail.Message) { m.From, m.To = "a@b.example", "c@d.example" }},
		{name: "valid without body or extra headers", mutate: func(m *mail.Message) { m.Text, m.Headers = "", nil }},
		{name: "valid tab in subject", mutate: func(m *mail.Message) { m.Subject = "a\tb" }},
		{name: "empty ID", mutate: func(m *mail.Message) { m.ID = "" }, wantErr: true},
		{name: "ID in angle brackets", mutate: func(m *mail.Message) { m.ID = "<a@b>" }, wantErr: true},
		{name: "ID with space", mutate: func(m *mail.Message) { m.ID = "a b@c" }, wantErr: true},
		{name: "ID without @", mutate: func(m *mail.Message) { m.ID = "abc" }, wantErr: true},
		{name: "ID with empty right side", mutate: func(m *mail.Message) { m.ID = "abc@" }, wantErr: true},
		{name: "ID with CRLF", mutate: func(m *mail.Message) { m.ID = "a@b\r\nBcc: x@y.z" }, wantErr: true},
		{name: "empty From", mutate: func(m *mail.Message) { m.From = "" }, wantErr: true},
		{name: "bad From", mutate: func(m *mail.Message) { m.From = "choreo" }, wantErr: true},
		{name: "From with CRLF", mutate: func(m *mail.Message) { m.From = "a@b.example\r\nBcc: x@y.z" }, wantErr: true},
		{name: "empty To", mutate: func(m *mail.Message) { m.To = "" }, wantErr: true},
		{name: "bad To", mutate: func(m *mail.Message) { m.To = "not an address" }, wantErr: true},
		{name: "two To addresses", mutate: func(m *mail.Message) { m.To = "a@b.example, c@d.example" }, wantErr: true},
		{name: "To with CRLF", mutate: func(m *mail.Message) { m.To = "john@example.com\r\nBcc: x@y.z" }, wantErr: true},
		{name: "empty Subject", mutate: func(m *mail.Message) { m.Subject = "" }, wantErr: true},
		{name: "Subject with CRLF", mutate: func(m *mail.Message) { m.Subject = "hi\r\nBcc: x@y.z" }, wantErr: true},
		{name: "Subject with LF", mutate: func(m *mail.Message) { m.Subject = "hi\nBcc: x@y.z" }, wantErr: true},
		{name: "Subject with CR", mutate: func(m *mail.Message) { m.Subject = "hi\rthere" }, wantErr: true},
		{name: "Subject not UTF-8", mutate: func(m *mail.Message) { m.Subject = "J\xf6hn" }, wantErr: true},
		{name: "Text not UTF-8", mutate: func(m *mail.Message) { m.Text = "J\xf6hn" }, wantErr: true},
		{name: "zero Date", mutate: func(m *mail.Message) { m.Date = time.Time{} }, wantErr: true},
		{name: "header value with CRLF", mutate: func(m *mail.Message) { m.Headers["X-Choreo-Event-Id"] = "1\r\nBcc: x@y.z" }, wantErr: true},
		{name: "header value with NUL", mutate: func(m *mail.Message) { m.Headers["X-A"] = "a\x00b" }, wantErr: true},
		{name: "header name with CRLF", mutate: func(m *mail.Message) { m.Headers["X-A\r\nBcc"] = "x@y.z" }, wantErr: true},
		{name: "header name with colon", mutate: func(m *mail.Message) { m.Headers["X-A:"] = "1" }, wantErr: true},
		{name: "header name with space", mutate: func(m *mail.Message) { m.Headers["X A"] = "1" }, wantErr: true},
		{name: "empty header name", mutate: func(m *mail.Message) { m.Headers[""] = "1" }, wantErr: true},
		{name: "header overrides Message-ID", mutate: func(m *mail.Message) { m.Headers["message-id"] = "<x@y>" }, wantErr: true},
		{name: "header overrides Content-Type", mutate: func(m *mail.Message) { m.Headers["Content-Type"] = "text/html" }, wantErr: true},
		{name: "header given twice", mutate: func(m *mail.Message) { m.Headers["X-A"], m.Headers["x-a"] = "1", "2" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := welcomeMessage()
			tt.mutate(&m)
			err := m.Validate()
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, mail.ErrInvalidMessage) {
				t.Fatalf("Validate() = %v, want ErrInvalidMessage", err)
			}
			if _, err := m.Bytes(); !errors.Is(err, mail.ErrInvalidMessage) {
				t.Errorf("Bytes() error = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

func TestMessageBytesGolden(t *testing.T) {
	t.Parallel()
	m := welcomeMessage()
	got := mustBytes(t, m)
	golden := filepath.Join("testdata", "welcome.golden.eml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatalf("update golden: %v", err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Bytes() differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	assertWelcome(t, m, got)
}

// assertWelcome parses raw back with net/mail and checks it says what m says.
func assertWelcome(t *testing.T, m mail.Message, raw []byte) {
	t.Helper()
	for i, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(line) > 0 && !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Errorf("line %d %q does not end in CRLF", i+1, line)
		}
		if len(line) > 78+2 {
			t.Errorf("line %d is %d bytes long: %q", i+1, len(line), line)
		}
	}

	parsed, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	h := parsed.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decode Subject %q: %v", h.Get("Subject"), err)
	}
	date, err := h.Date()
	if err != nil {
		t.Fatalf("Date: %v", err)
	}
	from, err := h.AddressList("From")
	if err != nil {
		t.Fatalf("From: %v", err)
	}
	to, err := h.AddressList("To")
	if err != nil {
		t.Fatalf("To: %v", err)
	}
	wantFrom, _ := netmail.ParseAddress(m.From)
	wantTo, _ := netmail.ParseAddress(m.To)

	checks := []struct{ name, got, want string }{
		{"Message-Id", h.Get("Message-Id"), "<" + m.ID + ">"},
		{"Subject", subject, m.Subject},
		{"From", from[0].String(), wantFrom.String()},
		{"To", to[0].String(), wantTo.String()},
		{"To name", to[0].Name, wantTo.Name},
		{"MIME-Version", h.Get("Mime-Version"), "1.0"},
		{"Content-Type", h.Get("Content-Type"), "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", h.Get("Content-Transfer-Encoding"), "quoted-printable"},
	}
	for name, value := range m.Headers {
		checks = append(checks, struct{ name, got, want string }{name, h.Get(name), value})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(from) != 1 || len(to) != 1 {
		t.Errorf("got %d From and %d To addresses, want 1 each", len(from), len(to))
	}
	if !date.Equal(m.Date) {
		t.Errorf("Date = %v, want %v", date, m.Date)
	}

	body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body))
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	if got, want := string(body), crlf(m.Text)+"\r\n"; got != want {
		t.Errorf("decoded body = %q, want %q", got, want)
	}
}

// crlf converts LF line endings to CRLF, as Bytes does.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestMessageBytesDeterministic(t *testing.T) {
	t.Parallel()
	m := welcomeMessage()
	for i := range 20 {
		m.Headers[string(rune('A'+i))+"-Extra"] = "v"
	}
	want := mustBytes(t, m)
	tests := []struct {
		name   string
		mutate func(m *mail.Message)
	}{
		{name: "same message", mutate: func(*mail.Message) {}},
		{name: "same instant in UTC", mutate: func(m *mail.Message) { m.Date = m.Date.UTC() }},
		{name: "same instant in another zone", mutate: func(m *mail.Message) { m.Date = m.Date.In(time.FixedZone("X", -7*3600)) }},
		{name: "sub-second difference", mutate: func(m *mail.Message) { m.Date = m.Date.Add(300 * time.Millisecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := welcomeMessage()
			for i := range 20 {
				m.Headers[string(rune('A'+i))+"-Extra"] = "v"
			}
			tt.mutate(&m)
			for range 5 { // map order varies between calls
				if got := mustBytes(t, m); !bytes.Equal(got, want) {
					t.Fatalf("Bytes() differs:\ngot:\n%s\nwant:\n%s", got, want)
				}
			}
		})
	}
}

func TestMessageBytesFolding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
	}{
		{name: "short", subject: "Willkommen"},
		{name: "long ASCII", subject: strings.TrimSpace(strings.Repeat("welcome to choreo ", 12))},
		{name: "long ASCII with double spaces", subject: strings.Repeat("welcome  to   choreo ", 10) + "end"},
		{name: "long non-ASCII", subject: strings.Repeat("Willkommen, Jöhn! Grüße ", 8)},
		{name: "long without spaces", subject: strings.Repeat("x", 120)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := welcomeMessage()
			m.Subject = tt.subject
			raw := mustBytes(t, m)
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			for line := range strings.SplitSeq(string(head), "\r\n") {
				// A line may only exceed 78 when it is one unbreakable word
				// (an encoded-word is up to 75), after the field name.
				if len(line) > 78 && len(strings.Fields(line)) > 2 {
					t.Errorf("header line is %d long: %q", len(line), line)
				}
				if line == "" || line == " " {
					t.Errorf("blank header line in %q", head)
				}
			}
			parsed, err := netmail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadMessage: %v", err)
			}
			var dec mime.WordDecoder
			got, err := dec.DecodeHeader(parsed.Header.Get("Subject"))
			if err != nil {
				t.Fatalf("decode Subject: %v", err)
			}
			if got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
		})
	}
}
