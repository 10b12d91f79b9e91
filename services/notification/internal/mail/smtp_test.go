package mail_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"sync"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

// servers are the two kinds of SMTP server the mailer meets: one that offers PIPELINING (as
// Postfix and Mailpit do) and one that does not, and refuses commands sent ahead of a reply.
var servers = []struct {
	name string
	opts []smtptest.Option
}{
	{"pipelining", nil},
	{"no pipelining", []smtptest.Option{smtptest.WithoutPipelining()}},
}

func TestSMTPMailerConformance(t *testing.T) {
	t.Parallel()
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			testMailer(t, func(t *testing.T) mailerHarness {
				srv := smtptest.Start(t, server.opts...)
				return mailerHarness{mailer: newSMTPMailer(t, srv.Addr()), delivered: func(*testing.T) [][]byte {
					var out [][]byte
					for _, r := range srv.Messages() {
						out = append(out, r.Data)
					}
					return out
				}}
			})
		})
	}
}

// With PIPELINING the mailer sends MAIL, RCPT and DATA without waiting for each reply; without,
// it waits (the server would refuse the commands otherwise).
func TestSMTPMailerPipelinesWhereOffered(t *testing.T) {
	t.Parallel()
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, server.opts...)
			mailer := newSMTPMailer(t, srv.Addr())
			const n = 5
			for i := range n {
				if err := mailer.Send(t.Context(), messageTo(i, fmt.Sprintf("user%d@example.com", i))); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			if got := srv.Count(); got != n {
				t.Fatalf("server received %d messages, want %d", got, n)
			}
			piped := srv.Pipelined()
			if server.opts == nil && piped < n {
				t.Errorf("%d commands pipelined in %d messages, want at least one a message", piped, n)
			}
			if server.opts != nil && piped != 0 {
				t.Errorf("%d commands pipelined to a server that does not offer PIPELINING", piped)
			}
		})
	}
}

// A prepared message has reached the server up to its final dot; closing the connection then
// (Abort, or the process dying) delivers nothing, and the message can be sent again later.
func TestSMTPMailerAbortedMessageIsNotDelivered(t *testing.T) {
	t.Parallel()
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, server.opts...)
			mailer := newSMTPMailer(t, srv.Addr())
			m := welcomeMessage()
			p, err := mailer.Prepare(t.Context(), m)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !srv.SawCommand("DATA") {
				t.Fatal("Prepare did not reach DATA")
			}
			p.Abort()
			// The server must have seen the connection end before anything else is checked:
			// a second message on a new connection is answered only after that.
			if err := mailer.Send(t.Context(), messageTo(2, "other@example.com")); err != nil {
				t.Fatalf("Send after Abort: %v", err)
			}
			if got := srv.Messages(); len(got) != 1 || got[0].To != "other@example.com" {
				t.Fatalf("server received %v, want only the message sent after the abort", got)
			}
			// The aborted message is sent later, as after a restart.
			if err := mailer.Send(t.Context(), m); err != nil {
				t.Fatalf("Send of the aborted message: %v", err)
			}
			if r := srv.Repeats(); len(r) != 0 {
				t.Errorf("delivered more than once: %v", r)
			}
			ids := map[string]bool{}
			for _, r := range srv.Messages() {
				ids[r.MessageID()] = true
			}
			if len(ids) != 2 || !ids[m.ID] {
				t.Errorf("delivered %v, want the aborted message once, after its abort", ids)
			}
		})
	}
}

// Connections are kept for parallel sends, not only one: a steady number of parallel senders
// does not open a session per message.
func TestSMTPMailerKeepsConnectionsForParallelSends(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	mailer := newSMTPMailer(t, srv.Addr())
	const parallel, rounds = 8, 4
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, parallel)
		for i := range parallel {
			wg.Go(func() {
				errs[i] = mailer.Send(t.Context(), messageTo(r*parallel+i, fmt.Sprintf("user%d@example.com", i)))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Count(); got != parallel*rounds {
		t.Fatalf("server received %d messages, want %d", got, parallel*rounds)
	}
	if got := srv.Connections(); got > parallel {
		t.Errorf("%d rounds of %d parallel sends took %d connections, want at most %d", rounds, parallel, got, parallel)
	}
}

func TestSMTPMailerSend(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	m := welcomeMessage()
	if err := newSMTPMailer(t, srv.Addr()).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	r := got[0]
	if r.From != "welcome@choreo.local" || r.To != "john@example.com" {
		t.Errorf("envelope = %q -> %q, want welcome@choreo.local -> john@example.com", r.From, r.To)
	}
	if srv.SawCommand("STARTTLS") {
		t.Error("client tried STARTTLS on loopback")
	}
	if srv.SawCommand("AUTH") {
		t.Error("client authenticated without WithAuth")
	}
	assertWelcome(t, m, r.Data)
}

// messageTo is the welcome message under another Message-ID, to another recipient.
func messageTo(i int, to string) mail.Message {
	m := welcomeMessage()
	m.ID = fmt.Sprintf("welcome-%d@choreo.local", i)
	m.To = to
	return m
}

func TestSMTPMailerReusesConnection(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	host, _, _ := net.SplitHostPort(srv.Addr())
	mailer := newSMTPMailer(t, srv.Addr(), mail.WithAuth(smtp.PlainAuth("", "choreo", "s3cret", host)))
	const n = 5
	for i := range n {
		if err := mailer.Send(t.Context(), messageTo(i, fmt.Sprintf("user%d@example.com", i))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if got := srv.Connections(); got != 1 {
		t.Errorf("%d messages took %d connections, want 1", n, got)
	}
	got := srv.Messages()
	if len(got) != n {
		t.Fatalf("server received %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("user%d@example.com", i); m.To != want || m.MessageID() != fmt.Sprintf("welcome-%d@choreo.local", i) {
			t.Errorf("message %d to %q (%s), want to %q", i, m.To, m.MessageID(), want)
		}
		if m.Auth == "" {
			t.Errorf("message %d: the session was not authenticated", i)
		}
	}
	if srv.SawCommand("QUIT") {
		t.Error("client sent QUIT before Close")
	}
	if err := mailer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !srv.SawCommand("QUIT") {
		t.Error("Close did not QUIT")
	}
}

func TestSMTPMailerReconnectsAfterDrop(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	mailer := newSMTPMailer(t, srv.Addr())
	if err := mailer.Send(t.Context(), messageTo(1, "a@example.com")); err != nil {
		t.Fatalf("Send 1: %v", err)
	}
	srv.Drop() // the server goes away between two messages
	if err := mailer.Send(t.Context(), messageTo(2, "b@example.com")); err != nil {
		t.Fatalf("Send 2 after the server dropped the connection: %v", err)
	}
	if got := srv.Connections(); got != 2 {
		t.Errorf("%d connections, want 2 (the dropped one and its replacement)", got)
	}
	if got := srv.Count(); got != 2 {
		t.Errorf("server received %d messages, want 2", got)
	}
	if r := srv.Repeats(); len(r) != 0 {
		t.Errorf("messages delivered more than once: %v", r)
	}
}

func TestSMTPMailerReplyKeepsConnection(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{"451 4.3.0 greylisted", "550 5.1.1 no such user"} {
		t.Run(reply[:3], func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.WithRecipientReply("bad@example.com", reply))
			mailer := newSMTPMailer(t, srv.Addr())
			var r *textproto.Error
			if err := mailer.Send(t.Context(), messageTo(1, "bad@example.com")); !errors.As(err, &r) || r.Msg != reply[4:] {
				t.Fatalf("Send to the rejected recipient = %v, want the reply %q", err, reply)
			}
			if err := mailer.Send(t.Context(), messageTo(2, "good@example.com")); err != nil {
				t.Fatalf("Send after a rejected message: %v", err)
			}
			got := srv.Messages()
			if len(got) != 1 || got[0].To != "good@example.com" {
				t.Errorf("server received %v, want only the message to good@example.com", got)
			}
			if n := srv.Connections(); n != 1 {
				t.Errorf("%d connections, want 1: a rejected message must not cost the session", n)
			}
		})
	}
}

func TestSMTPMailerIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	mailer := newSMTPMailer(t, srv.Addr(), mail.WithIdleTimeout(50*time.Millisecond))
	if err := mailer.Send(t.Context(), messageTo(1, "a@example.com")); err != nil {
		t.Fatalf("Send 1: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !srv.SawCommand("QUIT") {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not closed with QUIT within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := mailer.Send(t.Context(), messageTo(2, "b@example.com")); err != nil {
		t.Fatalf("Send after the idle timeout: %v", err)
	}
	if got, n := srv.Count(), srv.Connections(); got != 2 || n != 2 {
		t.Errorf("%d messages over %d connections, want 2 over 2", got, n)
	}
}

func TestSMTPMailerAuth(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	host, _, _ := net.SplitHostPort(srv.Addr())
	mailer := newSMTPMailer(t, srv.Addr(),
		mail.WithAuth(smtp.PlainAuth("", "choreo", "s3cret", host)),
		mail.WithHelo("notification.choreo.local"))
	if err := mailer.Send(t.Context(), welcomeMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	want := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00choreo\x00s3cret"))
	if got[0].Auth != want {
		t.Errorf("auth = %q, want %q", got[0].Auth, want)
	}
	if got[0].Helo != "notification.choreo.local" {
		t.Errorf("EHLO %q, want the WithHelo name notification.choreo.local", got[0].Helo)
	}
}

func TestSMTPMailerReplies(t *testing.T) {
	t.Parallel()
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			testReplies(t, server.opts)
		})
	}
}

func testReplies(t *testing.T, serverOpts []smtptest.Option) {
	tests := []struct {
		stage, reply  string
		wantCode      int
		wantTemporary bool
	}{
		{stage: "GREETING", reply: "421 4.3.2 shutting down", wantCode: 421, wantTemporary: true},
		{stage: "GREETING", reply: "554 5.3.2 no service", wantCode: 554},
		{stage: "MAIL", reply: "451 4.3.0 try again later", wantCode: 451, wantTemporary: true},
		{stage: "MAIL", reply: "553 5.1.8 sender rejected", wantCode: 553},
		{stage: "RCPT", reply: "451 4.3.0 greylisted", wantCode: 451, wantTemporary: true},
		{stage: "RCPT", reply: "550 5.1.1 no such user", wantCode: 550},
		{stage: "DATA", reply: "452 4.3.1 insufficient storage", wantCode: 452, wantTemporary: true},
		{stage: "DATA", reply: "554 5.5.1 no valid recipients", wantCode: 554},
		{stage: ".", reply: "452 4.3.1 insufficient storage", wantCode: 452, wantTemporary: true},
		{stage: ".", reply: "552 5.3.4 message too big", wantCode: 552},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.stage, tt.wantCode), func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, append([]smtptest.Option{smtptest.WithReply(tt.stage, tt.reply)}, serverOpts...)...)
			mailer := newSMTPMailer(t, srv.Addr())
			err := mailer.Send(t.Context(), welcomeMessage())
			var reply *textproto.Error
			if !errors.As(err, &reply) || reply.Code != tt.wantCode {
				t.Fatalf("Send = %v, want SMTP reply %d", err, tt.wantCode)
			}
			if got := mail.IsTemporary(err); got != tt.wantTemporary {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tt.wantTemporary)
			}
			if errors.Is(err, mail.ErrInvalidMessage) {
				t.Errorf("server reply %v reported as ErrInvalidMessage", err)
			}
			if got := srv.Messages(); len(got) != 0 {
				t.Errorf("server accepted %d messages, want 0", len(got))
			}
			if tt.stage == "GREETING" {
				return
			}
			// The session is in step after the refusal: the next message gets the same answer.
			if err := mailer.Send(t.Context(), messageTo(2, "next@example.com")); !errors.As(err, &reply) || reply.Code != tt.wantCode {
				t.Errorf("second Send = %v, want SMTP reply %d again", err, tt.wantCode)
			}
		})
	}
}

func TestSMTPMailerCutShort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []mail.SMTPOption
		ctx     func(t *testing.T) context.Context
		wantErr error
	}{
		{
			name:    "mailer timeout",
			opts:    []mail.SMTPOption{mail.WithTimeout(200 * time.Millisecond)},
			ctx:     func(t *testing.T) context.Context { return t.Context() },
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "context deadline",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "context cancelled mid-conversation",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(200*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			wantErr: context.Canceled,
		},
		{
			name: "context cancelled before Send",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Silent())
			mailer := newSMTPMailer(t, srv.Addr(), tt.opts...) // default timeout is 10s
			ctx := tt.ctx(t)
			start := time.Now()
			err := mailer.Send(ctx, welcomeMessage())
			// A silent server never lets Send finish on its own, so it ends by a timeout: the
			// one under test (200ms) or, if that were ignored, the default. Reaching the default
			// is the failure; the margin between them absorbs any load.
			if elapsed := time.Since(start); elapsed >= defaultSMTPTimeout {
				t.Errorf("Send took %v against a silent server: the default timeout (%v) ended it, not the one under test", elapsed, defaultSMTPTimeout)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Send = %v, want %v", err, tt.wantErr)
			}
			if !mail.IsTemporary(err) {
				t.Errorf("IsTemporary(%v) = false, want true", err)
			}
		})
	}
}

func TestSMTPMailerConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here any more
	err = newSMTPMailer(t, addr).Send(t.Context(), welcomeMessage())
	if err == nil || !mail.IsTemporary(err) {
		t.Errorf("Send = %v, want a temporary error", err)
	}
}

func TestNewSMTPMailer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		addr    string
		opts    []mail.SMTPOption
		wantErr bool
	}{
		{name: "ip and port", addr: "127.0.0.1:1025"},
		{name: "name and port", addr: "mailpit:1025"},
		{name: "ipv6", addr: "[::1]:25"},
		{name: "all options", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{
			mail.WithTimeout(time.Second),
			mail.WithAuth(smtp.PlainAuth("", "u", "p", "127.0.0.1")),
			mail.WithHelo("choreo.local"),
		}},
		{name: "no port", addr: "127.0.0.1", wantErr: true},
		{name: "empty port", addr: "127.0.0.1:", wantErr: true},
		{name: "empty host", addr: ":1025", wantErr: true},
		{name: "empty", addr: "", wantErr: true},
		{name: "zero idle timeout", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{mail.WithIdleTimeout(0)}, wantErr: true},
		{name: "zero timeout", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{mail.WithTimeout(0)}, wantErr: true},
		{name: "negative timeout", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{mail.WithTimeout(-time.Second)}, wantErr: true},
		{name: "empty helo", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{mail.WithHelo("")}, wantErr: true},
		{name: "helo with CRLF", addr: "127.0.0.1:1025", opts: []mail.SMTPOption{mail.WithHelo("a\r\nMAIL FROM:<x@y>")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mail.NewSMTPMailer(tt.addr, tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewSMTPMailer(%q) error = %v, wantErr %v", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestIsTemporary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "invalid message", err: fmt.Errorf("send: %w", mail.ErrInvalidMessage), want: false},
		{name: "smtp 421", err: fmt.Errorf("MAIL: %w", &textproto.Error{Code: 421, Msg: "busy"}), want: true},
		{name: "smtp 451", err: &textproto.Error{Code: 451, Msg: "later"}, want: true},
		{name: "smtp 550", err: &textproto.Error{Code: 550, Msg: "no"}, want: false},
		{name: "smtp 554", err: &textproto.Error{Code: 554, Msg: "no"}, want: false},
		{name: "smtp 550 despite cancelled context", err: fmt.Errorf("%w: %w", context.Canceled, &textproto.Error{Code: 550}), want: false},
		{name: "network", err: fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}), want: true},
		{name: "deadline", err: fmt.Errorf("x: %w", context.DeadlineExceeded), want: true},
		{name: "cancelled", err: context.Canceled, want: true},
		{name: "connection closed", err: fmt.Errorf("greeting: %w", io.EOF), want: true},
		{name: "unknown", err: errors.New("boom"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mail.IsTemporary(tt.err); got != tt.want {
				t.Errorf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// defaultSMTPTimeout is SMTPMailer's documented default timeout.
const defaultSMTPTimeout = 10 * time.Second

func newSMTPMailer(t *testing.T, addr string, opts ...mail.SMTPOption) *mail.SMTPMailer {
	t.Helper()
	m, err := mail.NewSMTPMailer(addr, opts...)
	if err != nil {
		t.Fatalf("NewSMTPMailer(%q): %v", addr, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}
