// Package api is the Account Service's HTTP API.
package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// Emitter adds an event to the outbox within a transaction and wakes the relay after commit.
type Emitter interface {
	Emit(ctx context.Context, tx *sql.Tx, env envelope.Envelope, ev event.Event) error
	Committed()
}

// API serves /accounts and GET /effects?correlationId=.
type API struct {
	DB   *sql.DB
	Emit Emitter
	Log  *slog.Logger
	Now  func() time.Time
	// Orchestrator, when set, makes registration orchestrated: the API calls the User and
	// Notification Services itself and emits no AccountCreated (see registerOrchestrated).
	// Default nil: choreography.
	Orchestrator Orchestrator
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := httpapi.NewServeMux()
	mux.HandleFunc("POST /accounts", a.register)
	mux.HandleFunc("/accounts", httpapi.MethodNotAllowed("POST"))
	mux.HandleFunc("GET /accounts/{id}", a.get)
	mux.HandleFunc("DELETE /accounts/{id}", a.delete)
	mux.HandleFunc("/accounts/{id}", httpapi.MethodNotAllowed("GET, DELETE"))
	mux.HandleFunc("GET /effects", a.effects)
	mux.HandleFunc("/effects", httpapi.MethodNotAllowed("GET"))
	return mux
}

// Registration is the body of POST /accounts.
type Registration struct {
	Username *string `json:"username"`
	Email    *string `json:"email"`
	// Locale is the user's language as a BCP 47 tag ("en", "de-AT"); optional, DefaultLocale if
	// absent. The welcome email is written in it.
	Locale *string `json:"locale"`
}

// DefaultLocale is the locale of a registration that gives none, and the default of the
// AccountCreated schema's locale field.
const DefaultLocale = "en"

// localeTag is the shape of a BCP 47 tag: a 2-3 letter language, then subtags.
var localeTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

// LocaleTag returns the registration's locale, DefaultLocale if it gives none, or an
// *httpapi.Error if it is not a BCP 47 tag.
func (r Registration) LocaleTag() (string, error) {
	if r.Locale == nil {
		return DefaultLocale, nil
	}
	l := strings.TrimSpace(*r.Locale)
	if len(l) > 35 || !localeTag.MatchString(l) {
		return "", httpapi.Errorf(httpapi.CodeInvalid, "locale %q is not a BCP 47 language tag such as en or de-AT", *r.Locale)
	}
	return l, nil
}

// Validate returns the normalised username and email, or an *httpapi.Error saying what is wrong.
func (r Registration) Validate() (username, email string, err error) {
	if r.Username == nil {
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "username is required")
	}
	if r.Email == nil {
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "email is required")
	}
	username, email = strings.TrimSpace(*r.Username), strings.TrimSpace(*r.Email)
	switch {
	case username == "":
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "username is empty")
	case utf8.RuneCountInString(username) > event.MaxUsername:
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "username is longer than %d characters", event.MaxUsername)
	case strings.IndexFunc(username, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "username must not contain spaces or control characters")
	case len(email) > event.MaxEmail:
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "email is longer than %d bytes", event.MaxEmail)
	}
	if err := ValidEmail(email); err != nil {
		return "", "", httpapi.Errorf(httpapi.CodeInvalid, "email %q is not a valid address", email)
	}
	return username, email, nil
}

// ValidEmail accepts a bare address (no display name) with a dotted domain.
func ValidEmail(s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return err
	}
	if addr.Name != "" || addr.Address != s {
		return errors.New("want a bare address")
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return errors.New("domain must be dotted")
	}
	return nil
}

func (a *API) register(w http.ResponseWriter, r *http.Request) {
	var req Registration
	if err := httpapi.Decode(w, r, &req); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	username, email, err := req.Validate()
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	locale, err := req.LocaleTag()
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	now := a.Now().UTC().Truncate(time.Millisecond)
	acc := store.Account{ID: uuid.NewString(), Username: username, Email: email, Status: "active", CreatedAt: now}
	if a.Orchestrator != nil {
		a.registerOrchestrated(w, r, acc, locale)
		return
	}
	id := envelope.NewID()
	err = a.inTx(r.Context(), func(tx *sql.Tx) error {
		if err := store.Insert(r.Context(), tx, acc); err != nil {
			return err
		}
		return a.Emit.Emit(r.Context(), tx, envelope.Envelope{ID: id, Time: now, CorrelationID: id},
			&event.AccountCreated{AccountID: acc.ID, Username: username, Email: email, CreatedAt: now, Locale: locale})
	})
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	w.Header().Set("Location", "/accounts/"+acc.ID)
	httpapi.WriteJSON(w, http.StatusCreated, map[string]string{"accountId": acc.ID, "status": acc.Status, "eventId": id})
}

// effects serves GET /effects?correlationId=: what the operation did to accounts outside Kafka
// (an account rejected), the shape choreo trace reads (trace.Effect).
func (a *API) effects(w http.ResponseWriter, r *http.Request) {
	corr := r.URL.Query().Get("correlationId")
	if corr == "" {
		httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter correlationId is required"))
		return
	}
	out, err := store.Effects(r.Context(), a.DB, "account-service", corr)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	acc, err := store.Get(r.Context(), a.DB, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		err = httpapi.Errorf(httpapi.CodeNotFound, "no account %s", r.PathValue("id"))
	}
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, acc)
}

// delete deletes an account. Deleting a deleted account answers as the first time did and emits
// nothing, so a retried DELETE is safe.
func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	accID := r.PathValue("id")
	now := a.Now().UTC().Truncate(time.Millisecond)
	id := envelope.NewID()
	err := a.inTx(r.Context(), func(tx *sql.Tx) error {
		if _, err := store.Get(r.Context(), tx, accID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return httpapi.Errorf(httpapi.CodeNotFound, "no account %s", accID)
			}
			return err
		}
		deleted, err := store.MarkDeleted(r.Context(), tx, accID, now)
		if err != nil || !deleted {
			return err
		}
		return a.Emit.Emit(r.Context(), tx, envelope.Envelope{ID: id, Time: now, CorrelationID: id},
			&event.AccountDeleted{AccountID: accID, DeletedAt: now})
	})
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	acc, err := store.Get(r.Context(), a.DB, accID)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, acc)
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
	a.Emit.Committed()
	return nil
}
