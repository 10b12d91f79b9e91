package smtpsink

import (
	"net/smtp"
	"slices"
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
