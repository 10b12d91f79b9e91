// Package usersvc wires the User Service on choreo's service runtime. The service's main and
// `choreo dev` both build it with New.
package usersvc

import (
	"context"
	"log/slog"

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
	s, err := service.Open(ctx, Name, cfg, log, store.Migrations())
	if err != nil {
		return nil, err
	}
	if err := s.Consume(ctx, Group, handlers.Handlers()); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Serve((&api.API{DB: s.DB, Log: s.Log}).Handler()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
