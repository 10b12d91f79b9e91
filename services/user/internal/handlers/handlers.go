// Package handlers holds the User Service's event handlers: they keep the users in step with the
// accounts, through the store, in the transaction of the event they handle.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

// ErrInvalidAccount is returned for an AccountCreated that breaks a business rule; the record is
// parked for a human rather than creating a broken user.
var ErrInvalidAccount = errors.New("invalid account")

// UserID is the ID of the user of an account: derived, so that every replica and every
// reprocessing agrees on it.
func UserID(accountID string) string { return envelope.DeriveUUID("user", accountID) }

// Handlers returns the User Service's handlers. Their names are part of the consumer group's
// contract: renaming one re-reads the accounts topic for it.
func Handlers() []consumer.Handler {
	return []consumer.Handler{
		consumer.On("create-user", createUser, consumer.Emits(new(event.UserCreated), new(event.UserRegistrationRejected))),
		consumer.On("delete-user", deleteUser, consumer.Emits(new(event.UserDeleted))),
	}
}

func createUser(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
	if err := validate(ev); err != nil {
		return consumer.Permanent(err) // retrying cannot make the account valid
	}
	u := event.UserCreated{
		UserID: UserID(ev.AccountID), AccountID: ev.AccountID, Username: ev.Username, Email: ev.Email,
		CreatedAt: ev.CreatedAt, Locale: ev.Locale, // an AccountCreated written before locale existed reads as the default
	}
	inserted, err := store.Insert(ctx, tx, store.User{
		ID: u.UserID, AccountID: u.AccountID, Username: u.Username, Email: u.Email, CreatedAt: u.CreatedAt,
	})
	if err != nil {
		return err
	}
	if inserted {
		return tx.Emit(ctx, &u)
	}
	// A conflict: either the account has its user already (the same fact told twice, not a
	// new one), or another live user holds the username.
	has, err := store.HasUser(ctx, tx, ev.AccountID)
	if err != nil || has {
		return err
	}
	return reject(ctx, tx, ev, fmt.Sprintf("username %q is taken", ev.Username))
}

// reject records and emits the rejection of ev's registration, once per account.
func reject(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated, reason string) error {
	at := tx.Cause().Time
	if at.IsZero() {
		at = ev.CreatedAt
	}
	at = at.UTC().Truncate(time.Millisecond)
	recorded, err := store.InsertRejection(ctx, tx, ev.AccountID, ev.Username, reason, at)
	if err != nil || !recorded {
		return err // rejected before
	}
	return tx.Emit(ctx, &event.UserRegistrationRejected{AccountID: ev.AccountID, Username: ev.Username, Reason: reason, RejectedAt: at})
}

func validate(ev *event.AccountCreated) error {
	switch {
	case strings.TrimSpace(ev.AccountID) == "":
		return fmt.Errorf("%w: empty accountId", ErrInvalidAccount)
	case strings.TrimSpace(ev.Username) == "":
		return fmt.Errorf("%w: account %s has an empty username", ErrInvalidAccount, ev.AccountID)
	case utf8.RuneCountInString(ev.Username) > event.MaxUsername || len(ev.Email) > event.MaxEmail:
		return fmt.Errorf("%w: account %s has a username over %d characters or an email over %d bytes",
			ErrInvalidAccount, ev.AccountID, event.MaxUsername, event.MaxEmail)
	}
	if addr, err := mail.ParseAddress(ev.Email); err != nil || addr.Address != ev.Email {
		return fmt.Errorf("%w: account %s has email %q, not a bare address", ErrInvalidAccount, ev.AccountID, ev.Email)
	}
	return nil
}

func deleteUser(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountDeleted) error {
	u, err := store.MarkDeleted(ctx, tx, ev.AccountID, ev.DeletedAt)
	if errors.Is(err, store.ErrNotFound) {
		return nil // no live user: already deleted, or never created (its creation was parked)
	}
	if err != nil {
		return err
	}
	return tx.Emit(ctx, &event.UserDeleted{
		UserID: UserID(ev.AccountID), AccountID: ev.AccountID, Username: u.Username, Email: u.Email, DeletedAt: ev.DeletedAt,
	})
}
