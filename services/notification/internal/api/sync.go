package api

import (
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/services/notification/internal/handlers"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// SendWelcomeRequest is the body of POST /emails/welcome, the synchronous SendEmail(email) of an
// orchestrated registration: the Account Service calls it instead of the Notification Service
// reacting to UserCreated.
type SendWelcomeRequest struct {
	UserID    string `json:"userId"`
	AccountID string `json:"accountId"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	// Locale is the BCP 47 tag the email is written in; "" writes English.
	Locale string `json:"locale"`
	// OperationID identifies the registration; it is recorded as the email's cause and
	// correlation ID, as an event's would be. Required.
	OperationID string `json:"operationId"`
	// StartedAt is when the registration began, for the chain latency metric. Default: now.
	StartedAt time.Time `json:"startedAt"`
}

// SendWelcomeResponse is the answer of POST /emails/welcome.
type SendWelcomeResponse struct {
	MessageID string `json:"messageId"`
	Status    string `json:"status"` // always "queued": the Sender delivers it
}

// CallType is recorded as the cause type of an email queued by a synchronous call, where an
// event's type would stand.
const CallType = "SendEmail"

func (a *API) syncRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /emails/welcome", a.sendWelcome)
	mux.HandleFunc("/emails/welcome", httpapi.MethodNotAllowed("POST"))
}

// sendWelcome queues the welcome email as the send-welcome-email handler does: the same text
// (handlers.WelcomeEmail), the same Message-ID (handlers.MessageID) and the same store.Queue, so
// one email per user: a retried call, or a UserCreated for the same user, queues nothing more
// and answers the same Message-ID. 202: the email is queued durably, the sender delivers it.
func (a *API) sendWelcome(w http.ResponseWriter, r *http.Request) {
	var req SendWelcomeRequest
	if err := httpapi.Decode(w, r, &req); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	if err := req.validate(); err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now()
	if req.StartedAt.IsZero() {
		req.StartedAt = at
	}
	subject, text := handlers.WelcomeEmail(req.Locale, req.Username)
	id := handlers.MessageID(handlers.Welcome, req.UserID)
	err := store.Queue(r.Context(), a.DB, store.Email{
		MessageID: id, Kind: handlers.Welcome, UserID: req.UserID, AccountID: req.AccountID, To: req.Email, Subject: subject, Body: text,
		Date: req.StartedAt.UTC().Truncate(time.Second), EventID: req.OperationID, EventType: CallType, CorrelationID: req.OperationID,
		QueuedAt: at, ChainStart: req.StartedAt,
	})
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	if a.Wake != nil {
		a.Wake()
	}
	httpapi.WriteJSON(w, http.StatusAccepted, SendWelcomeResponse{MessageID: id, Status: "queued"})
}

func (r SendWelcomeRequest) validate() error {
	for _, f := range []struct{ name, v string }{
		{"userId", r.UserID}, {"accountId", r.AccountID}, {"username", r.Username}, {"email", r.Email}, {"operationId", r.OperationID},
	} {
		if strings.TrimSpace(f.v) == "" {
			return httpapi.Errorf(httpapi.CodeInvalid, "%s is required", f.name)
		}
	}
	if addr, err := mail.ParseAddress(r.Email); err != nil || addr.Address != r.Email {
		return httpapi.Errorf(httpapi.CodeInvalid, "email %q is not a bare address", r.Email)
	}
	return nil
}
