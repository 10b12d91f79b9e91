// Package handlers holds the Notification Service's event handlers: they turn user events into
// emails and queue them, through the store, in the handler's transaction; the sender delivers
// them once it has committed.
package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// Kinds of email, as named in the catalog's effects.
const (
	Welcome  = "welcome"
	Farewell = "farewell"
)

// From is the sender of choreo's emails.
const From = "choreo <hello@choreo.local>"

// Notifier queues emails for user events.
type Notifier struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handlers returns the Notification Service's handlers. Their names are part of the consumer
// group's contract: renaming one makes it handle the users topic's history again.
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
	return n.queue(ctx, tx, Welcome, ev.UserID, ev.AccountID, ev.Email, subject, text)
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
	return n.queue(ctx, tx, Farewell, ev.UserID, ev.AccountID, ev.Email,
		"Goodbye from choreo, "+ev.Username,
		fmt.Sprintf("Hello %s,\n\nyour account has been deleted. We are sorry to see you go.\n\n-- choreo\n", ev.Username))
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

// queue queues the email in the handler's transaction; the sender delivers it once the
// transaction has committed. One email per (kind, user), whatever events arrive.
func (n *Notifier) queue(ctx context.Context, tx *consumer.UnitOfWork, kind, userID, accountID, to, subject, text string) error {
	cause := tx.Cause()
	now := n.now()
	date := cause.Time.UTC().Truncate(time.Second)
	if date.IsZero() {
		date = now.UTC().Truncate(time.Second)
	}
	tp, ts := telemetry.Traceparent(ctx)
	return store.Queue(ctx, tx, store.Email{
		MessageID: MessageID(kind, userID), Kind: kind, UserID: userID, AccountID: accountID, To: to, Subject: subject, Body: text,
		Date: date, EventID: cause.ID, EventType: cause.Type, CorrelationID: cause.CorrelationID, QueuedAt: now,
		Traceparent: tp, Tracestate: ts, ChainStart: cause.ChainStart(),
	})
}
