// Package notify is the Notification Service: it turns user events into emails, records each
// one, and lists them over HTTP.
package notify

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/sqlite"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the notification tables' migrations.
func Migrations() sqlite.Migrations {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // fixed at build time
	}
	return sqlite.Migrations{Component: "notification-service", FS: sub}
}

// Kinds of email, as named in the catalog's effects.
const (
	Welcome  = "welcome"
	Farewell = "farewell"
)

// From is the sender of choreo's emails.
const From = "choreo <hello@choreo.local>"

// Notifier sends emails for user events.
type Notifier struct {
	Mailer mail.Mailer
	Now    func() time.Time
}

// Handlers returns the Notification Service's handlers.
func (n *Notifier) Handlers() []consumer.Handler {
	return []consumer.Handler{
		consumer.On("send-welcome-email", n.welcome, consumer.Effects("welcome email")),
		consumer.On("send-farewell-email", n.farewell, consumer.Effects("farewell email")),
	}
}

// MessageID is the Message-ID of the email of kind for userID: the idempotency key that makes a
// resend recognisable as the same email.
func MessageID(kind, userID string) string {
	return envelope.DeriveUUID("email/"+kind, userID) + "@choreo.local"
}

func (n *Notifier) welcome(ctx context.Context, tx *consumer.Tx, ev *event.UserCreated) error {
	return n.send(ctx, tx, Welcome, ev.UserID, ev.AccountID, ev.Email,
		"Welcome to choreo, "+ev.Username,
		fmt.Sprintf("Hello %s,\n\nyour account is ready. Welcome aboard!\n\n-- choreo\n", ev.Username))
}

func (n *Notifier) farewell(ctx context.Context, tx *consumer.Tx, ev *event.UserDeleted) error {
	return n.send(ctx, tx, Farewell, ev.UserID, ev.AccountID, ev.Email,
		"Goodbye from choreo, "+ev.Username,
		fmt.Sprintf("Hello %s,\n\nyour account has been deleted. We are sorry to see you go.\n\n-- choreo\n", ev.Username))
}

// send records the email and then sends it, inside the handler's transaction: if sending fails
// the record is rolled back with it, and if the process dies after sending but before the commit,
// the redelivered event sends once more with the same Message-ID (the file mailer overwrites;
// an SMTP server or client can drop the duplicate by it).
func (n *Notifier) send(ctx context.Context, tx *consumer.Tx, kind, userID, accountID, to, subject, text string) error {
	cause := tx.Cause()
	msg := mail.Message{
		ID: MessageID(kind, userID), From: From, To: to, Subject: subject, Text: text,
		Date: cause.Time.UTC().Truncate(time.Second),
		Headers: map[string]string{
			"X-Choreo-Event-Id":       cause.ID,
			"X-Choreo-Correlation-Id": cause.CorrelationID,
		},
	}
	if msg.Date.IsZero() {
		msg.Date = n.Now().UTC().Truncate(time.Second)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO notifications
		(message_id, kind, user_id, account_id, recipient, subject, event_id, event_type, correlation_id, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		msg.ID, kind, userID, accountID, to, subject, cause.ID, cause.Type, cause.CorrelationID, n.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("record %s email to user %s: %w", kind, userID, err)
	}
	if rows, err := res.RowsAffected(); err != nil || rows == 0 {
		return err // this user already got this email
	}
	if err := n.Mailer.Send(ctx, msg); err != nil {
		err = fmt.Errorf("send %s email to user %s: %w", kind, userID, err)
		if !mail.IsTemporary(err) {
			return consumer.Permanent(err) // an invalid address or a 5xx: sending again fails again
		}
		return err
	}
	return nil
}

// Notification is a sent email as the API lists it.
type Notification struct {
	MessageID     string    `json:"messageId"`
	Kind          string    `json:"kind"`
	UserID        string    `json:"userId"`
	AccountID     string    `json:"accountId"`
	To            string    `json:"to"`
	Subject       string    `json:"subject"`
	EventID       string    `json:"eventId"`
	EventType     string    `json:"eventType"`
	CorrelationID string    `json:"correlationId"`
	SentAt        time.Time `json:"sentAt"`
}

// API serves GET /notifications?accountId=.
type API struct {
	DB  *sql.DB
	Log *slog.Logger
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notifications", a.list)
	mux.HandleFunc("/notifications", httpapi.MethodNotAllowed("GET"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, nil, httpapi.Errorf(httpapi.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	acc := r.URL.Query().Get("accountId")
	if acc == "" {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter accountId is required"))
		return
	}
	rows, err := a.DB.QueryContext(r.Context(), `SELECT message_id, kind, user_id, account_id, recipient, subject,
		event_id, event_type, correlation_id, sent_at FROM notifications WHERE account_id = $1 ORDER BY sent_at, kind`, acc)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		var sent int64
		if err := rows.Scan(&n.MessageID, &n.Kind, &n.UserID, &n.AccountID, &n.To, &n.Subject,
			&n.EventID, &n.EventType, &n.CorrelationID, &sent); err != nil {
			httpapi.WriteError(w, a.Log, err)
			return
		}
		n.SentAt = time.UnixMilli(sent).UTC()
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
