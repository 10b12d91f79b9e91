package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/codec"
)

// decode returns the batch of recs, decoded. A record whose schema the registry could not be
// asked about is not undecodable, only not decodable yet: decoding is retried with backoff
// (holding the partition, which keeps its order) until the registry answers or ctx is done.
func (r *Runner) decode(ctx context.Context, recs []*kgo.Record) ([]item, error) {
	batch := make([]item, len(recs))
	for i, rec := range recs {
		batch[i].rec = rec
		r.decodeItem(ctx, &batch[i])
	}
	backoff := 50 * time.Millisecond
	for r.redecode(ctx, batch) {
		r.opts.log.Warn("schema registry unavailable; retrying", "topic", recs[0].Topic, "partition", recs[0].Partition, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return batch, nil
}

func (r *Runner) decodeItem(ctx context.Context, it *item) {
	if len(it.rec.Value) > r.opts.maxBytes {
		it.decodeErr = fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(it.rec.Value), r.opts.maxBytes)
		return
	}
	it.Decoded, it.decodeErr = r.cfg.Codec.DecodeRecord(ctx, it.rec)
}

// redecode decodes again the items that the registry was unavailable for, and reports whether
// it still is for some.
func (r *Runner) redecode(ctx context.Context, batch []item) (pending bool) {
	for i := range batch {
		if it := &batch[i]; errors.Is(it.decodeErr, codec.ErrRegistryUnavailable) {
			r.decodeItem(ctx, it)
			pending = pending || errors.Is(it.decodeErr, codec.ErrRegistryUnavailable)
		}
	}
	return pending
}
