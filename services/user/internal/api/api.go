// Package api is the User Service's HTTP API: it reads users through the store.
package api

import (
	"database/sql"
	"errors"
	"log/slog"
	"net/http"

	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

// API serves /users.
type API struct {
	DB  *sql.DB
	Log *slog.Logger
}

// Handler returns the API's routes: GET /users/{id} and GET /users?accountId=, and the
// synchronous AddUser and DeleteUser (see syncRoutes).
func (a *API) Handler() http.Handler {
	mux := httpapi.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		u, err := store.Get(r.Context(), a.DB, id)
		a.write(w, u, err, id)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		acc := r.URL.Query().Get("accountId")
		if acc == "" {
			httpapi.WriteError(w, a.Log, httpapi.Errorf(httpapi.CodeInvalid, "query parameter accountId is required"))
			return
		}
		u, err := store.ByAccount(r.Context(), a.DB, acc)
		a.write(w, u, err, acc)
	})
	a.syncRoutes(mux)
	mux.HandleFunc("/users/{id}", httpapi.MethodNotAllowed("GET, DELETE"))
	return mux
}

// write answers with the user: 200 when live, 410 Gone with the record when deleted.
func (a *API) write(w http.ResponseWriter, u store.User, err error, arg string) {
	if errors.Is(err, store.ErrNotFound) {
		err = httpapi.Errorf(httpapi.CodeNotFound, "no user %s", arg)
	}
	if err != nil {
		httpapi.WriteError(w, a.Log, err)
		return
	}
	status := http.StatusOK
	if u.DeletedAt != nil {
		status = http.StatusGone
	}
	httpapi.WriteJSON(w, status, u)
}
