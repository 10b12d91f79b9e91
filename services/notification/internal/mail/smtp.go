package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
)

// SMTPMailer sends through an SMTP server (SMTP_ADDR, e.g. a Mailpit at
// 127.0.0.1:1025). It is safe for concurrent use.
//
// It keeps connections open between messages (RFC 5321 allows any number of
// mail transactions in one session): a new connection per email costs a TCP
// handshake, the greeting, EHLO (and STARTTLS and AUTH) and QUIT, several
// round trips for each message. A send takes a kept connection if one is
// idle and opens one of its own otherwise, so one stuck conversation never
// blocks another; afterwards up to the idle limit are kept (see
// [WithIdleConns]). A kept connection is closed after it has been idle for
// the idle timeout (see [WithIdleTimeout]), replaced after any error but an
// SMTP reply to the message itself, and closed with QUIT by
// [SMTPMailer.Close].
//
// A send is two steps ([SMTPMailer.Prepare], then Commit on what it returns;
// Send does both). Preparing sends MAIL FROM, RCPT TO and DATA, in one write
// when the server offers PIPELINING (RFC 2920), and then the whole message
// but its final dot. The server's reply to that dot is the point of no
// return: RFC 5321 has a server discard a transaction whose connection
// closes before it, so a prepared message that is aborted, or whose process
// dies, is not delivered. Commit sends the dot and reads the reply; once the
// dot is written, a failure leaves the outcome unknown and is reported as
// such, never retried. Preparing retries on a fresh connection when a kept
// one fails (a server that closed an idle connection): nothing can have been
// delivered without the dot.
type SMTPMailer struct {
	addr string
	host string
	cfg  smtpConfig

	mu     sync.Mutex
	idle   []*smtpConn // the kept connections, the most recently used last
	closed bool
}

// smtpConn is one session, past EHLO (and STARTTLS and AUTH).
type smtpConn struct {
	conn       net.Conn
	c          *smtp.Client
	pipelining bool        // the server offers PIPELINING
	mailParams string      // what MAIL FROM adds after the address, as net/smtp does
	timer      *time.Timer // closes the connection when it stays idle
}

var _ Preparer = (*SMTPMailer)(nil)

type smtpConfig struct {
	timeout time.Duration
	idle    time.Duration
	conns   int
	auth    smtp.Auth
	helo    string
}

// SMTPOption configures an [SMTPMailer].
type SMTPOption func(*smtpConfig)

// WithTimeout bounds one Send, including any dial and retry, up to the
// server's reply to the message, so a server that stops answering cannot
// hold a consumer forever; it bounds Prepare and Commit each alike. A context
// deadline that comes sooner still wins. The default is 10s; d must be
// positive.
func WithTimeout(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.timeout = d }
}

// WithIdleTimeout closes a connection kept between messages once no
// message has used it for d, so an idle service holds no session open at the
// server (servers close idle sessions themselves after a few minutes). The
// default is 30s; d must be positive.
func WithIdleTimeout(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.idle = d }
}

// WithIdleConns sets how many connections are kept open between messages:
// as many as sends run at once saves a new session per message. The default
// is 16, the sender's default parallelism; n must be positive.
func WithIdleConns(n int) SMTPOption {
	return func(c *smtpConfig) { c.conns = n }
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
	cfg := smtpConfig{timeout: 10 * time.Second, idle: 30 * time.Second, conns: 16, helo: "localhost"}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("mail: smtp timeout %v: must be positive", cfg.timeout)
	}
	if cfg.idle <= 0 {
		return nil, fmt.Errorf("mail: smtp idle timeout %v: must be positive", cfg.idle)
	}
	if cfg.conns <= 0 {
		return nil, fmt.Errorf("mail: smtp idle connections %d: must be positive", cfg.conns)
	}
	if cfg.helo == "" || strings.ContainsAny(cfg.helo, " \t\r\n") {
		return nil, fmt.Errorf("mail: smtp helo name %q: want one non-empty word", cfg.helo)
	}
	return &SMTPMailer{addr: addr, host: host, cfg: cfg}, nil
}

// Send delivers m to m.To in one SMTP mail transaction: Prepare and Commit
// within one timeout. Errors wrap [ErrInvalidMessage] before any connection
// is made, wrap the server's *textproto.Error for SMTP replies, and wrap
// ctx.Err() (or context.DeadlineExceeded when the mailer's timeout ran out)
// when the conversation was cut short; see [IsTemporary].
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	p, err := s.prepare(ctx, m)
	if err != nil {
		return err
	}
	return p.commit(ctx)
}

// Prepare opens a mail transaction for m and sends all of it but the final
// dot; see [SMTPMailer]. Its errors are Send's. The Prepared holds the
// connection until Commit or Abort.
func (s *SMTPMailer) Prepare(ctx context.Context, m Message) (Prepared, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	return s.prepare(ctx, m)
}

func (s *SMTPMailer) prepare(ctx context.Context, m Message) (*smtpPrepared, error) {
	data, from, to, err := m.encode()
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(from.Address+to.Address, "\r\n") {
		return nil, invalid("envelope address with a line break")
	}
	sc, err := s.open(ctx, from.Address, to.Address, dotStuff(data))
	if err != nil {
		return nil, s.sendError(ctx, m.ID, err)
	}
	return &smtpPrepared{s: s, sc: sc, id: m.ID}, nil
}

// sendError wraps err, from a send of message id cut short or refused, with
// the reason ctx ended, if it did.
func (s *SMTPMailer) sendError(ctx context.Context, id string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return fmt.Errorf("mail: smtp send %s via %s: %w", id, s.addr, err)
}

// smtpPrepared is a mail transaction whose DATA lacks only its final dot.
type smtpPrepared struct {
	s    *SMTPMailer
	sc   *smtpConn
	id   string
	once sync.Once
}

// Commit sends the final dot and reads the server's verdict, within the
// mailer's timeout.
func (p *smtpPrepared) Commit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.timeout)
	defer cancel()
	return p.commit(ctx)
}

func (p *smtpPrepared) commit(ctx context.Context) (err error) {
	ran := false
	p.once.Do(func() {
		ran = true
		err = p.s.commit(ctx, p.sc)
	})
	if !ran {
		return fmt.Errorf("mail: smtp send %s: committed or aborted already", p.id)
	}
	if err != nil {
		return p.s.sendError(ctx, p.id, err)
	}
	return nil
}

// Abort closes the connection: a server discards a transaction whose
// connection closes before the end of its DATA (RFC 5321, 4.1.1.4). Nothing
// else could end it, since whatever follows DATA is the message.
func (p *smtpPrepared) Abort() {
	p.once.Do(func() { _ = p.sc.conn.Close() })
}

// Close ends the kept connections with QUIT. A Send after Close works, on a
// connection of its own that it then closes.
func (s *SMTPMailer) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sc := range idle {
		// A timer that already fired is closing the connection itself.
		if sc.timer.Stop() {
			wg.Go(func() { sc.quit(s.cfg.timeout) })
		}
	}
	wg.Wait()
	return nil
}

// open returns a session whose mail transaction for from, to has all of body
// but the final dot, on a kept connection or, if there is none or it failed,
// a new one.
func (s *SMTPMailer) open(ctx context.Context, from, to string, body []byte) (*smtpConn, error) {
	if sc := s.take(); sc != nil {
		err := s.begin(ctx, sc, from, to, body)
		if err == nil || ctx.Err() != nil || (isReply(err) && !isClosing(err)) {
			return sc, err
		}
		// The kept connection failed (typically the server closed it while
		// idle, perhaps with a 421): nothing is delivered without the final
		// dot, so a fresh connection may try again.
	}
	sc, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	return sc, s.begin(ctx, sc, from, to, body)
}

// take returns a kept connection, or nil if none is idle.
func (s *SMTPMailer) take() *smtpConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		// The most recently used: the least likely to have been closed by
		// the server.
		sc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if sc.timer.Stop() {
			return sc
		}
		// Its idle timer fired and is closing it.
	}
	return nil
}

// keep keeps sc for a later message, or closes it if the mailer keeps
// enough already.
func (s *SMTPMailer) keep(sc *smtpConn) {
	s.mu.Lock()
	if len(s.idle) >= s.cfg.conns || s.closed {
		s.mu.Unlock()
		sc.quit(s.cfg.timeout)
		return
	}
	s.idle = append(s.idle, sc)
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
	if i := slices.Index(s.idle, sc); i >= 0 {
		s.idle = slices.Delete(s.idle, i, i+1)
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
	sc := &smtpConn{conn: conn, c: c}
	// What the server offers after STARTTLS, which Extension reports.
	sc.pipelining, _ = c.Extension("PIPELINING")
	if ok, _ := c.Extension("8BITMIME"); ok {
		sc.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		sc.mailParams += " SMTPUTF8"
	}
	return sc, nil
}

// begin opens a mail transaction on sc and sends body (dot-stuffed) without
// the final dot. On success the transaction is left open for commit; on
// failure sc is kept for the next message if it is in a known state (the
// server's reply to a command, cleared by RSET) and closed otherwise.
func (s *SMTPMailer) begin(ctx context.Context, sc *smtpConn, from, to string, body []byte) (err error) {
	stop := interruptOnDone(ctx, sc.conn)
	inData := false // the server awaits the message: only closing ends the transaction
	defer func() {
		switch {
		case !stop():
			// ctx moved the deadline: the connection is unusable.
			if err == nil {
				err = fmt.Errorf("DATA: %w", context.Cause(ctx))
			}
			_ = sc.conn.Close()
		case err == nil:
			// The transaction is open: the Prepared owns the connection.
		case !inData && isReply(err) && !isClosing(err) && sc.c.Reset() == nil:
			s.keep(sc)
		default:
			_ = sc.conn.Close()
		}
	}()
	t := sc.c.Text
	mail := "MAIL FROM:<" + from + ">" + sc.mailParams
	rcpt := "RCPT TO:<" + to + ">"
	if sc.pipelining {
		// One write and one round trip for the three commands (RFC 2920:
		// DATA ends the group). Every reply is read, in order, to stay in step.
		for _, cmd := range []string{mail, rcpt, "DATA"} {
			_, _ = t.W.WriteString(cmd)
			_, _ = t.W.WriteString("\r\n")
		}
		if err := t.W.Flush(); err != nil {
			return fmt.Errorf("MAIL FROM: %w", err)
		}
		_, _, mailErr := t.ReadResponse(250)
		if mailErr != nil && !isReply(mailErr) {
			return fmt.Errorf("MAIL FROM: %w", mailErr)
		}
		_, _, rcptErr := t.ReadResponse(25)
		if rcptErr != nil && !isReply(rcptErr) {
			return fmt.Errorf("RCPT TO: %w", rcptErr)
		}
		_, _, dataErr := t.ReadResponse(354)
		inData = dataErr == nil
		switch {
		case mailErr != nil:
			return fmt.Errorf("MAIL FROM: %w", mailErr)
		case rcptErr != nil:
			return fmt.Errorf("RCPT TO: %w", rcptErr)
		case dataErr != nil:
			return fmt.Errorf("DATA: %w", dataErr)
		}
	} else {
		if err := command(t, 250, mail); err != nil {
			return fmt.Errorf("MAIL FROM: %w", err)
		}
		if err := command(t, 25, rcpt); err != nil {
			return fmt.Errorf("RCPT TO: %w", err)
		}
		if err := command(t, 354, "DATA"); err != nil {
			return fmt.Errorf("DATA: %w", err)
		}
		inData = true
	}
	if _, err := t.W.Write(body); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := t.W.Flush(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return nil
}

// command sends one command line and reads its reply, which must start
// with code (see textproto.Reader.ReadResponse).
func command(t *textproto.Conn, code int, line string) error {
	_, _ = t.W.WriteString(line)
	_, _ = t.W.WriteString("\r\n")
	if err := t.W.Flush(); err != nil {
		return err
	}
	_, _, err := t.ReadResponse(code)
	return err
}

// commit ends sc's open transaction with the final dot and reads the
// server's verdict; then sc is kept for the next message, or closed if the
// conversation broke off.
func (s *SMTPMailer) commit(ctx context.Context, sc *smtpConn) (err error) {
	stop := interruptOnDone(ctx, sc.conn)
	defer func() {
		// After the reply to the dot, whatever it says, the transaction is
		// over and the session ready for the next (RFC 5321, 4.1.1.4).
		usable := err == nil || (isReply(err) && !isClosing(err))
		if stop() && usable {
			s.keep(sc)
			return
		}
		_ = sc.conn.Close()
	}()
	t := sc.c.Text
	if _, err := t.W.WriteString(".\r\n"); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if err := t.W.Flush(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// dotStuff returns data as DATA carries it (RFC 5321, 4.5.2): CRLF line
// endings, a "." doubled at the start of a line, and a final line break,
// but without the "." line that ends it. It uses textproto's own encoder, as
// net/smtp does.
func dotStuff(data []byte) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	dw := textproto.NewWriter(w).DotWriter()
	// Writes to a bytes.Buffer do not fail.
	_, _ = dw.Write(data)
	_ = dw.Close()
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte(".\r\n"))
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
