// Package smtpsink is the SMTP server at the end of every benchmarked chain: it accepts any
// message and reports, for each, its recipients and the moment the server accepted it (the reply
// to the end of DATA), which is when a chain counts as done.
//
// It speaks what net/smtp clients need: greeting, EHLO/HELO, MAIL, RCPT, DATA with the final
// dot, RSET, NOOP and QUIT, and offers PIPELINING (RFC 2920) as Postfix and Mailpit do: replies
// in order, written together once the commands received so far are answered. It offers no
// STARTTLS and no AUTH: the chains send in the clear on loopback, as choreo's SMTPMailer does to
// a local relay. A message whose connection closes before its final dot is not delivered.
package smtpsink

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Server is a running sink.
type Server struct {
	ln      net.Listener
	deliver func(to []string, at time.Time)
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

// Start listens on addr (host:port; port 0 picks one) and calls deliver for every accepted
// message, from the connection's goroutine, before answering 250 to the end of its DATA: a
// message counts as accepted no earlier than the client could know it was. deliver must be safe
// for concurrent use.
func Start(addr string, deliver func(to []string, at time.Time)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtp sink: listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, deliver: deliver, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes open connections and waits for their goroutines.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(line string) bool {
		w.WriteString(line)
		w.WriteString("\r\n")
		if r.Buffered() > 0 {
			return true // pipelined commands follow: their replies go out together
		}
		return w.Flush() == nil
	}
	if !reply("220 smtpsink ready") {
		return
	}
	var to []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if !reply("250-smtpsink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8") {
				return
			}
		case "HELO", "NOOP":
			if !reply("250 ok") {
				return
			}
		case "MAIL", "RSET":
			to = to[:0]
			if !reply("250 ok") {
				return
			}
		case "RCPT":
			to = append(to, address(arg))
			if !reply("250 ok") {
				return
			}
		case "DATA":
			if !reply("354 end with <CRLF>.<CRLF>") || w.Flush() != nil {
				return
			}
			for {
				l, err := r.ReadSlice('\n')
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					return
				}
				if string(l) == ".\r\n" || string(l) == ".\n" {
					break
				}
			}
			s.deliver(append([]string(nil), to...), time.Now())
			to = to[:0]
			if !reply("250 accepted") {
				return
			}
		case "QUIT":
			reply("221 bye")
			return
		default:
			if !reply("502 not implemented") {
				return
			}
		}
	}
}

// address takes the mailbox out of a RCPT argument such as "TO:<a@b.example> NOTIFY=NEVER".
func address(arg string) string {
	_, a, ok := strings.Cut(arg, ":")
	if !ok {
		return arg
	}
	a = strings.TrimSpace(a)
	if i := strings.IndexByte(a, '>'); i >= 0 {
		a = a[:i]
	}
	return strings.ToLower(strings.TrimPrefix(a, "<"))
}
