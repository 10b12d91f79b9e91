package smtptest_test

import (
	"net/smtp"
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
