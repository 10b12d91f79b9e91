// Package api serves the Notification Service's HTTP API: the emails of an account, and the
// emails of one operation as effects for choreo trace.
package api

import (
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/services/notification/internal/store"
)

// API serves GET /notifications?accountId= and GET /effects?correlationId=, and the synchronous
// SendEmail of an orchestrated registration (POST /emails/welcome, see syncRoutes).
type API struct {
	DB  *sql.DB
	Log *slog.Logger
	// Service is the service's name in the catalog, which the effects carry.
	Service string
	// Wake, when set, is called after an email was queued through the API (the sender's Wake),
	// so that it leaves without waiting for the sender's next poll. Default nil.
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
	out, err := store.ByAccount(r.Context(), a.DB, acc)
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
	ns, err := store.ByCorrelation(r.Context(), a.DB, corr)
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	out := make([]trace.Effect, 0, len(ns))
	for _, n := range ns {
		out = append(out, trace.Effect{
			Service: a.Service, Effect: n.Kind + " email", EventID: n.EventID, CorrelationID: n.CorrelationID,
			Status: n.Status, At: n.QueuedAt, DoneAt: n.SentAt, Error: n.LastError,
		})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
