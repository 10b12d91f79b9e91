// Package users is the User Service: its user records, the handlers that keep them in step with
// accounts, and its HTTP API.
package users

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the user tables' migrations.
func Migrations() migrate.Migrations { return migrate.Dir("user-service", migrations, "migrations") }

// ErrInvalidAccount is returned for an AccountCreated that breaks a business rule; the record is
// parked for a human rather than creating a broken user.
var ErrInvalidAccount = errors.New("invalid account")

// UserID is the ID of the user of an account: derived, so that every replica and every
// reprocessing agrees on it.
func UserID(accountID string) string { return envelope.DeriveUUID("user", accountID) }

// Handlers returns the User Service's handlers.
func Handlers() []consumer.Handler {
	return []consumer.Handler{
		consumer.On("create-user", createUser, consumer.Emits(new(event.UserCreated), new(event.UserRegistrationRejected))),
		consumer.On("delete-user", deleteUser, consumer.Emits(new(event.UserDeleted))),
	}
}

func createUser(ctx context.Context, tx *consumer.Tx, ev *event.AccountCreated) error {
	if err := validate(ev); err != nil {
		return consumer.Permanent(err) // retrying cannot make the account valid
	}
	u := event.UserCreated{
		UserID: UserID(ev.AccountID), AccountID: ev.AccountID, Username: ev.Username, Email: ev.Email,
		CreatedAt: ev.CreatedAt, Locale: ev.Locale, // an AccountCreated written before locale existed reads as the default
	}
	switch out, err := addUser(ctx, tx, u); {
	case err != nil:
		return err
	case out == userCreated:
		return tx.Emit(ctx, &u)
	case out == userExisted:
		return nil // the same fact told twice, not a new one
	}
	return reject(ctx, tx, ev, fmt.Sprintf("username %q is taken", ev.Username))
}

// reject records and emits the rejection of ev's registration, once per account.
func reject(ctx context.Context, tx *consumer.Tx, ev *event.AccountCreated, reason string) error {
	at := tx.Cause().Time
	if at.IsZero() {
		at = ev.CreatedAt
	}
	at = at.UTC().Truncate(time.Millisecond)
	res, err := tx.ExecContext(ctx, `INSERT INTO rejections (account_id, username, reason, rejected_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, ev.AccountID, ev.Username, reason, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("record rejection of account %s: %w", ev.AccountID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
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
	case utf8.RuneCountInString(ev.Username) > 64 || len(ev.Email) > 254:
		return fmt.Errorf("%w: account %s has a username over 64 characters or an email over 254 bytes", ErrInvalidAccount, ev.AccountID)
	}
	if addr, err := mail.ParseAddress(ev.Email); err != nil || addr.Address != ev.Email {
		return fmt.Errorf("%w: account %s has email %q, not a bare address", ErrInvalidAccount, ev.AccountID, ev.Email)
	}
	return nil
}

func deleteUser(ctx context.Context, tx *consumer.Tx, ev *event.AccountDeleted) error {
	username, email, deleted, err := markDeleted(ctx, tx, ev.AccountID, ev.DeletedAt)
	if err != nil || !deleted {
		return err // no live user: already deleted, or never created (its creation was parked)
	}
	return tx.Emit(ctx, &event.UserDeleted{
		UserID: UserID(ev.AccountID), AccountID: ev.AccountID, Username: username, Email: email, DeletedAt: ev.DeletedAt,
	})
}

// User is a user record as the API shows it.
type User struct {
	ID        string     `json:"userId"`
	AccountID string     `json:"accountId"`
	Username  string     `json:"username"`
	Email     string     `json:"email"`
	CreatedAt time.Time  `json:"createdAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// API serves /users.
type API struct {
	DB  *sql.DB
	Log *slog.Logger
}

// Handler returns the API's routes: GET /users/{id} and GET /users?accountId=.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.write(w, r, `id = $1`, r.PathValue("id"))
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		acc := r.URL.Query().Get("accountId")
		if acc == "" {
			httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter accountId is required"))
			return
		}
		a.write(w, r, `account_id = $1`, acc)
	})
	a.syncRoutes(mux)
	mux.HandleFunc("/users/{id}", httpapi.MethodNotAllowed("GET, DELETE"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, nil, httpapi.Errorf(httpapi.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (a *API) write(w http.ResponseWriter, r *http.Request, where, arg string) {
	var (
		u       User
		created int64
		deleted sql.NullInt64
	)
	err := a.DB.QueryRowContext(r.Context(), `SELECT id, account_id, username, email, created_at, deleted_at FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.AccountID, &u.Username, &u.Email, &created, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeNotFound, "no user %s", arg))
		return
	}
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	status := http.StatusOK
	if deleted.Valid {
		t := time.UnixMilli(deleted.Int64).UTC()
		u.DeletedAt = &t
		status = http.StatusGone
	}
	httpapi.WriteJSON(w, status, u)
}
