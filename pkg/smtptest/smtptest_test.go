package smtptest_test

import (
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/smtptest"
)

// TestEveryDataIsRecorded: the same email sent twice is two deliveries, reported under its
// Message-ID, which is what the exactly-once tests rely on.
func TestEveryDataIsRecorded(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	msg := func(id string) []byte {
		return []byte("Message-ID: <" + id + ">\r\nSubject: hi\r\n\r\n.leading dot\r\n")
	}
	for _, id := range []string{"a@x", "a@x", "b@x"} {
		if err := send(srv.Addr(), "from@x", "to-"+id, msg(id)); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
	}
	if n := srv.Count(); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	if got := srv.Repeats(); len(got) != 1 || got["a@x"] != 2 {
		t.Errorf("Repeats = %v, want a@x twice", got)
	}
	m := srv.Messages()[2]
	if m.From != "from@x" || m.To != "to-b@x" || m.MessageID() != "b@x" || m.Helo != "localhost" {
		t.Errorf("message = %+v (Message-ID %q)", m, m.MessageID())
	}
	if want := "Message-ID: <b@x>\r\nSubject: hi\r\n\r\n.leading dot\r\n"; string(m.Data) != want {
		t.Errorf("data %q, want %q (dot-unstuffed)", m.Data, want)
	}
	if len(srv.ByRecipient()["to-a@x"]) != 2 {
		t.Errorf("ByRecipient = %v", srv.ByRecipient())
	}
}

// TestRefusedDataIsNotRecorded: a message whose end of DATA is refused was not delivered.
func TestRefusedDataIsNotRecorded(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.WithReply(".", "452 4.3.1 full"))
	if err := send(srv.Addr(), "from@x", "to@x", []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Fatal("SendMail succeeded against a refusing server")
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
}

// send is one SMTP conversation without STARTTLS (smtp.SendMail would try it and be refused).
func send(addr, from, to string, data []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// session dials srv, reads the greeting and says EHLO, returning the EHLO reply's text.
func session(t *testing.T, srv *smtptest.Server) (*textproto.Conn, string) {
	t.Helper()
	c, err := textproto.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	if err := c.PrintfLine("EHLO test"); err != nil {
		t.Fatal(err)
	}
	_, ext, err := c.ReadResponse(250)
	if err != nil {
		t.Fatal(err)
	}
	return c, ext
}

// TestPipelining: commands written together are answered in order; a server without PIPELINING
// does not offer it and refuses them; the transaction's commands come in order.
func TestPipelining(t *testing.T) {
	t.Parallel()
	group := "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	t.Run("offered", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t)
		c, ext := session(t, srv)
		if !strings.Contains(ext, "\nPIPELINING") {
			t.Fatalf("EHLO reply %q offers no PIPELINING", ext)
		}
		if _, err := c.W.WriteString(group); err != nil || c.W.Flush() != nil {
			t.Fatal(err)
		}
		for _, code := range []int{250, 250, 354} {
			if _, _, err := c.ReadResponse(code); err != nil {
				t.Fatalf("pipelined reply: %v, want %d", err, code)
			}
		}
		if err := c.PrintfLine("Message-ID: <p@x>\r\n\r\nhi\r\n."); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadResponse(250); err != nil {
			t.Fatalf("end of DATA: %v", err)
		}
		if srv.Count() != 1 || srv.Pipelined() < 1 {
			t.Errorf("%d messages, %d commands pipelined; want 1 and at least 1", srv.Count(), srv.Pipelined())
		}
	})
	t.Run("not offered", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.WithoutPipelining())
		c, ext := session(t, srv)
		if strings.Contains(ext, "PIPELINING") {
			t.Fatalf("EHLO reply %q offers PIPELINING", ext)
		}
		if _, err := c.W.WriteString(group); err != nil || c.W.Flush() != nil {
			t.Fatal(err)
		}
		// Whatever arrives ahead of its turn is refused; nothing reaches DATA.
		var codes []int
		for range 3 {
			code, _, _ := c.ReadResponse(0)
			codes = append(codes, code)
		}
		for _, code := range codes {
			if code/100 == 2 || code == 354 {
				t.Errorf("replies %v to pipelined commands: want refusals", codes)
				break
			}
		}
	})
	t.Run("in order", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t)
		c, _ := session(t, srv)
		for _, step := range []struct {
			cmd  string
			code int
		}{{"RCPT TO:<b@x>", 503}, {"DATA", 554}, {"MAIL FROM:<a@x>", 250}, {"DATA", 554}} {
			if err := c.PrintfLine("%s", step.cmd); err != nil {
				t.Fatal(err)
			}
			if code, msg, _ := c.ReadResponse(0); code != step.code {
				t.Errorf("%s: %d %s, want %d", step.cmd, code, msg, step.code)
			}
		}
	})
}
