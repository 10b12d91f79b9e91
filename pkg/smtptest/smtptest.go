// Package smtptest is an in-process SMTP server for tests that must see every email the code
// sends: it records each message whose DATA it accepts, so a second delivery of one email is a
// second entry (a mailbox or a file named by Message-ID would merge the two).
//
// It speaks just enough of RFC 5321 for net/smtp clients: greeting, EHLO/HELO, AUTH PLAIN, MAIL,
// RCPT, DATA (with dot-unstuffing), RSET, NOOP and QUIT, in order (RCPT needs MAIL, DATA a
// recipient), and PIPELINING (RFC 2920) as real servers such as Postfix and Mailpit offer it:
// replies in order, written together once the client's commands so far are answered. It
// advertises STARTTLS but refuses it with a 454, so a client that tries it on loopback fails
// visibly. A transaction whose connection closes before the end of its DATA is discarded.
package smtptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Message is one message the server accepted (its end of DATA answered 2xx).
type Message struct {
	From, To string // envelope addresses
	Helo     string // the name the client announced in EHLO or HELO
	Auth     string // the AUTH command line, if any
	Data     []byte // the message after dot-unstuffing, CRLF intact
}

// MessageID returns the message's Message-ID without angle brackets, or "" if it has none or
// its header cannot be parsed.
func (m Message) MessageID() string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return strings.Trim(msg.Header.Get("Message-ID"), "<> ")
}

// Server is a running test SMTP server. Its methods are safe for concurrent use.
type Server struct {
	addr    string
	replies map[string]string
	rcpt    map[string]string // replies to RCPT by recipient
	silent  bool
	noPipe  bool
	log     func(format string, args ...any)

	mu       sync.Mutex
	received []Message
	commands []string
	piped    int        // commands that came before the reply to the one before
	accepted int        // connections accepted so far
	open     []net.Conn // connections not yet closed by Drop or the clean-up
	closed   bool
}

// Option changes how the server answers.
type Option func(*Server)

// WithReply overrides the reply to a stage: "GREETING", a command verb ("EHLO", "MAIL", "RCPT",
// "DATA", ...) or "." for the end of DATA. By default every stage succeeds.
func WithReply(stage, reply string) Option {
	return func(s *Server) { s.replies[stage] = reply }
}

// WithRecipientReply overrides the reply to RCPT for one recipient address, so one message of
// a session can fail while the others succeed. By default every recipient is accepted.
func WithRecipientReply(addr, reply string) Option {
	return func(s *Server) { s.rcpt[addr] = reply }
}

// Silent makes the server accept connections and never write a byte, as a hung server does. The
// default is to answer.
func Silent() Option {
	return func(s *Server) { s.silent = true }
}

// WithoutPipelining makes the server leave PIPELINING out of its EHLO reply and refuse, with a
// 503 as Postfix does, a command sent before the reply to the previous one. The default is to
// offer it.
func WithoutPipelining() Option {
	return func(s *Server) { s.noPipe = true }
}

// Start starts a server on a free port of 127.0.0.1 and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{addr: ln.Addr().String(), replies: map[string]string{}, rcpt: map[string]string{}, log: t.Logf}
	for _, o := range opts {
		o(s)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed by the clean-up
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.accepted++
			s.open = append(s.open, conn)
			s.mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				if err := s.serve(conn); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
					s.log("smtptest: %v", err)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.Drop()
		wg.Wait()
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Connections returns how many connections the server accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Drop closes every open connection without a word, as a server that restarts or times out
// idle sessions does. The server keeps accepting new ones.
func (s *Server) Drop() {
	s.mu.Lock()
	open := s.open
	s.open = nil
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// Messages returns every message accepted so far, in the order their DATA ended.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Count returns how many messages were accepted so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// ByRecipient groups the accepted messages by envelope recipient.
func (s *Server) ByRecipient() map[string][]Message {
	out := map[string][]Message{}
	for _, m := range s.Messages() {
		out[m.To] = append(out[m.To], m)
	}
	return out
}

// Repeats returns, for each Message-ID accepted more than once, how many times it was: the
// second deliveries of one email. A message without a Message-ID is counted under "".
func (s *Server) Repeats() map[string]int {
	n := map[string]int{}
	for _, m := range s.Messages() {
		n[m.MessageID()]++
	}
	for id, c := range n {
		if c < 2 {
			delete(n, id)
		}
	}
	return n
}

// Pipelined returns how many commands arrived before the server had answered the one before
// them: commands a client pipelined.
func (s *Server) Pipelined() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.piped
}

// SawCommand reports whether any client sent the verb.
func (s *Server) SawCommand(verb string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.commands, verb)
}

func (s *Server) reply(stage, def string) string {
	if r, ok := s.replies[stage]; ok {
		return r
	}
	return def
}

func (s *Server) serve(conn net.Conn) error {
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
		if r.Buffered() > 0 {
			// The client pipelined: answer its group at once (RFC 2920, 3.2).
			return nil
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
	ehlo := "250-test.local\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN"
	if s.noPipe {
		ehlo = "250-test.local\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN"
	}
	var (
		cur            Message
		mailOK, rcptOK bool // the transaction has a sender, a recipient
	)
	for {
		line, err := readLine()
		if err != nil {
			return err
		}
		piped := r.Buffered() > 0 // the next command came before this one's reply
		cmd := strings.TrimSuffix(line, "\r\n")
		verb, arg, _ := strings.Cut(cmd, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		s.commands = append(s.commands, verb)
		if piped {
			s.piped++
		}
		s.mu.Unlock()
		if piped && s.noPipe {
			if err := send("503 5.5.0 improper use of SMTP command pipelining"); err != nil {
				return err
			}
			continue
		}

		var reply string
		switch verb {
		case "EHLO":
			cur.Helo = arg
			reply = s.reply(verb, ehlo)
		case "HELO":
			cur.Helo = arg
			reply = s.reply(verb, "250 ok")
		case "NOOP":
			reply = s.reply(verb, "250 ok")
		case "STARTTLS":
			reply = s.reply(verb, "454 4.7.0 TLS not available")
		case "AUTH":
			cur.Auth = cmd
			reply = s.reply(verb, "235 2.7.0 authenticated")
		case "RSET":
			cur = Message{Helo: cur.Helo, Auth: cur.Auth}
			mailOK, rcptOK = false, false
			reply = s.reply(verb, "250 ok")
		case "MAIL":
			cur.From = envelopeAddr(arg)
			reply = s.reply(verb, "250 2.1.0 ok")
			mailOK = strings.HasPrefix(reply, "2")
		case "RCPT":
			cur.To = envelopeAddr(arg)
			reply = s.reply(verb, "250 2.1.5 ok")
			if r, ok := s.rcpt[cur.To]; ok {
				reply = r
			}
			if !mailOK {
				reply = "503 5.5.1 need MAIL command"
			}
			rcptOK = rcptOK || strings.HasPrefix(reply, "2")
		case "DATA":
			reply = s.reply(verb, "354 end with <CRLF>.<CRLF>")
			if !rcptOK {
				reply = "554 5.5.1 no valid recipients"
			}
			if err := send(reply); err != nil {
				return err
			}
			if !strings.HasPrefix(reply, "3") {
				continue
			}
			if err := w.Flush(); err != nil { // the client waits for 354 before the message
				return err
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
				cur.Data = []byte(data.String())
				s.mu.Lock()
				s.received = append(s.received, cur)
				s.mu.Unlock()
			}
			cur = Message{Helo: cur.Helo, Auth: cur.Auth}
			mailOK, rcptOK = false, false
		case "QUIT":
			if err := send("221 2.0.0 bye"); err != nil {
				return err
			}
			return w.Flush()
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
