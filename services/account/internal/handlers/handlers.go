// Package handlers holds the Account Service's event handlers: the compensations it applies when
// another service refuses what an account started, through the store, in the transaction of the
// event they handle.
package handlers

import (
	"context"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// EffectRejected is the effect rejectAccount declares and records, as the catalog names it.
const EffectRejected = "account rejected"

// Handlers returns the Account Service's handlers. Their names are part of the consumer group's
// contract: renaming one re-reads the users topic for it.
func Handlers() []consumer.Handler {
	return []consumer.Handler{
		consumer.On("reject-account", rejectAccount, consumer.Effects(EffectRejected)),
	}
}

// rejectAccount compensates a registration the User Service refused: the account is marked
// rejected, with the reason, and is never active again.
func rejectAccount(ctx context.Context, tx *consumer.UnitOfWork, ev *event.UserRegistrationRejected) error {
	changed, err := store.MarkRejected(ctx, tx, ev.AccountID, ev.Reason)
	if err != nil || !changed {
		return err // an account deleted meanwhile is not rejected: no effect
	}
	cause := tx.Cause()
	return store.RecordEffect(ctx, tx, cause.ID, cause.CorrelationID, EffectRejected, ev.AccountID, time.Now())
}
