package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/services/user/internal/handlers"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

// AddUserRequest is the body of POST /users, the synchronous AddUser(user) of an orchestrated
// registration: the Account Service calls it instead of emitting AccountCreated.
type AddUserRequest struct {
	AccountID string    `json:"accountId"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"` // default: now
}

// syncRoutes adds the synchronous endpoints an orchestrator calls: POST /users (AddUser) and
// DELETE /users/{id} (DeleteUser). They apply the create-user handler's rules (its validation,
// one user per account, usernames unique among live users) through the same store functions,
// and emit no events: in an orchestrated registration the orchestrator, not the User Service,
// tells the next service what to do.
func (a *API) syncRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /users", a.addUser)
	mux.HandleFunc("DELETE /users/{id}", a.deleteUser)
}

// addUser answers 201 with the new user; with the account's existing user (200, or 410 if it
// was deleted since) when the account has one, so a retried call is safe; 409 when another live
// user holds the username; 400 for an account the event handler would park.
func (a *API) addUser(w http.ResponseWriter, r *http.Request) {
	var req AddUserRequest
	if err := httpapi.Decode(w, r, &req); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	if req.CreatedAt.IsZero() {
		req.CreatedAt = time.Now()
	}
	ev := event.AccountCreated{AccountID: req.AccountID, Username: req.Username, Email: req.Email, CreatedAt: req.CreatedAt.UTC().Truncate(time.Millisecond)}
	if err := handlers.Validate(&ev); err != nil {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "%v", err))
		return
	}
	u := store.User{ID: handlers.UserID(ev.AccountID), AccountID: ev.AccountID, Username: ev.Username, Email: ev.Email, CreatedAt: ev.CreatedAt}
	var inserted, has bool
	err := a.inTx(r.Context(), func(tx *sql.Tx) (err error) {
		if inserted, err = store.Insert(r.Context(), tx, u); err != nil || inserted {
			return err
		}
		has, err = store.HasUser(r.Context(), tx, u.AccountID)
		return err
	})
	switch {
	case err != nil:
		httpapi.WriteError(w, a.Log, err)
	case inserted:
		w.Header().Set("Location", "/users/"+u.ID)
		httpapi.WriteJSON(w, http.StatusCreated, u)
	case has:
		existing, err := store.ByAccount(r.Context(), a.DB, u.AccountID)
		a.write(w, existing, err, u.AccountID)
	default:
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeConflict, "username %q is taken", u.Username))
	}
}

// deleteUser answers 204 once the user is deleted, also when it was deleted before (a retried
// compensation is safe), and 404 for a user that never existed.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := a.inTx(r.Context(), func(tx *sql.Tx) error {
		u, err := store.Get(r.Context(), tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return httpapi.Errorf(httpapi.CodeNotFound, "no user %s", id)
		}
		if err != nil || u.DeletedAt != nil {
			return err
		}
		_, err = store.MarkDeleted(r.Context(), tx, u.AccountID, time.Now())
		return err
	})
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := a.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
