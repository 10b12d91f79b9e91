// Package notificationsvc wires the Notification Service on choreo's service runtime. The
// service's main and `choreo dev` both build it with New.
package notificationsvc

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/notification/internal/api"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/sender"
	"github.com/choreo-dev/choreo/services/notification/internal/sentlog"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// Name is the service's name in the catalog.
const Name = "notification-service"

// Group is the service's consumer group. Changing it re-reads the users topic from the start.
const Group = "notification-service"

// DefaultHTTPAddr is where the API listens unless HTTP_ADDR says otherwise.
const DefaultHTTPAddr = "127.0.0.1:8083"

// MailDir is where, without SMTP_ADDR, emails are written as .eml files.
func MailDir(cfg service.Config) string { return filepath.Join(cfg.DataDir, "mail") }

// SentLogPath is where, on SQLite and over SMTP, the sender records each email the mail server
// accepted until the database records it (see the sender's SentLog).
func SentLogPath(cfg service.Config) string { return filepath.Join(cfg.DataDir, Name, "sent.log") }

// New builds the Notification Service. It sends mail through cfg.SMTPAddr when set, and writes
// .eml files under MailDir otherwise.
func New(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
	var (
		m         mail.Mailer
		closeMail = func() error { return nil }
		err       error
		transport = "file"
	)
	if cfg.SMTPAddr != "" {
		var sm *mail.SMTPMailer
		sm, err = mail.NewSMTPMailer(cfg.SMTPAddr)
		m, closeMail, transport = sm, sm.Close, "smtp"
	} else {
		m, err = mail.NewFileMailer(MailDir(cfg))
	}
	if err != nil {
		return nil, err
	}
	var wake func() // the sender's, for emails queued through the API
	return service.Open(ctx, Name, cfg, log,
		service.Migrations(store.Migrations()),
		service.Setup(func(ctx context.Context, s *service.Service) error {
			sent := sender.NewSentCounter(Name)
			s.Metrics.MustRegister(service.ReadAtMostEvery(service.ScrapeReadInterval, sender.NewCollector(s.DB, Name)), sent)
			opts := []sender.Opt{sender.Logger(s.Log), sender.Tracing(s.Tracer, transport),
				sender.Delivered(func(kind string, chainStart time.Time) {
					sent.Inc()
					// The effect as the catalog names it ("welcome email"): where the chain latency is measured.
					s.EffectDone(kind+" email", chainStart)
				})}
			if cfg.DatabaseURL != "" {
				opts = append(opts, sender.Shared()) // replicas share the database
			}
			closeLog := func() error { return nil }
			switch {
			case transport == "file":
				// A resend rewrites the same file with the same bytes: a crash costs no second
				// email, so outcomes are recorded 256 to a transaction.
				opts = append(opts, sender.BatchSize(256))
			case cfg.DatabaseURL != "":
				// Over SMTP a resend is a second delivery: by default (1) at most one email is
				// accepted and not yet recorded (others are prepared meanwhile, short of the
				// final dot); SMTP_SEND_BATCH lets an operator trade that bound for throughput,
				// as a window of emails committed at once, each recorded in a statement of its
				// own as it is accepted. Batches recorded in one transaction each had the same
				// burst rate and five to ten times the latency at 1,000 emails/s.
				opts = append(opts, sender.Window(cfg.SMTPSendBatch))
			default:
				// On SQLite each send is recorded in a file of the sender's own, folded into the
				// database a few dozen at a time: the handlers hold SQLite's one connection most
				// of the time under load, and the next email waited for it. A record then costs
				// no transaction, so SMTP_SEND_BATCH is a window of emails committed at once,
				// each recorded as it is accepted, rather than a batch sent before its record.
				l, err := sentlog.Open(SentLogPath(cfg))
				if err != nil {
					return err
				}
				opts, closeLog = append(opts, sender.SentLog(l), sender.Window(cfg.SMTPSendBatch)), l.Close
			}
			snd := sender.New(s.DB, m, opts...)
			s.Go(func(ctx context.Context) error {
				// The sender is the mailer's only user: once it stops, the kept SMTP
				// connection ends with QUIT.
				defer func() { _, _ = closeMail(), closeLog() }()
				return snd.Run(ctx)
			})
			wake = snd.Wake
			// The commit that queued an email wakes the sender: no email waits for a poll.
			return s.Consume(ctx, Group, (&handlers.Notifier{}).Handlers(), consumer.AfterCommit(snd.Wake))
		}),
		service.API(func(s *service.Service) http.Handler {
			return (&api.API{DB: s.DB, Log: s.Log, Service: Name, Wake: wake}).Handler()
		}),
	)
}
