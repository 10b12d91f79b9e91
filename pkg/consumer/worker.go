package consumer

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxQueued is how many batches a worker queues before its partition's fetching pauses. Pausing
// is for a partition that is stuck (retrying): pausing and resuming at every batch made the
// consumer wait on fetches, so a partition that keeps up never pauses.
const maxQueued = 8

type topicPartition struct {
	topic     string
	partition int32
}

// worker applies the records of one partition, in order, in its own goroutine, so a partition
// that waits (a retry's backoff, a slow handler) holds up only itself. While it has a batch
// queued, fetching its partition is paused, which bounds what it buffers.
type worker struct {
	r      *Runner
	tp     topicPartition
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	queue  [][]*kgo.Record
	wake   chan struct{}
	paused bool
}

// worker returns the worker of tp, starting it if needed.
func (r *Runner) worker(ctx context.Context, tp topicPartition) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.workers[tp]; w != nil {
		return w
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{r: r, tp: tp, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	r.workers[tp] = w
	go w.run(wctx)
	return w
}

// stopWorkers stops the workers of the given partitions (all of them for nil) and waits for
// them: a batch in flight is abandoned, its transaction rolled back.
func (r *Runner) stopWorkers(tps map[string][]int32) {
	r.mu.Lock()
	var ws []*worker
	for tp, w := range r.workers {
		if tps == nil || containsPartition(tps[tp.topic], tp.partition) {
			ws = append(ws, w)
			delete(r.workers, tp)
		}
	}
	r.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
}

func containsPartition(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func (w *worker) enqueue(recs []*kgo.Record) {
	w.mu.Lock()
	w.queue = append(w.queue, recs)
	if len(w.queue) >= maxQueued && !w.paused {
		w.paused = true
		w.r.client.PauseFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// popBatch takes the first batch of a non-empty queue. Its slot is cleared: the backing array
// would otherwise keep a handled batch (and the fetch buffers its records point into) reachable
// until an append reallocates it, which under a backlog held several batches per partition.
func popBatch(queue [][]*kgo.Record) ([]*kgo.Record, [][]*kgo.Record) {
	batch := queue[0]
	queue[0] = nil
	return batch, queue[1:]
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	for {
		w.mu.Lock()
		// Everything queued goes into one batch (one transaction): a partition that fell behind,
		// with many small polls waiting, catches up with fewer, larger transactions instead of
		// paying a transaction per poll.
		var batch []*kgo.Record
		for len(w.queue) > 0 && (batch == nil || len(batch)+len(w.queue[0]) <= w.r.opts.maxPoll) {
			var next []*kgo.Record
			next, w.queue = popBatch(w.queue)
			// Clipped: appending must not write into spare capacity of the fetch's slice.
			batch = append(batch[:len(batch):len(batch)], next...)
		}
		if len(w.queue) == 0 && w.paused && batch != nil {
			// The last queued batch is being taken: let the next ones be fetched meanwhile.
			w.paused = false
			w.r.client.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
		}
		w.mu.Unlock()
		if batch == nil {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				continue
			}
		}
		if err := w.r.processPartition(ctx, batch); err != nil {
			return // ctx is done: the rest is redelivered to whoever owns the partition next
		}
	}
}
