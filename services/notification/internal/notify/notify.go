// Package notify is the Notification Service: it turns user events into emails, records each
// one, and lists them over HTTP.
package notify

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the notification tables' migrations.
func Migrations() migrate.Migrations {
	return migrate.Dir("notification-service", migrations, "migrations")
}

// Kinds of email, as named in the catalog's effects.
const (
	Welcome  = "welcome"
	Farewell = "farewell"
)

// From is the sender of choreo's emails.
const From = "choreo <hello@choreo.local>"

// Notifier queues emails for user events; a Sender delivers them.
type Notifier struct {
	Now func() time.Time
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
	subject, text := WelcomeEmail(ev.Locale, ev.Username)
	return n.send(ctx, tx, Welcome, ev.UserID, ev.AccountID, ev.Email, subject, text)
}

// WelcomeEmail returns the subject and text of the welcome email to username in the language of
// locale, a BCP 47 tag: German for "de" and its regional forms, English for anything else
// (including "", what a UserCreated without a locale carries).
func WelcomeEmail(locale, username string) (subject, text string) {
	lang, _, _ := strings.Cut(strings.ToLower(locale), "-")
	switch lang {
	case "de":
		return "Willkommen bei choreo, " + username,
			fmt.Sprintf("Hallo %s,\n\ndein Konto ist bereit. Willkommen an Bord!\n\n-- choreo\n", username)
	default:
		return "Welcome to choreo, " + username,
			fmt.Sprintf("Hello %s,\n\nyour account is ready. Welcome aboard!\n\n-- choreo\n", username)
	}
}

func (n *Notifier) farewell(ctx context.Context, tx *consumer.Tx, ev *event.UserDeleted) error {
	return n.send(ctx, tx, Farewell, ev.UserID, ev.AccountID, ev.Email,
		"Goodbye from choreo, "+ev.Username,
		fmt.Sprintf("Hello %s,\n\nyour account has been deleted. We are sorry to see you go.\n\n-- choreo\n", ev.Username))
}

// send queues the email in the handler's transaction; the Sender delivers it once the
// transaction has committed. One email per (kind, user), whatever events arrive.
func (n *Notifier) send(ctx context.Context, tx *consumer.Tx, kind, userID, accountID, to, subject, text string) error {
	cause := tx.Cause()
	date := cause.Time.UTC().Truncate(time.Second)
	if date.IsZero() {
		date = n.Now().UTC().Truncate(time.Second)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO notifications
		(message_id, kind, user_id, account_id, recipient, subject, body, msg_date, event_id, event_type, correlation_id, status, queued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12) ON CONFLICT DO NOTHING`,
		MessageID(kind, userID), kind, userID, accountID, to, subject, text, date.Unix(),
		cause.ID, cause.Type, cause.CorrelationID, n.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("queue %s email to user %s: %w", kind, userID, err)
	}
	return nil
}

// Notification is an email as the API lists it.
type Notification struct {
	MessageID     string     `json:"messageId"`
	Kind          string     `json:"kind"`
	UserID        string     `json:"userId"`
	AccountID     string     `json:"accountId"`
	To            string     `json:"to"`
	Subject       string     `json:"subject"`
	EventID       string     `json:"eventId"`
	EventType     string     `json:"eventType"`
	CorrelationID string     `json:"correlationId"`
	Status        string     `json:"status"` // pending, sent or failed
	QueuedAt      time.Time  `json:"queuedAt"`
	SentAt        *time.Time `json:"sentAt,omitempty"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"lastError,omitempty"`
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
		event_id, event_type, correlation_id, status, queued_at, sent_at, attempts, last_error
		FROM notifications WHERE account_id = $1 ORDER BY queued_at, kind`, acc)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var (
			n       Notification
			queued  int64
			sent    sql.NullInt64
			lastErr sql.NullString
		)
		if err := rows.Scan(&n.MessageID, &n.Kind, &n.UserID, &n.AccountID, &n.To, &n.Subject,
			&n.EventID, &n.EventType, &n.CorrelationID, &n.Status, &queued, &sent, &n.Attempts, &lastErr); err != nil {
			httpapi.WriteError(w, a.Log, err)
			return
		}
		n.QueuedAt = time.UnixMilli(queued).UTC()
		if sent.Valid {
			t := time.UnixMilli(sent.Int64).UTC()
			n.SentAt = &t
		}
		n.LastError = lastErr.String
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
