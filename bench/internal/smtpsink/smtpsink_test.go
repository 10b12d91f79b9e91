package smtpsink

import (
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSendMail checks the sink with net/smtp, the client choreo's mailer and the peers use: every
// recipient of an accepted message is reported once, lower-cased, at acceptance.
func TestSendMail(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got [][]string
	)
	s, err := Start("127.0.0.1:0", func(to []string, at time.Time) {
		if at.IsZero() {
			t.Error("zero acceptance time")
		}
		mu.Lock()
		got = append(got, to)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := []byte("Subject: hi\r\n\r\n.line starting with a dot\r\nbye\r\n")
	if err := smtp.SendMail(s.Addr(), nil, "from@example.com", []string{"A@Example.com", "b@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(s.Addr(), nil, "from@example.com", []string{"c@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]string{{"a@example.com", "b@example.com"}, {"c@example.com"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

func TestAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ arg, want string }{
		{"TO:<a@b.example>", "a@b.example"},
		{"TO: <A@B.example> NOTIFY=NEVER", "a@b.example"},
		{"TO:a@b.example", "a@b.example"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			if got := address(tc.arg); got != tc.want {
				t.Errorf("address(%q) = %q, want %q", tc.arg, got, tc.want)
			}
		})
	}
}

// TestPipelining: commands sent in one write are answered in order, and a message whose
// connection closes before its final dot is not delivered.
func TestPipelining(t *testing.T) {
	t.Parallel()
	delivered := make(chan []string, 4)
	s, err := Start("127.0.0.1:0", func(to []string, _ time.Time) { delivered <- to })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	session := func() (*textproto.Conn, net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		tc := textproto.NewConn(c)
		if _, _, err := tc.ReadResponse(220); err != nil {
			t.Fatal(err)
		}
		if err := tc.PrintfLine("EHLO test"); err != nil {
			t.Fatal(err)
		}
		_, ext, err := tc.ReadResponse(250)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ext, "\nPIPELINING") {
			t.Fatalf("EHLO reply %q offers no PIPELINING", ext)
		}
		if _, err := io.WriteString(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"); err != nil {
			t.Fatal(err)
		}
		for _, code := range []int{250, 250, 354} {
			if _, _, err := tc.ReadResponse(code); err != nil {
				t.Fatalf("reply to the pipelined commands: %v, want %d", err, code)
			}
		}
		if _, err := io.WriteString(c, "Subject: hi\r\n\r\nbody\r\n"); err != nil {
			t.Fatal(err)
		}
		return tc, c
	}

	_, abandoned := session()
	abandoned.Close() // before the final dot: nothing is delivered
	tc, c := session()
	defer c.Close()
	if _, err := io.WriteString(c, ".\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.ReadResponse(250); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if got := <-delivered; !slices.Equal(got, []string{"b@x"}) {
		t.Errorf("delivered to %q, want b@x", got)
	}
	s.Close() // waits for every connection's goroutine, the abandoned one's too
	select {
	case got := <-delivered:
		t.Errorf("a second delivery, to %q: the abandoned message was delivered", got)
	default:
	}
}
