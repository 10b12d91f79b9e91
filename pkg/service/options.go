package service

import (
	"context"
	"net/http"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/migrate"
)

// Option adds a part of a service to what Open sets up. Open applies the options in the order
// given, after the runtime (database, codec, producer, topics, relay) is open; when one fails,
// Open closes what it opened and returns the error, so a service's New is one call to Open.
type Option func(*parts)

type parts struct {
	migs  []migrate.Migrations
	steps []func(ctx context.Context, s *Service) error
}

func step(fn func(ctx context.Context, s *Service) error) Option {
	return func(p *parts) { p.steps = append(p.steps, fn) }
}

// Migrations adds the service's own table migrations, applied after the platform's inbox and
// outbox, in the order given. Default: none (the service has only the platform's tables).
func Migrations(migs ...migrate.Migrations) Option {
	return func(p *parts) { p.migs = append(p.migs, migs...) }
}

// Emits declares the events the service emits outside its handlers (from its HTTP API), as
// Service.Emits does. Default: none; Emit refuses an undeclared event.
func Emits(evs ...event.Event) Option {
	return step(func(_ context.Context, s *Service) error {
		s.Emits(evs...)
		return nil
	})
}

// Consume makes the service a member of group with handlers, as Service.Consume does. The group
// name is part of the service's contract: renaming it re-reads its topics from the start.
// Default: the service consumes nothing.
func Consume(group string, handlers []consumer.Handler, opts ...consumer.Opt) Option {
	return step(func(ctx context.Context, s *Service) error {
		return s.Consume(ctx, group, handlers, opts...)
	})
}

// API serves the handler api builds from the opened service (its DB, Log, Emit), under / beside
// the runtime's own routes, as Service.Serve does. Default: only the runtime's routes
// (/healthz, /readyz, /stats, /metrics).
func API(api func(s *Service) http.Handler) Option {
	return step(func(_ context.Context, s *Service) error {
		return s.Serve(api(s))
	})
}

// Setup runs fn on the opened service, for the parts that are the service's own (a sender
// started with Go, a collector added to Metrics). Default: nothing.
func Setup(fn func(ctx context.Context, s *Service) error) Option { return step(fn) }
