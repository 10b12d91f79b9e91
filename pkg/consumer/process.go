package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
)

// item is one record of a batch with its decoded event, and the failures of its handler so far.
type item struct {
	rec *kgo.Record
	codec.Decoded
	decodeErr error // the record cannot be decoded: it is parked
	claim     claimState
	// parkErr is set once the record's handler has failed for good: the next apply parks the
	// record without calling the handler again.
	parkErr                   error
	attempts                  int
	firstFailure, lastFailure time.Time
}

// outcomeFailed is the outcome of a record whose handler failed transiently: the batch stops
// before it, and it is retried or parked (retryOrPark). It is never observed.
const outcomeFailed Outcome = "failed"

// result is what applying one record came to.
type result struct {
	outcome Outcome
	handler string        // "" when no handler saw the record
	took    time.Duration // how long the handler ran
	err     error         // why the record failed or was parked
}

// failure is a handler failure that stopped an apply before item it.
type failure struct {
	it      *item
	handler string
	err     error
}

// errPoisoned reports a handler failure that rolled back the whole transaction (not just its
// savepoint): nothing of the batch was applied.
type errPoisoned struct{ failure }

func (e *errPoisoned) Error() string { return e.err.Error() }

// processPartition applies one partition's records, in order, each batch in one transaction,
// and marks what committed for the next offset commit. A transient handler failure commits the
// records before it, waits (the partition's worker only), and retries the failing record within
// the RetryPolicy; a permanent one, or one past the policy, parks the record. Rows that handlers
// held back for commit (UnitOfWork.Insert) and the database refused make it apply the batch
// again guarded, where they fail their own handlers. A failure of the database itself is
// retried until ctx is done. It returns only ctx's error.
func (r *Runner) processPartition(ctx context.Context, recs []*kgo.Record) error {
	batch, err := r.decode(ctx, recs)
	if err != nil {
		return err
	}
	dbBackoff := 10 * time.Millisecond
	guarded := false
	for len(batch) > 0 {
		applied, failed, err := r.apply(ctx, batch, guarded)
		var (
			poisoned *errPoisoned
			deferred *errDeferredInsert
		)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &poisoned):
			// From now on each record under a savepoint, so a failure undoes only its own.
			applied, failed, guarded = 0, &poisoned.failure, true
		case errors.As(err, &deferred):
			// The rows held back for commit were refused and nothing of the batch was applied.
			// Guarded, nothing is held back: each row is written in its handler's savepoint,
			// and a bad one fails its handler, which is retried or parked. guarded never goes
			// back to false, so this happens at most once.
			r.opts.log.Warn("writing the batch's rows at commit failed; applying it record by record",
				"topic", batch[0].rec.Topic, "partition", batch[0].rec.Partition, "offset", batch[0].rec.Offset, "err", err)
			guarded = true
			continue
		case err != nil:
			r.opts.log.Error("applying records failed; retrying", "topic", batch[0].rec.Topic,
				"partition", batch[0].rec.Partition, "offset", batch[0].rec.Offset, "err", err, "backoff", dbBackoff)
			if !sleep(ctx, dbBackoff) {
				return ctx.Err()
			}
			dbBackoff = min(2*dbBackoff, 5*time.Second)
			continue
		}
		dbBackoff = 10 * time.Millisecond
		if applied > 0 {
			r.client.MarkCommitRecords(batch[applied-1].rec)
			batch = batch[applied:]
		}
		if failed != nil && !r.retryOrPark(ctx, failed) {
			return ctx.Err()
		}
	}
	return nil
}

// retryOrPark counts a handler failure on its record. A permanent failure, or one past the
// RetryPolicy, marks the record for the next apply to park; any other waits out its backoff
// first. It reports false when ctx ended the wait.
func (r *Runner) retryOrPark(ctx context.Context, f *failure) bool {
	it, now := f.it, r.opts.now()
	it.attempts++
	if it.firstFailure.IsZero() {
		it.firstFailure = now
	}
	it.lastFailure = now
	wait := r.opts.retry.backoff(it.attempts)
	if IsPermanent(f.err) || it.attempts >= r.opts.retry.MaxAttempts || now.Add(wait).Sub(it.firstFailure) > r.opts.retry.MaxElapsed {
		it.parkErr = f.err
		return true
	}
	r.metrics.add(f.handler, func(s *Stats) { s.Retried++ })
	r.observe(Observation{Handler: f.handler, Outcome: OutcomeRetried, EventTime: it.Envelope.Time, ChainTime: it.Envelope.ChainStart()})
	r.opts.log.Warn("handler failed; retrying", "handler", f.handler, "event", it.Envelope.ID,
		"attempt", it.attempts, "backoff", wait, "err", f.err)
	return sleep(ctx, wait)
}

// sleep waits d or until ctx is done, and reports whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// apply applies batch in one transaction. It stops before the first record whose handler fails
// transiently, commits what came before, and returns how many records it committed and the
// failure. Permanent failures and undecodable records are parked in the same transaction.
//
// Unguarded, records get no savepoints: the common case, where every handler succeeds, saves
// two statements a record. The first handler failure then rolls back the whole batch (as
// errPoisoned), and the caller applies it again guarded. Handlers change only the database
// (effects outside it go through outboxes), so running them again is safe.
func (r *Runner) apply(ctx context.Context, batch []item, guarded bool) (applied int, failed *failure, err error) {
	r.stmts.prepareWanted(ctx)
	tx, err := r.begin(ctx, guarded)
	if err != nil {
		return 0, nil, err
	}
	notes := make([]note, 0, len(batch))
	defer func() {
		if err != nil {
			tx.rollback()
			r.abandon(notes)
		}
	}()
	if err := r.claimAll(ctx, tx, batch); err != nil {
		return 0, nil, err
	}
	for i := range batch {
		it := &batch[i]
		n := note{eventTime: it.Envelope.Time, chainTime: it.Envelope.ChainStart()}
		rctx := ctx
		if r.opts.tracer != nil {
			rctx, n.span = r.opts.tracer.StartProcess(ctx, it.rec, r.cfg.Group)
		}
		n.result, err = r.applyOne(rctx, tx, it)
		notes = append(notes, n)
		if err != nil {
			return 0, nil, err
		}
		if n.outcome == outcomeFailed {
			failed = &failure{it: it, handler: n.handler, err: n.err}
			break
		}
		applied++
	}
	if err := tx.commit(ctx); err != nil {
		return 0, nil, err
	}
	r.cfg.Relay.Notify()
	for _, fn := range r.opts.afterCommit {
		fn()
	}
	r.report(notes)
	return applied, failed, nil
}

// claimAll resets the batch's inbox claims and, in an unguarded transaction (applied whole or
// rolled back whole), claims every event a handler will see with a few multi-row statements
// instead of one per record. A guarded one claims each record under its savepoint.
func (r *Runner) claimAll(ctx context.Context, tx *batchTx, batch []item) error {
	claims := make([]*item, 0, len(batch))
	for i := range batch {
		it := &batch[i]
		it.claim = claimPending
		if it.decodeErr == nil && it.parkErr == nil && r.handlers[it.Type.Name] != nil {
			claims = append(claims, it)
		}
	}
	if tx.guarded || len(claims) < 2 {
		return nil
	}
	return tx.inbox.claimAll(ctx, tx.sql, claims)
}

// applyOne applies one record in the batch's transaction. An error is the transaction's: the
// batch is rolled back.
func (r *Runner) applyOne(ctx context.Context, tx *batchTx, it *item) (result, error) {
	if it.decodeErr != nil {
		return r.park(ctx, tx, it, "", it.decodeErr)
	}
	h := r.handlers[it.Type.Name]
	switch {
	case h == nil:
		return result{outcome: OutcomeIgnored}, nil
	case it.parkErr != nil:
		return r.park(ctx, tx, it, h.name, it.parkErr)
	}
	return r.handle(ctx, tx, it, h)
}

// handle runs h on the record's event unless the inbox shows the group processed it before.
func (r *Runner) handle(ctx context.Context, tx *batchTx, it *item, h *Handler) (result, error) {
	res := result{handler: h.name}
	if err := tx.savepoint(ctx); err != nil {
		return res, err
	}
	fresh, err := tx.inbox.claim(ctx, it)
	if err != nil {
		return res, err
	}
	if !fresh {
		res.outcome = OutcomeDuplicate
		return res, tx.release(ctx)
	}
	start := time.Now()
	res.err = h.fn(ctx, &UnitOfWork{tx: tx, r: r, h: h, cause: it.Envelope}, it.Event)
	res.took = time.Since(start)
	if res.err != nil {
		return r.handlerFailed(ctx, tx, it, res)
	}
	res.outcome = OutcomeHandled
	return res, tx.release(ctx)
}

// handlerFailed undoes what a failed handler did. A transient failure stops the batch before
// the record (outcomeFailed); a permanent one parks it at once.
func (r *Runner) handlerFailed(ctx context.Context, tx *batchTx, it *item, res result) (result, error) {
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err := tx.rollbackTo(ctx); err != nil {
		// Unguarded, or the failure took the whole transaction with it: nothing of the batch
		// can be kept.
		return res, &errPoisoned{failure{it: it, handler: res.handler, err: res.err}}
	}
	if err := tx.release(ctx); err != nil {
		return res, err
	}
	if !IsPermanent(res.err) {
		res.outcome = outcomeFailed
		return res, nil
	}
	it.attempts++
	it.firstFailure, it.lastFailure = r.opts.now(), r.opts.now()
	r.opts.log.WarnContext(ctx, "handler failed permanently; parking record", "handler", res.handler, "event", it.Envelope.ID, "err", res.err)
	parked, err := r.park(ctx, tx, it, res.handler, res.err)
	parked.took = res.took
	return parked, err
}
