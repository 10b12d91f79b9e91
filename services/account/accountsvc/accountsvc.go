// Package accountsvc wires the Account Service: the accounts store and HTTP API on choreo's
// service runtime. The service's main and `choreo dev` both build it with New.
package accountsvc

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/internal/api"
	"github.com/choreo-dev/choreo/services/account/internal/handlers"
	"github.com/choreo-dev/choreo/services/account/internal/store"
)

// Name is the service's name in the catalog.
const Name = "account-service"

// Group is the service's consumer group, for the compensations it applies.
const Group = "account-service"

// DefaultHTTPAddr is where the API listens unless HTTP_ADDR says otherwise.
const DefaultHTTPAddr = "127.0.0.1:8080"

// New builds the Account Service with choreographed registration.
func New(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
	return NewWith(ctx, cfg, log, Registration{Mode: Choreography})
}

// NewWith builds the Account Service with the registration settings reg.
func NewWith(ctx context.Context, cfg service.Config, log *slog.Logger, reg Registration) (*service.Service, error) {
	if err := reg.Validate(); err != nil {
		return nil, err
	}
	orch, err := reg.orchestrator()
	if err != nil {
		return nil, err
	}
	return service.Open(ctx, Name, cfg, log,
		service.Migrations(store.Migrations()),
		service.Emits(new(event.AccountCreated), new(event.AccountDeleted)),
		service.Consume(Group, handlers.Handlers()),
		service.API(func(s *service.Service) http.Handler {
			a := &api.API{DB: s.DB, Emit: emitter{s}, Log: s.Log, Now: time.Now}
			if orch != nil {
				a.Orchestrator = orch
				s.Log.Info("registration is orchestrated", "users", reg.UserURL, "notifications", reg.NotificationURL, "timeout", reg.Timeout)
			}
			return a.Handler()
		}),
	)
}

// emitter is the service as the API's Emitter: the outbox, and the relay woken after commit.
type emitter struct{ s *service.Service }

func (e emitter) Emit(ctx context.Context, tx *sql.Tx, env envelope.Envelope, ev event.Event) error {
	return e.s.Emit(ctx, tx, env, ev)
}

func (e emitter) Committed() { e.s.Relay.Notify() }
