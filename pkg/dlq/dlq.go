// Package dlq inspects and re-drives a consumer group's dead-letter topic, "<group>.dlq", where
// the consumer runner parks the records it cannot process (the format is package deadletter's).
//
// A replay re-publishes a parked record to its source topic as it first arrived: the same key,
// value and headers, so the same ce_id, and the consumer's inbox still deduplicates an event
// that was handled after all. Every replay is recorded in the compacted topic
// "<group>.dlq.replays", keyed by the parked record's "<partition>/<offset>" with a JSON Replay
// as value, so that every machine sees what was replayed; a tombstone there forgets a replay.
package dlq

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/kafka"
)

// Errors of a DLQ's methods, wrapped with the details.
var (
	// ErrNoTopic: the group has no dead-letter topic (a service creates it when it starts
	// consuming).
	ErrNoTopic = errors.New("no dead-letter topic")
	// ErrNotFound: no parked record at the position asked for.
	ErrNotFound = errors.New("no parked record")
	// ErrAmbiguous: an offset asked for without a partition exists on several partitions.
	ErrAmbiguous = errors.New("offset on several partitions")
	// ErrReplayed: the record was replayed before (see ReplayedError).
	ErrReplayed = errors.New("already replayed")
	// ErrNoSourceTopic: the topic a record was parked from does not exist (any more).
	ErrNoSourceTopic = errors.New("source topic does not exist")
)

// ReplayedError refuses to replay a record a second time without force.
type ReplayedError struct {
	Position Position
	Replay   Replay
}

func (e *ReplayedError) Error() string {
	return fmt.Sprintf("dlq record %s was replayed at %s (to %s/%d@%d)", e.Position,
		e.Replay.ReplayedAt.UTC().Format(time.RFC3339), e.Replay.ToTopic, e.Replay.ToPartition, e.Replay.ToOffset)
}

// Unwrap makes errors.Is(err, ErrReplayed) hold.
func (e *ReplayedError) Unwrap() error { return ErrReplayed }

// ReplaysTopic returns the topic recording the replays of group's parked records:
// "<group>.dlq.replays".
func ReplaysTopic(group string) string { return deadletter.Topic(group) + ".replays" }

// Replay records that a parked record was re-published, and where to.
type Replay struct {
	ReplayedAt  time.Time `json:"replayedAt"`
	ToTopic     string    `json:"toTopic"`
	ToPartition int32     `json:"toPartition"`
	ToOffset    int64     `json:"toOffset"`
}

// Result is one replayed record.
type Result struct {
	Position        // of the parked record
	Type     string `json:"type,omitempty"`
	ID       string `json:"id,omitempty"`
	Replay
	// Previous is the earlier replay that a forced one repeated.
	Previous *Replay `json:"previous,omitempty"`
}

type options struct {
	replication int16
	now         func() time.Time
}

// Opt configures a DLQ.
type Opt func(*options)

// ReplicationFactor sets the replication factor of the replays topic when Replay creates it;
// -1 takes the broker's default. Default 1.
func ReplicationFactor(n int16) Opt { return func(o *options) { o.replication = n } }

// Clock sets the time source of Replay.ReplayedAt. Default time.Now.
func Clock(now func() time.Time) Opt { return func(o *options) { o.now = now } }

// batchSize bounds the records ReplayAll produces at once.
const batchSize = 500

// errStop ends a read early.
var errStop = errors.New("stop")

// DLQ is one consumer group's dead-letter topic. It is safe for concurrent use.
type DLQ struct {
	topic, replays string
	clientOpts     []kgo.Opt
	cl             *kgo.Client // produces with franz-go's idempotent producer (its default)
	adm            *kadm.Client
	opts           options

	mu          sync.Mutex
	replaysMade bool
}

// Open connects to Kafka with clientOpts (at least kgo.SeedBrokers; franz-go's defaults give an
// idempotent producer waiting for all in-sync replicas) and returns group's dead-letter topic.
// It fails when no broker answers before ctx is done, and with an error wrapping ErrNoTopic
// when the topic does not exist. The group is the consumer group's full name, namespace
// included (service.Config.Scoped).
func Open(ctx context.Context, group string, clientOpts []kgo.Opt, opts ...Opt) (*DLQ, error) {
	if group == "" {
		return nil, errors.New("dlq: empty group")
	}
	o := options{replication: 1, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	cl, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	d := &DLQ{
		topic: deadletter.Topic(group), replays: ReplaysTopic(group),
		clientOpts: slices.Clone(clientOpts), cl: cl, adm: kadm.NewClient(cl), opts: o,
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("no broker answers: %w", err)
	}
	ok, err := d.exists(ctx, d.topic)
	if err == nil && !ok {
		err = fmt.Errorf("%w %s for group %s", ErrNoTopic, d.topic, group)
	}
	if err != nil {
		cl.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the DLQ's Kafka client.
func (d *DLQ) Close() { d.cl.Close() }

// Topic returns the dead-letter topic.
func (d *DLQ) Topic() string { return d.topic }

// Each calls fn with every record of the dead-letter topic, from the start to the end it has
// when Each is called, in order within each partition. An error of fn stops Each and is
// returned.
func (d *DLQ) Each(ctx context.Context, fn func(Parked) error) error {
	starts, ends, err := d.bounds(ctx, d.topic)
	if err != nil {
		return err
	}
	return d.read(ctx, d.topic, starts, ends, func(r *kgo.Record) error { return fn(Parse(r)) })
}

// Get returns the parked record at offset of partition; partition -1 looks for offset on every
// partition. Errors wrap ErrNotFound, or ErrAmbiguous when offset is on several partitions.
func (d *DLQ) Get(ctx context.Context, partition int32, offset int64) (Parked, error) {
	starts, ends, err := d.bounds(ctx, d.topic)
	if err != nil {
		return Parked{}, err
	}
	var on []int32
	if partition >= 0 {
		end, ok := ends[partition]
		if !ok {
			return Parked{}, fmt.Errorf("%w: %s has no partition %d (it has %d)", ErrNotFound, d.topic, partition, len(ends))
		}
		if offset < starts[partition] || offset >= end {
			return Parked{}, fmt.Errorf("%w at %s/%d@%d: %s", ErrNotFound, d.topic, partition, offset, span(starts[partition], end))
		}
		on = []int32{partition}
	} else {
		for p, end := range ends {
			if offset >= starts[p] && offset < end {
				on = append(on, p)
			}
		}
		slices.Sort(on)
	}
	switch {
	case len(on) == 0:
		return Parked{}, fmt.Errorf("%w at offset %d of %s on any of its %d partitions", ErrNotFound, offset, d.topic, len(ends))
	case len(on) > 1:
		return Parked{}, fmt.Errorf("%w: offset %d of %s is on partitions %v", ErrAmbiguous, offset, d.topic, on)
	}
	p := on[0]
	var found *kgo.Record
	err = d.read(ctx, d.topic, map[int32]int64{p: offset}, map[int32]int64{p: ends[p]}, func(r *kgo.Record) error {
		if r.Offset == offset {
			found = r
		}
		return errStop
	})
	if err != nil {
		return Parked{}, err
	}
	if found == nil { // a control record, or compacted away
		return Parked{}, fmt.Errorf("%w at %s/%d@%d", ErrNotFound, d.topic, p, offset)
	}
	return Parse(found), nil
}

func span(start, end int64) string {
	if start >= end {
		return "the partition is empty"
	}
	return fmt.Sprintf("it holds offsets %d to %d", start, end-1)
}

// Replays returns the recorded replays by the position of the parked record.
func (d *DLQ) Replays(ctx context.Context) (map[Position]Replay, error) {
	out := make(map[Position]Replay)
	ok, err := d.exists(ctx, d.replays)
	if err != nil || !ok {
		return out, err
	}
	starts, ends, err := d.bounds(ctx, d.replays)
	if err != nil {
		return nil, err
	}
	err = d.read(ctx, d.replays, starts, ends, func(r *kgo.Record) error {
		pos, err := ParsePosition(string(r.Key))
		if err != nil {
			return nil // not a marker: ignored
		}
		if r.Value == nil {
			delete(out, pos)
			return nil
		}
		var rp Replay
		if json.Unmarshal(r.Value, &rp) == nil {
			out[pos] = rp
		}
		return nil
	})
	return out, err
}

// ReplayOne replays the parked record at offset of partition (-1: whichever partition holds
// it). A record replayed before is refused with a *ReplayedError unless force.
func (d *DLQ) ReplayOne(ctx context.Context, partition int32, offset int64, force bool) (Result, error) {
	p, err := d.Get(ctx, partition, offset)
	if err != nil {
		return Result{}, err
	}
	prev, err := d.Replays(ctx)
	if err != nil {
		return Result{}, err
	}
	if r, ok := prev[p.Position]; ok && !force {
		return Result{}, &ReplayedError{Position: p.Position, Replay: r}
	}
	topics, err := d.topics(ctx)
	if err != nil {
		return Result{}, err
	}
	rec, err := d.prepare(p, topics)
	if err != nil {
		return Result{}, err
	}
	rs, err := d.replay(ctx, []Parked{p}, []*kgo.Record{rec}, prev)
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// ReplayAll replays every parked record not replayed before (every one with force), in order
// within each partition, calling fn with each replay once it is recorded. A record that cannot
// be replayed (not parked by the runner, its source topic gone) is skipped and reported in the
// error; a failure to produce stops ReplayAll. It returns how many records it skipped as
// replayed before.
func (d *DLQ) ReplayAll(ctx context.Context, force bool, fn func(Result) error) (skipped int, err error) {
	prev, err := d.Replays(ctx)
	if err != nil {
		return 0, err
	}
	topics, err := d.topics(ctx)
	if err != nil {
		return 0, err
	}
	var (
		bad   []error
		batch []Parked
		recs  []*kgo.Record
	)
	flush := func() error {
		rs, err := d.replay(ctx, batch, recs, prev)
		for _, r := range rs {
			if ferr := fn(r); ferr != nil {
				return ferr
			}
		}
		batch, recs = batch[:0], recs[:0]
		return err
	}
	err = d.Each(ctx, func(p Parked) error {
		if _, ok := prev[p.Position]; ok && !force {
			skipped++
			return nil
		}
		rec, err := d.prepare(p, topics)
		if err != nil {
			bad = append(bad, err)
			return nil
		}
		batch, recs = append(batch, p), append(recs, rec)
		if len(batch) >= batchSize {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	return skipped, errors.Join(append(bad, err)...)
}

// prepare returns the record replaying p, checking that its source topic exists: producing to
// a missing topic would only time out.
func (d *DLQ) prepare(p Parked, topics kadm.TopicDetails) (*kgo.Record, error) {
	rec, err := p.ReplayRecord()
	if err != nil {
		return nil, err
	}
	if td, ok := topics[rec.Topic]; !ok || td.Err != nil {
		return nil, fmt.Errorf("dlq record %s: %w: %s", p.Position, ErrNoSourceTopic, rec.Topic)
	}
	return rec, nil
}

// replay produces recs (recs[i] replays ps[i]), waits for their acknowledgements, then records
// each acknowledged replay in the replays topic. It returns the replays recorded.
func (d *DLQ) replay(ctx context.Context, ps []Parked, recs []*kgo.Record, prev map[Position]Replay) ([]Result, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if err := d.ensureReplays(ctx); err != nil {
		return nil, err
	}
	index := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		index[r] = i
	}
	now := d.opts.now().UTC()
	var (
		errs    []error
		pending []Result
		markers []*kgo.Record
	)
	for _, res := range d.cl.ProduceSync(ctx, recs...) { // results come in completion order
		p := ps[index[res.Record]]
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("replay dlq record %s to %s: %w", p.Position, res.Record.Topic, res.Err))
			continue
		}
		rp := Replay{ReplayedAt: now, ToTopic: res.Record.Topic, ToPartition: res.Record.Partition, ToOffset: res.Record.Offset}
		v, err := json.Marshal(rp)
		if err != nil {
			return nil, err
		}
		r := Result{Position: p.Position, Type: p.Type, ID: p.ID, Replay: rp}
		if was, ok := prev[p.Position]; ok {
			r.Previous = &was
		}
		pending = append(pending, r)
		markers = append(markers, &kgo.Record{Topic: d.replays, Key: []byte(p.Position.String()), Value: v})
	}
	mindex := make(map[*kgo.Record]int, len(markers))
	for i, m := range markers {
		mindex[m] = i
	}
	done := make([]bool, len(markers))
	for _, res := range d.cl.ProduceSync(ctx, markers...) {
		i := mindex[res.Record]
		if res.Err != nil {
			r := pending[i]
			errs = append(errs, fmt.Errorf("dlq record %s was replayed to %s/%d@%d, but recording it on %s failed (a replay again is deduplicated by the consumer's inbox): %w",
				r.Position, r.ToTopic, r.ToPartition, r.ToOffset, d.replays, res.Err))
			continue
		}
		done[i] = true
	}
	var out []Result
	for i, r := range pending {
		if done[i] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out, errors.Join(errs...)
}

// ensureReplays creates the replays topic unless it exists: compacted (the latest replay of a
// record is all that matters) and with one partition.
func (d *DLQ) ensureReplays(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.replaysMade {
		return nil
	}
	compact := "compact"
	// The report's warnings (say, more partitions than one) do not matter to replays; a
	// weaker topic (not compacted) is an error.
	_, err := kafka.EnsureTopics(ctx, d.adm, kafka.Topic{
		Name: d.replays, Partitions: 1, ReplicationFactor: d.opts.replication,
		Configs: map[string]*string{"cleanup.policy": &compact},
	})
	if err != nil {
		return fmt.Errorf("dlq: replays topic: %w", err)
	}
	d.replaysMade = true
	return nil
}

func (d *DLQ) topics(ctx context.Context) (kadm.TopicDetails, error) {
	// Every topic: asking for a missing topic by name makes the client retry for seconds.
	tds, err := d.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq: list topics: %w", err)
	}
	return tds, nil
}

func (d *DLQ) exists(ctx context.Context, topic string) (bool, error) {
	tds, err := d.topics(ctx)
	if err != nil {
		return false, err
	}
	td, ok := tds[topic]
	return ok && td.Err == nil, nil
}

// bounds returns the start and end offsets of topic's partitions.
func (d *DLQ) bounds(ctx context.Context, topic string) (starts, ends map[int32]int64, err error) {
	so, err := d.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = so.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dlq: start offsets of %s: %w", topic, err)
	}
	eo, err := d.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = eo.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dlq: end offsets of %s: %w", topic, err)
	}
	starts, ends = make(map[int32]int64), make(map[int32]int64)
	for p, o := range eo[topic] {
		ends[p] = o.Offset
		starts[p] = so[topic][p].Offset
	}
	return starts, ends, nil
}

// read calls fn with the records of topic's partitions from from[p] up to, excluding, ends[p].
// fn returning errStop ends the read without an error.
func (d *DLQ) read(ctx context.Context, topic string, from, ends map[int32]int64, fn func(*kgo.Record) error) error {
	want := make(map[int32]kgo.Offset)
	for p, o := range from {
		if o < ends[p] {
			want[p] = kgo.NewOffset().At(o)
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(d.clientOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		// Control records are read too, so a partition ending in one is seen to end.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if ferr != nil {
				return
			}
			if p.Err != nil {
				ferr = fmt.Errorf("dlq: read %s/%d: %w", topic, p.Partition, p.Err)
				return
			}
			for _, r := range p.Records {
				if _, ok := want[r.Partition]; !ok || r.Offset >= ends[r.Partition] {
					delete(want, r.Partition)
					return
				}
				if r.Offset >= ends[r.Partition]-1 {
					delete(want, r.Partition)
				}
				if r.Attrs.IsControl() {
					continue
				}
				if err := fn(r); err != nil {
					ferr = err
					return
				}
			}
		})
		if errors.Is(ferr, errStop) {
			return nil
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
