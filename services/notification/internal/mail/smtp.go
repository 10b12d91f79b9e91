package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// SMTPMailer sends through an SMTP server (SMTP_ADDR, e.g. a Mailpit at
// 127.0.0.1:1025). Each Send uses its own connection, so the mailer is safe
// for concurrent use and one stuck conversation never blocks another.
//
// The server accepting DATA is the point of no return: Send then reports
// success even if the final QUIT fails, because a retry would deliver the
// message twice.
type SMTPMailer struct {
	addr string
	host string
	cfg  smtpConfig
}

var _ Mailer = (*SMTPMailer)(nil)

type smtpConfig struct {
	timeout time.Duration
	auth    smtp.Auth
	helo    string
}

// SMTPOption configures an [SMTPMailer].
type SMTPOption func(*smtpConfig)

// WithTimeout bounds one Send from dial to the server's reply to the message,
// so a server that stops answering cannot hold a consumer forever. A context
// deadline that comes sooner still wins. The default is 10s; d must be
// positive.
func WithTimeout(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.timeout = d }
}

// WithAuth authenticates every connection, for servers that refuse
// anonymous senders. The default is no authentication. net/smtp's PlainAuth
// only sends credentials over TLS or to localhost.
func WithAuth(a smtp.Auth) SMTPOption {
	return func(c *smtpConfig) { c.auth = a }
}

// WithHelo sets the name announced in EHLO/HELO, for servers that check it.
// The default is "localhost".
func WithHelo(name string) SMTPOption {
	return func(c *smtpConfig) { c.helo = name }
}

// NewSMTPMailer checks addr (host:port) and the options up front, so a
// misconfiguration fails at start-up rather than on the first email. It does
// not connect.
//
// STARTTLS is used when the server offers it, except on loopback addresses
// (localhost, 127.0.0.0/8, ::1), where a local test server such as Mailpit
// typically has no trusted certificate and there is no network to protect.
func NewSMTPMailer(addr string, opts ...SMTPOption) (*SMTPMailer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("mail: smtp address %q: %w", addr, err)
	}
	if host == "" || port == "" {
		return nil, fmt.Errorf("mail: smtp address %q: want host:port", addr)
	}
	cfg := smtpConfig{timeout: 10 * time.Second, helo: "localhost"}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("mail: smtp timeout %v: must be positive", cfg.timeout)
	}
	if cfg.helo == "" || strings.ContainsAny(cfg.helo, " \t\r\n") {
		return nil, fmt.Errorf("mail: smtp helo name %q: want one non-empty word", cfg.helo)
	}
	return &SMTPMailer{addr: addr, host: host, cfg: cfg}, nil
}

// Send delivers m to m.To in one SMTP conversation. Errors wrap
// [ErrInvalidMessage] before any connection is made, wrap the server's
// *textproto.Error for SMTP replies, and wrap ctx.Err() (or
// context.DeadlineExceeded when the mailer's timeout ran out) when the
// conversation was cut short; see [IsTemporary].
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	data, from, to, err := m.encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	if err := s.send(ctx, from.Address, to.Address, data); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return fmt.Errorf("mail: smtp send %s via %s: %w", m.ID, s.addr, err)
	}
	return nil
}

func (s *SMTPMailer) send(ctx context.Context, from, to string, data []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	// When ctx ends (cancelled, or its deadline, which includes the mailer's
	// timeout, passes), moving the connection's deadline to the past
	// interrupts whatever read or write is blocked. Deriving the interruption
	// from ctx rather than setting conn.SetDeadline(deadline) up front
	// guarantees ctx.Err() is set by the time the I/O error surfaces, so Send
	// can report why the conversation was cut short.
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	// After a failure the connection is useless; Close's error adds nothing.
	defer func() { _ = c.Close() }()

	if err := c.Hello(s.cfg.helo); err != nil {
		return fmt.Errorf("EHLO/HELO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !isLoopback(s.host) {
		cfg := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.cfg.auth != nil {
		if err := c.Auth(s.cfg.auth); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	// The message is accepted; a failed QUIT must not trigger a resend.
	_ = c.Quit()
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
