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
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
	"github.com/choreo-dev/choreo/services/notification/internal/notify"
)

// Name is the service's name in the catalog.
const Name = "notification-service"

// Group is the service's consumer group. Changing it re-reads the users topic from the start.
const Group = "notification-service"

// DefaultHTTPAddr is where the API listens unless HTTP_ADDR says otherwise.
const DefaultHTTPAddr = "127.0.0.1:8083"

// MailDir is where, without SMTP_ADDR, emails are written as .eml files.
func MailDir(cfg service.Config) string { return filepath.Join(cfg.DataDir, "mail") }

// New builds the Notification Service. It sends mail through cfg.SMTPAddr when set, and writes
// .eml files under MailDir otherwise.
func New(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
	var (
		m         mail.Mailer
		err       error
		transport = "file"
	)
	if cfg.SMTPAddr != "" {
		m, err = mail.NewSMTPMailer(cfg.SMTPAddr)
		transport = "smtp"
	} else {
		m, err = mail.NewFileMailer(MailDir(cfg))
	}
	if err != nil {
		return nil, err
	}
	var wake func() // the sender's, for emails queued through the API
	return service.Open(ctx, Name, cfg, log,
		service.Migrations(notify.Migrations()),
		service.Setup(func(ctx context.Context, s *service.Service) error {
			sender := notify.NewSender(s.DB, m, s.Log)
			sender.Tracer, sender.Transport = s.Tracer, transport
			// The effect as the catalog names it ("welcome email"): where the chain latency is measured.
			sender.Delivered = func(kind string, chainStart time.Time) { s.EffectDone(kind+" email", chainStart) }
			s.Metrics.MustRegister(notify.NewCollector(s.DB, Name))
			s.Go(sender.Run)
			wake = sender.Wake
			return s.Consume(ctx, Group, (&notify.Notifier{Now: time.Now}).Handlers(), consumer.AfterCommit(sender.Wake))
		}),
		service.API(func(s *service.Service) http.Handler {
			return (&notify.API{DB: s.DB, Log: s.Log, Wake: wake}).Handler()
		}),
	)
}
