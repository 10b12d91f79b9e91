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
	"github.com/choreo-dev/choreo/pkg/trace"
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

// Service is the Notification Service's name, as the catalog knows it.
const Service = "notification-service"

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

func (n *Notifier) welcome(ctx context.Context, tx *consumer.UnitOfWork, ev *event.UserCreated) error {
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

func (n *Notifier) farewell(ctx context.Context, tx *consumer.UnitOfWork, ev *event.UserDeleted) error {
	return n.send(ctx, tx, Farewell, ev.UserID, ev.AccountID, ev.Email,
		"Goodbye from choreo, "+ev.Username,
		fmt.Sprintf("Hello %s,\n\nyour account has been deleted. We are sorry to see you go.\n\n-- choreo\n", ev.Username))
}

// send queues the email in the handler's transaction; the Sender delivers it once the
// transaction has committed. One email per (kind, user), whatever events arrive.
func (n *Notifier) send(ctx context.Context, tx *consumer.UnitOfWork, kind, userID, accountID, to, subject, text string) error {
	cause := tx.Cause()
	date := cause.Time.UTC().Truncate(time.Second)
	if date.IsZero() {
		date = n.Now().UTC().Truncate(time.Second)
	}
	return queue(ctx, tx, email{
		kind: kind, userID: userID, accountID: accountID, to: to, subject: subject, text: text, date: date,
		causeID: cause.ID, causeType: cause.Type, correlationID: cause.CorrelationID,
		queuedAt: n.Now(), chainStart: cause.ChainStart(),
	})
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

// API serves GET /notifications?accountId= and GET /effects?correlationId=.
type API struct {
	DB  *sql.DB
	Log *slog.Logger
	// Wake, when set, is called after an email was queued through the API (the Sender's Wake),
	// so that it leaves without waiting for the Sender's next tick. Default nil.
	Wake func()
	// Now is the clock of emails queued through the API. Default time.Now.
	Now func() time.Time
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := httpapi.NewServeMux()
	mux.HandleFunc("GET /notifications", a.list)
	mux.HandleFunc("/notifications", httpapi.MethodNotAllowed("GET"))
	a.syncRoutes(mux)
	mux.HandleFunc("GET /effects", a.effects)
	mux.HandleFunc("/effects", httpapi.MethodNotAllowed("GET"))
	return mux
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	acc := r.URL.Query().Get("accountId")
	if acc == "" {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter accountId is required"))
		return
	}
	out, err := Store{DB: a.DB}.ByAccount(r.Context(), acc)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// effects serves GET /effects?correlationId=: the emails of one operation as effects, the shape
// choreo trace reads (trace.Effect).
func (a *API) effects(w http.ResponseWriter, r *http.Request) {
	corr := r.URL.Query().Get("correlationId")
	if corr == "" {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter correlationId is required"))
		return
	}
	ns, err := Store{DB: a.DB}.ByCorrelation(r.Context(), corr)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	out := make([]trace.Effect, 0, len(ns))
	for _, n := range ns {
		out = append(out, trace.Effect{
			Service: Service, Effect: n.Kind + " email", EventID: n.EventID, CorrelationID: n.CorrelationID,
			Status: n.Status, At: n.QueuedAt, DoneAt: n.SentAt, Error: n.LastError,
		})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
