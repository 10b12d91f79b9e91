package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/services/account/internal/orchestrator"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// Orchestrator is what an orchestrated registration calls. *orchestrator.Client implements it;
// its errors wrap orchestrator.ErrUnavailable, ErrUsernameTaken or ErrRefused.
type Orchestrator interface {
	AddUser(ctx context.Context, u orchestrator.User) (userID string, err error)
	SendWelcome(ctx context.Context, w orchestrator.Welcome) error
	DeleteUser(ctx context.Context, userID string) error
}

var _ Orchestrator = (*orchestrator.Client)(nil)

// compensateTimeout bounds the DeleteUser of a registration that failed after its user was
// created; it runs even when the client has gone.
const compensateTimeout = 5 * time.Second

// registerOrchestrated registers acc the orchestrated way: AddUser, then SendEmail, then the
// account is stored; no event is emitted. A registration is accepted (201) only when every step
// succeeded, so the client's answer tells the truth about the whole operation:
//   - the User Service unavailable: 503, nothing stored anywhere;
//   - the username taken: 409, nothing stored;
//   - the Notification Service unavailable (down, or slower than the timeout): the user is
//     deleted again (compensation) and the answer is 503. If that DeleteUser fails too, the user
//     stays behind without an account: logged as an error, the inconsistency orchestration
//     without a durable log risks.
//
// The orchestrator keeps no record of a refused registration: it is lost unless the client
// retries. That is the price of a single point of control: the
// registration's availability is the product of the three services'.
func (a *API) registerOrchestrated(w http.ResponseWriter, r *http.Request, acc store.Account, locale string) {
	ctx := r.Context()
	op := envelope.NewID()
	userID, err := a.Orchestrator.AddUser(ctx, orchestrator.User{AccountID: acc.ID, Username: acc.Username, Email: acc.Email, CreatedAt: acc.CreatedAt})
	if err != nil {
		httpapi.WriteError(w, a.Log, stepError("the User Service", err))
		return
	}
	err = a.Orchestrator.SendWelcome(ctx, orchestrator.Welcome{
		UserID: userID, AccountID: acc.ID, Username: acc.Username, Email: acc.Email, Locale: locale, OperationID: op, StartedAt: acc.CreatedAt,
	})
	if err != nil {
		a.compensate(ctx, acc.ID, userID, err)
		httpapi.WriteError(w, a.Log, stepError("the Notification Service", err))
		return
	}
	err = a.inTx(ctx, func(tx *sql.Tx) error { return store.Insert(ctx, tx, acc) })
	if err != nil {
		// The user exists and the email is queued; only the account is missing. Not undone:
		// an email cannot be unsent. Logged for a human.
		a.Log.ErrorContext(ctx, "orchestrated registration: account not stored after its user and email", "account", acc.ID, "user", userID, "err", err)
		httpapi.WriteError(w, a.Log, err)
		return
	}
	w.Header().Set("Location", "/accounts/"+acc.ID)
	httpapi.WriteJSON(w, http.StatusCreated, map[string]string{"accountId": acc.ID, "status": acc.Status, "userId": userID, "operationId": op})
}

// compensate deletes the user of a registration whose later step failed.
func (a *API) compensate(ctx context.Context, accountID, userID string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), compensateTimeout)
	defer cancel()
	if err := a.Orchestrator.DeleteUser(ctx, userID); err != nil {
		a.Log.ErrorContext(ctx, "orchestrated registration: user left without an account (compensation failed)",
			"account", accountID, "user", userID, "cause", cause, "err", err)
	}
}

// stepError maps a failed step to what the client sees.
func stepError(service string, err error) error {
	switch {
	case errors.Is(err, orchestrator.ErrUsernameTaken):
		return httpapi.Errorf(httpapi.CodeConflict, "username is taken")
	case errors.Is(err, orchestrator.ErrUnavailable):
		return httpapi.Errorf(httpapi.CodeUnavailable, "%s is unavailable; the registration was not accepted, retry later", service)
	}
	return err // a refusal of a request this service validated: a bug, answered 500
}
