package mail_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// smtpServer is an in-process SMTP server speaking just enough of RFC 5321
// for SMTPMailer: greeting, EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA (with
// dot-unstuffing), RSET, NOOP and QUIT. It advertises STARTTLS but refuses it
// with a 454, so a client that tries it on loopback fails visibly.
type smtpServer struct {
	addr    string
	replies map[string]string
	silent  bool

	mu       sync.Mutex
	received []received
	commands []string
}

// received is one accepted message.
type received struct {
	from, to string // envelope addresses
	auth     string // the AUTH command line, if any
	data     []byte // the message after dot-unstuffing, CRLF intact
}

// smtpServerConfig changes how the server answers.
type smtpServerConfig struct {
	// replies overrides the reply to a stage: "GREETING", a command verb
	// ("EHLO", "MAIL", "RCPT", "DATA", ...) or "." for the end of DATA.
	replies map[string]string
	// silent accepts connections and never writes a byte.
	silent bool
}

func startSMTPServer(t *testing.T, cfg smtpServerConfig) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &smtpServer{addr: ln.Addr().String(), replies: cfg.replies, silent: cfg.silent}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed by cleanup
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				if err := s.serve(conn); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
					t.Logf("smtp test server: %v", err)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// messages returns what the server accepted so far.
func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

// sawCommand reports whether any client sent the verb.
func (s *smtpServer) sawCommand(verb string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.commands {
		if c == verb {
			return true
		}
	}
	return false
}

func (s *smtpServer) reply(stage, def string) string {
	if r, ok := s.replies[stage]; ok {
		return r
	}
	return def
}

func (s *smtpServer) serve(conn net.Conn) error {
	r := bufio.NewReader(conn)
	if s.silent {
		_, err := r.WriteTo(io.Discard) // hold the line until the client gives up
		return err
	}
	w := bufio.NewWriter(conn)
	send := func(reply string) error {
		if _, err := w.WriteString(reply + "\r\n"); err != nil {
			return err
		}
		return w.Flush()
	}
	readLine := func() (string, error) {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(line, "\r\n") {
			return "", fmt.Errorf("line %q not terminated by CRLF", line)
		}
		return line, nil
	}

	greeting := s.reply("GREETING", "220 test.local ESMTP ready")
	if err := send(greeting); err != nil || !strings.HasPrefix(greeting, "2") {
		return err
	}
	var cur received
	for {
		line, err := readLine()
		if err != nil {
			return err
		}
		cmd := strings.TrimSuffix(line, "\r\n")
		verb, arg, _ := strings.Cut(cmd, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.commands = append(s.commands, verb)
		s.mu.Unlock()

		var reply string
		switch verb {
		case "EHLO":
			reply = s.reply(verb, "250-test.local\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN")
		case "HELO", "NOOP":
			reply = s.reply(verb, "250 ok")
		case "STARTTLS":
			reply = s.reply(verb, "454 4.7.0 TLS not available")
		case "AUTH":
			cur.auth = cmd
			reply = s.reply(verb, "235 2.7.0 authenticated")
		case "RSET":
			cur = received{auth: cur.auth}
			reply = s.reply(verb, "250 ok")
		case "MAIL":
			cur.from = envelopeAddr(arg)
			reply = s.reply(verb, "250 2.1.0 ok")
		case "RCPT":
			cur.to = envelopeAddr(arg)
			reply = s.reply(verb, "250 2.1.5 ok")
		case "DATA":
			reply = s.reply(verb, "354 end with <CRLF>.<CRLF>")
			if err := send(reply); err != nil {
				return err
			}
			if !strings.HasPrefix(reply, "3") {
				continue
			}
			var data strings.Builder
			for {
				line, err := readLine()
				if err != nil {
					return err
				}
				if line == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(line, ".")) // undo dot-stuffing
			}
			reply = s.reply(".", "250 2.0.0 queued")
			if strings.HasPrefix(reply, "2") {
				cur.data = []byte(data.String())
				s.mu.Lock()
				s.received = append(s.received, cur)
				s.mu.Unlock()
			}
			cur = received{auth: cur.auth}
		case "QUIT":
			return send("221 2.0.0 bye")
		default:
			reply = "502 5.5.2 not implemented"
		}
		if err := send(reply); err != nil {
			return err
		}
	}
}

// envelopeAddr extracts the address from "FROM:<a@b> BODY=8BITMIME".
func envelopeAddr(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}
