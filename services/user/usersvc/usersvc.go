// Package usersvc wires the User Service on choreo's service runtime. The service's main and
// `choreo dev` both build it with New.
package usersvc

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/user/internal/api"
	"github.com/choreo-dev/choreo/services/user/internal/handlers"
	"github.com/choreo-dev/choreo/services/user/internal/store"
)

// Name is the service's name in the catalog.
const Name = "user-service"

// Group is the service's consumer group. Changing it re-reads the accounts topic from the start.
const Group = "user-service"

// DefaultHTTPAddr is where the API listens unless HTTP_ADDR says otherwise.
const DefaultHTTPAddr = "127.0.0.1:8082"

// New builds the User Service.
func New(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
	return service.Open(ctx, Name, cfg, log,
		service.Migrations(store.Migrations()),
		service.Consume(Group, handlers.Handlers()),
		service.API(func(s *service.Service) http.Handler { return (&api.API{DB: s.DB, Log: s.Log}).Handler() }),
	)
}
