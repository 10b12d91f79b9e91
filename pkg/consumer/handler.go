// Package consumer runs choreo handlers: typed functions that react to one event each, inside a
// database transaction that also records the event as processed (the inbox) and holds the events
// the handler emits (the outbox). Offsets are committed only after that transaction, so a crash
// or a rebalance redelivers at most what was not yet committed, and the inbox turns a
// redelivery into a no-op.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/choreo-dev/choreo/pkg/event"
)

// ErrUndeclaredEmit is returned by UnitOfWork.Emit for an event the handler did not declare
// with Emits: the declaration is what the catalog is checked against, so it must be the truth.
var ErrUndeclaredEmit = errors.New("handler emits an event it did not declare")

// HandlerFunc is the form every handler takes once registered, and what middleware wraps.
// An error means the event could not be applied: the transaction's changes for this event are
// rolled back and the record is parked on the dead-letter topic.
type HandlerFunc func(ctx context.Context, tx *UnitOfWork, ev event.Event) error

// Middleware adds a cross-cutting concern (recovery, logging, metrics) around a handler.
type Middleware func(HandlerFunc) HandlerFunc

// Handler is a registered reaction to one event type.
type Handler struct {
	name     string
	consumes string
	emits    []string
	effects  []string
	fn       HandlerFunc
}

// HandlerOpt declares what a handler does besides changing its service's state.
type HandlerOpt func(*Handler)

// Emits declares the events the handler may emit, given as zero values: new(event.UserCreated).
func Emits(evs ...event.Event) HandlerOpt {
	return func(h *Handler) {
		for _, ev := range evs {
			h.emits = append(h.emits, event.NameOf(ev))
		}
	}
}

// Effects declares the handler's side effects outside Kafka and its database, by the names the
// catalog uses (e.g. "welcome email").
func Effects(names ...string) HandlerOpt {
	return func(h *Handler) { h.effects = append(h.effects, names...) }
}

// On registers fn as the handler named name for the event type of its argument.
//
// The name is part of the service's contract: it identifies the handler in the catalog, in logs
// and on parked records. Handlers of one consumer group share its committed offsets and inbox,
// so renaming a handler does not re-read history, but changing the group does.
func On[T any, P interface {
	*T
	event.Event
}](name string, fn func(ctx context.Context, tx *UnitOfWork, ev P) error, opts ...HandlerOpt) Handler {
	h := Handler{
		name:     name,
		consumes: event.NameOf(P(new(T))),
		fn: func(ctx context.Context, tx *UnitOfWork, ev event.Event) error {
			typed, ok := ev.(P)
			if !ok {
				return fmt.Errorf("handler %s: got %T, want %T", name, ev, P(nil))
			}
			return fn(ctx, tx, typed)
		},
	}
	for _, o := range opts {
		o(&h)
	}
	return h
}

// Name returns the handler's registered name.
func (h Handler) Name() string { return h.name }

// Consumes returns the name of the event the handler reacts to.
func (h Handler) Consumes() string { return h.consumes }

// EmitsEvents returns the names of the events the handler declared.
func (h Handler) EmitsEvents() []string { return slices.Clone(h.emits) }

// EffectNames returns the handler's declared side effects.
func (h Handler) EffectNames() []string { return slices.Clone(h.effects) }

// Recover turns a panic in a handler into an error, so one bad event is parked instead of
// crashing the service (and being redelivered into the same panic forever).
func Recover(next HandlerFunc) HandlerFunc {
	return func(ctx context.Context, tx *UnitOfWork, ev event.Event) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", ErrPanic, p)
			}
		}()
		return next(ctx, tx, ev)
	}
}

// ErrPanic wraps the value of a recovered handler panic.
var ErrPanic = errors.New("handler panicked")
