package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// SMTPMailer sends through an SMTP server (SMTP_ADDR, e.g. a Mailpit at
// 127.0.0.1:1025). It is safe for concurrent use.
//
// It keeps one connection open between messages (RFC 5321 allows any number
// of mail transactions in one session): a new connection per email costs a
// TCP handshake, the greeting, EHLO (and STARTTLS and AUTH) and QUIT, several
// round trips for each message. A Send that finds the kept connection busy
// opens one of its own, so one stuck conversation never blocks another. The
// kept connection is closed after it has been idle for the idle timeout (see
// [WithIdleTimeout]), replaced after any error but an SMTP reply to the
// message itself, and closed with QUIT by [SMTPMailer.Close].
//
// The server accepting DATA is the point of no return: Send then reports
// success whatever happens to the connection afterwards, because a retry
// would deliver the message twice. For the same reason a Send retries on a
// fresh connection only when the kept one failed before any of the message
// was written (a server that closed an idle connection).
type SMTPMailer struct {
	addr string
	host string
	cfg  smtpConfig

	mu     sync.Mutex
	idle   *smtpConn // the kept connection, nil when none is idle
	closed bool
}

// smtpConn is one session, past EHLO (and STARTTLS and AUTH).
type smtpConn struct {
	conn  net.Conn
	c     *smtp.Client
	timer *time.Timer // closes the connection when it stays idle
}

var _ Mailer = (*SMTPMailer)(nil)

type smtpConfig struct {
	timeout time.Duration
	idle    time.Duration
	auth    smtp.Auth
	helo    string
}

// SMTPOption configures an [SMTPMailer].
type SMTPOption func(*smtpConfig)

// WithTimeout bounds one Send, including any dial and retry, up to the
// server's reply to the message,
// so a server that stops answering cannot hold a consumer forever. A context
// deadline that comes sooner still wins. The default is 10s; d must be
// positive.
func WithTimeout(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.timeout = d }
}

// WithIdleTimeout closes the connection kept between messages once no
// message has used it for d, so an idle service holds no session open at the
// server (servers close idle sessions themselves after a few minutes). The
// default is 30s; d must be positive.
func WithIdleTimeout(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.idle = d }
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
	cfg := smtpConfig{timeout: 10 * time.Second, idle: 30 * time.Second, helo: "localhost"}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("mail: smtp timeout %v: must be positive", cfg.timeout)
	}
	if cfg.idle <= 0 {
		return nil, fmt.Errorf("mail: smtp idle timeout %v: must be positive", cfg.idle)
	}
	if cfg.helo == "" || strings.ContainsAny(cfg.helo, " \t\r\n") {
		return nil, fmt.Errorf("mail: smtp helo name %q: want one non-empty word", cfg.helo)
	}
	return &SMTPMailer{addr: addr, host: host, cfg: cfg}, nil
}

// Send delivers m to m.To in one SMTP mail transaction. Errors wrap
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

// Close ends the kept connection with QUIT. A Send after Close works, on a
// connection of its own that it then closes.
func (s *SMTPMailer) Close() error {
	s.mu.Lock()
	sc := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	// A timer that already fired is closing the connection itself.
	if sc != nil && sc.timer.Stop() {
		sc.quit(s.cfg.timeout)
	}
	return nil
}

func (s *SMTPMailer) send(ctx context.Context, from, to string, data []byte) error {
	if sc := s.take(); sc != nil {
		written, err := s.transaction(ctx, sc, from, to, data)
		if err == nil || written || ctx.Err() != nil || (isReply(err) && !isClosing(err)) {
			return err
		}
		// The kept connection failed before any of the message was written
		// (typically the server closed it while idle, perhaps with a 421):
		// nothing can have been delivered, so a fresh connection may try
		// again.
	}
	sc, err := s.dial(ctx)
	if err != nil {
		return err
	}
	_, err = s.transaction(ctx, sc, from, to, data)
	return err
}

// take returns the kept connection, or nil if there is none or another Send
// is using it.
func (s *SMTPMailer) take() *smtpConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.idle
	if sc == nil || !sc.timer.Stop() {
		return nil // none, or its idle timer is closing it
	}
	s.idle = nil
	return sc
}

// keep makes sc the kept connection, or closes it if one is kept already.
func (s *SMTPMailer) keep(sc *smtpConn) {
	s.mu.Lock()
	if s.idle != nil || s.closed {
		s.mu.Unlock()
		sc.quit(s.cfg.timeout)
		return
	}
	s.idle = sc
	if sc.timer == nil {
		sc.timer = time.AfterFunc(s.cfg.idle, func() { s.expire(sc) })
	} else {
		sc.timer.Reset(s.cfg.idle)
	}
	s.mu.Unlock()
}

// expire closes sc after it stayed idle for the idle timeout.
func (s *SMTPMailer) expire(sc *smtpConn) {
	s.mu.Lock()
	if s.idle == sc {
		s.idle = nil
	}
	s.mu.Unlock()
	sc.quit(s.cfg.timeout)
}

// dial opens a session: connection, greeting, EHLO, STARTTLS where offered
// off loopback, AUTH when configured.
func (s *SMTPMailer) dial(ctx context.Context) (*smtpConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	sc, err := s.hello(ctx, conn)
	if err != nil {
		_ = conn.Close() // after a failure the connection is useless
		return nil, err
	}
	return sc, nil
}

func (s *SMTPMailer) hello(ctx context.Context, conn net.Conn) (*smtpConn, error) {
	stop := interruptOnDone(ctx, conn)
	defer stop()
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Hello(s.cfg.helo); err != nil {
		return nil, fmt.Errorf("EHLO/HELO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !isLoopback(s.host) {
		cfg := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(cfg); err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.cfg.auth != nil {
		if err := c.Auth(s.cfg.auth); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	if !stop() {
		// ctx ended as the session opened: the connection's deadline is in
		// the past, so it can serve nothing.
		return nil, fmt.Errorf("EHLO: %w", context.Cause(ctx))
	}
	return &smtpConn{conn: conn, c: c}, nil
}

// transaction sends one message over sc and then keeps sc for the next one
// or closes it. written reports whether any of the message's data may have
// reached the server, after which a retry could deliver it twice.
func (s *SMTPMailer) transaction(ctx context.Context, sc *smtpConn, from, to string, data []byte) (written bool, err error) {
	stop := interruptOnDone(ctx, sc.conn)
	defer func() {
		// The connection serves the next message only if it is in a known
		// state: the transaction ended with the server's reply (250, or a
		// 4xx/5xx that RSET cleared), and ctx did not move its deadline.
		usable := err == nil || (isReply(err) && !isClosing(err) && sc.c.Reset() == nil)
		if stop() && usable {
			s.keep(sc)
			return
		}
		_ = sc.conn.Close()
	}()
	if err := sc.c.Mail(from); err != nil {
		return false, fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := sc.c.Rcpt(to); err != nil {
		return false, fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := sc.c.Data()
	if err != nil {
		return false, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return true, fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return true, fmt.Errorf("end of DATA: %w", err)
	}
	return true, nil
}

// quit ends a session politely, within timeout; the message it carried, if
// any, was accepted already, so a failure changes nothing.
func (sc *smtpConn) quit(timeout time.Duration) {
	_ = sc.conn.SetDeadline(time.Now().Add(timeout))
	_ = sc.c.Quit()
	_ = sc.conn.Close()
}

// interruptOnDone moves conn's deadline to the past when ctx ends (cancelled,
// or its deadline, which includes the mailer's timeout, passes), which
// interrupts whatever read or write is blocked. Deriving the interruption from
// ctx rather than setting conn.SetDeadline(deadline) up front guarantees
// ctx.Err() is set by the time the I/O error surfaces, so Send can report why
// the conversation was cut short. The returned stop reports false if the
// deadline was moved, after which conn is unusable.
func interruptOnDone(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
}

// isReply reports whether err is the server's reply to a command: the
// session is still in step, unlike after an I/O error.
func isReply(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply)
}

// isClosing reports a 421 reply, with which the server announces it closes
// the session.
func isClosing(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply) && reply.Code == 421
}

func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
