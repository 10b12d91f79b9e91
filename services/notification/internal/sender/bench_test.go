package sender_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/choreo-dev/choreo/pkg/smtptest"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
)

// sendOnly hides a mailer's two steps, so the sender sends each email whole, one at a time, as
// it did with the default batch size before sends were prepared in parallel.
type sendOnly struct{ mail.Mailer }

// noMail is a Preparer that delivers nothing: what is left is the sender's own work and its
// records.
type noMail struct{ mail.Mailer }

func (noMail) Prepare(context.Context, mail.Message) (mail.Prepared, error) { return noMail{}, nil }
func (noMail) Commit(context.Context) error                                 { return nil }
func (noMail) Abort()                                                       {}

// BenchmarkSender measures the sender alone with its default guarantee (at most one email
// accepted and unrecorded), in emails a second from the database (SQLite with a log of sends,
// or PostgreSQL with TEST_DATABASE_URL) to an in-process SMTP server over loopback: prepared in parallel and
// committed one at a time (two-step), sent whole one at a time (whole), or not sent at all
// (records-only, the bound the records set).
func BenchmarkSender(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(mail.Mailer) mail.Mailer
		smtp bool // the SMTP server receives every email
	}{
		{"two-step", func(m mail.Mailer) mail.Mailer { return m }, true},
		{"whole", func(m mail.Mailer) mail.Mailer { return sendOnly{m} }, true},
		{"records-only", func(m mail.Mailer) mail.Mailer { return noMail{m} }, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db, shared := database(b)
			srv := smtptest.Start(b)
			sm, err := mail.NewSMTPMailer(srv.Addr())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sm.Close() })
			var opts []sender.Opt
			if shared {
				opts = append(opts, sender.Shared())
			} else { // as the service sends over SMTP on SQLite
				opts = append(opts, sender.SentLog(openLog(b, filepath.Join(b.TempDir(), "sent.log"))))
			}
			s := sender.New(db, tc.wrap(sm), opts...)
			sent := sendRounds(b, db, s, 2000)
			if got := sentCount(b, db); got != sent {
				b.Fatalf("%d recorded sent, want %d", got, sent)
			}
			if got := srv.Count(); tc.smtp && got != sent {
				b.Fatalf("%d delivered, want %d", got, sent)
			}
		})
	}
}
