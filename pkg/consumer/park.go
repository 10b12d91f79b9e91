package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
)

// park puts the record on the group's dead-letter topic through the outbox, so parking commits
// with the rest of the batch: the record is never lost and never parked without its offset
// moving on. handler is "" for a record no handler saw (one that did not decode).
func (r *Runner) park(ctx context.Context, tx *batchTx, it *item, handler string, cause error) (result, error) {
	info := deadletter.Info{
		Group: r.cfg.Group, Handler: handler, Reason: deadletter.ReasonHandler, Class: deadletter.ClassPermanent,
		Error: cause.Error(), Attempts: max(it.attempts, 1), FirstFailure: it.firstFailure, LastFailure: it.lastFailure,
	}
	if handler == "" {
		info.Reason = decodeReason(cause)
	} else if !IsPermanent(cause) {
		info.Class = deadletter.ClassTransient // its retries ran out
	}
	info.Time = r.opts.now()
	if info.FirstFailure.IsZero() {
		info.FirstFailure, info.LastFailure = info.Time, info.Time
	}
	if err := tx.emit(ctx, deadletter.Build(r.dlq, it.rec, info)); err != nil {
		return result{handler: handler}, fmt.Errorf("park %s/%d@%d: %w", it.rec.Topic, it.rec.Partition, it.rec.Offset, err)
	}
	return result{outcome: OutcomeParked, handler: handler, err: cause}, nil
}

// decodeReason names why a record could not be decoded, for the choreo_dlq_reason header.
func decodeReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return deadletter.ReasonTooLarge
	case errors.Is(err, codec.ErrEmptyValue):
		return deadletter.ReasonEmpty
	case errors.Is(err, envelope.ErrMalformed):
		return deadletter.ReasonHeaders
	case errors.Is(err, codec.ErrTypeMismatch), errors.Is(err, codec.ErrWrongTopic):
		return deadletter.ReasonContract
	}
	return deadletter.ReasonDecode
}
