package trace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/deadletter"
)

// ErrNotInWindow is wrapped by the errors of FindByID when no record carries the ID in the part
// of the topics it searched (WithLookback): the record may be older.
var ErrNotInWindow = errors.New("not in the searched window")

// Topics returns the topics a trace of cat's operations reads: every event topic and the
// dead-letter topic ("<group>.dlq") of every consumer group, each prefixed with "<namespace>."
// when namespace is not empty, as the services name them (service.Config.Scoped).
func Topics(cat *catalog.Catalog, namespace string) []string {
	scoped := func(name string) string {
		if namespace == "" {
			return name
		}
		return namespace + "." + name
	}
	var topics []string
	for _, t := range cat.Topics() {
		topics = append(topics, scoped(t))
	}
	for _, s := range cat.Services {
		if s.Group != "" {
			topics = append(topics, deadletter.Topic(scoped(s.Group)))
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// Option tunes how much of the topics FindByID and Recent read.
type Option func(*options)

type options struct {
	window    time.Duration
	spread    time.Duration
	lookback  time.Duration
	around    time.Time
	complete  func(*Trace) bool
	recordsOf func(int) // test hook: records read per pass
}

func newOptions(opts []Option) options {
	o := options{window: 30 * time.Second, spread: 10 * time.Minute, lookback: 24 * time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithWindow sets the first window read: this long either side of the operation's first event
// found, and the newest slice of the topics searched for an ID. Each further pass reads a
// window four times as wide. The default is 30 seconds.
func WithWindow(d time.Duration) Option { return func(o *options) { o.window = d } }

// WithSpread bounds how far apart in time the events of one operation may be: the window
// around its first event widens, while the chain is incomplete, up to this either side. The
// default is 10 minutes.
func WithSpread(d time.Duration) Option { return func(o *options) { o.spread = d } }

// WithLookback bounds the search for an ID: records up to this long before the topics' end (or
// either side of the time given WithAround) are searched, newest first. A zero or negative d
// searches the topics whole. The default is 24 hours.
func WithLookback(d time.Duration) Option { return func(o *options) { o.lookback = d } }

// WithAround says that the operation happened near t (the time its API call answered, a log
// line's time): the search for an ID starts there and widens either side, instead of starting
// at the topics' end. The default is no hint.
func WithAround(t time.Time) Option { return func(o *options) { o.around = t } }

// WithComplete sets when a trace is whole, so that the window around it stops widening; a
// comparison with the catalog makes a good test (see Comparison.Settled). The default is that
// the operation's first event was found.
func WithComplete(done func(*Trace) bool) Option { return func(o *options) { o.complete = done } }

// Collect returns the trace of operation correlationID; it is FindByID, named for when the ID
// is known to be the operation's correlation ID.
func Collect(ctx context.Context, cl *kgo.Client, c *codec.Codec, topics []string, correlationID string, opts ...Option) (*Trace, error) {
	return FindByID(ctx, cl, c, topics, correlationID, opts...)
}

// FindByID returns the trace of the operation that id belongs to: id is its correlation ID or
// the ce_id of any of its events, a parked copy included.
//
// Its cost depends on the operation, not on the topics' size: it seeks by timestamp (the
// brokers' time index) instead of reading from the start. First it searches for a record
// carrying id, newest first from the topics' end (or around WithAround's time) in windows that
// grow fourfold, up to WithLookback; then it reads a window around that record's time and
// widens it, up to WithSpread, while the trace is not complete (WithComplete). Records are
// placed in time by their Kafka timestamp, which choreo's producers set when they emit.
//
// cl is used as it is for the admin requests, and its options (cl.Opts) are the base of the
// clients that read partitions directly, with no consumer group: cl must not be a group
// consumer. c decodes the events; it must know the topics' names, so for namespaced topics
// it is built with event.TypeSet.WithNamespace. A nil c leaves the events undecoded. Topics that
// do not exist are skipped and listed in MissingTopics. When no record carries id the error
// wraps ErrNotFound, and ErrNotInWindow too when the search stopped at its lookback.
func FindByID(ctx context.Context, cl *kgo.Client, c *codec.Codec, topics []string, id string, opts ...Option) (*Trace, error) {
	o := newOptions(opts)
	v, err := openLog(ctx, cl, topics)
	if err != nil {
		return nil, err
	}
	found, whole, err := v.locate(ctx, o, func(rid, corr string) bool { return corr == id || rid == id })
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, v.notFound(id, whole, o)
	}
	correlationID, first := "", time.Time{}
	for _, rec := range found {
		rid, corr := identity(rec)
		switch {
		case belongs(rid, corr, id):
			correlationID = id
		case rid == id && correlationID == "":
			correlationID = cmp.Or(corr, id)
		}
		if first.IsZero() || rec.Timestamp.Before(first) {
			first = rec.Timestamp
		}
	}
	done := o.complete
	if done == nil {
		done = func(t *Trace) bool { r := t.Root(); return r != nil && r.ID == correlationID }
	}
	keep := func(rid, corr string) bool { return belongs(rid, corr, correlationID) }
	// Searching by the correlation ID finds the operation's events themselves: when they
	// already make a whole chain, there is nothing more to read.
	if correlationID == id {
		t := FromRecords(ctx, c, correlationID, found)
		t.Topics, t.MissingTopics = v.read, v.missing
		if done(t) {
			return t, nil
		}
	}
	for w := o.window; ; w = min(4*w, o.spread) {
		recs, err := v.readSpan(ctx, o, first.Add(-w), first.Add(w), keep)
		if err != nil {
			return nil, err
		}
		covered, err := v.reaches(ctx, first.Add(-w), first.Add(w))
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 { // the ID's record moved out of the log between the passes
			return nil, v.notFound(id, whole, o)
		}
		t := FromRecords(ctx, c, correlationID, recs)
		t.Topics, t.MissingTopics = v.read, v.missing
		if done(t) || covered || w >= o.spread {
			return t, nil
		}
	}
}

// Recent returns the last n operations that started on the topics, newest first: the traces
// of the events without a cause in the window read, each with the events that followed it. It
// reads the topics backwards from their end in windows that grow fourfold, until it has seen n
// first events or searched WithLookback.
func Recent(ctx context.Context, cl *kgo.Client, c *codec.Codec, topics []string, n int, opts ...Option) ([]*Trace, error) {
	o := newOptions(opts)
	v, err := openLog(ctx, cl, topics)
	if err != nil {
		return nil, err
	}
	all := func(string, string) bool { return true }
	var recs []*kgo.Record
	starts := func() []*kgo.Record {
		var out []*kgo.Record
		for _, r := range recs {
			if rid, corr := identity(r); !deadletter.IsParked(r) && (corr == "" || corr == rid) {
				out = append(out, r)
			}
		}
		return out
	}
	hi := time.Time{}
	for k := 0; n > 0; k++ {
		lo := time.Now().Add(-widened(o.window, k))
		got, err := v.readSpan(ctx, o, lo, hi, all)
		if err != nil {
			return nil, err
		}
		covered, err := v.reaches(ctx, lo, time.Time{})
		if err != nil {
			return nil, err
		}
		recs = append(recs, got...)
		hi = lo
		if len(starts()) >= n || covered || (o.lookback > 0 && widened(o.window, k) >= o.lookback) || widened(o.window, k) == widened(o.window, k+1) {
			break
		}
	}
	roots := starts()
	slices.SortStableFunc(roots, func(a, b *kgo.Record) int { return b.Timestamp.Compare(a.Timestamp) })
	byCorr := map[string][]*kgo.Record{}
	for _, r := range recs {
		rid, corr := identity(r)
		k := cmp.Or(corr, rid)
		byCorr[k] = append(byCorr[k], r)
	}
	var out []*Trace
	seen := map[string]bool{}
	for _, r := range roots {
		rid, _ := identity(r)
		if seen[rid] || len(out) == n {
			continue
		}
		seen[rid] = true
		t := FromRecords(ctx, c, rid, byCorr[rid])
		t.Topics, t.MissingTopics = v.read, v.missing
		out = append(out, t)
	}
	return out, nil
}

// logView is what a trace knows of the topics: which exist, and each non-empty partition's
// start and end offsets when it began.
type logView struct {
	cl            *kgo.Client
	adm           *kadm.Client
	read, missing []string
	starts, ends  map[string]map[int32]int64
	at            map[int64]map[string]map[int32]int64 // offsetsAt by millisecond, asked once
}

func openLog(ctx context.Context, cl *kgo.Client, topics []string) (*logView, error) {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return nil, fmt.Errorf("trace: the client consumes in group %s; give one without a group", g)
	}
	v := &logView{cl: cl, adm: kadm.NewClient(cl), starts: map[string]map[int32]int64{}, ends: map[string]map[int32]int64{}}
	// Every topic: asking for a missing topic by name makes the client retry for seconds.
	tds, err := v.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("trace: list topics: %w", err)
	}
	for _, t := range topics {
		if td, ok := tds[t]; ok && td.Err == nil {
			v.read = append(v.read, t)
		} else {
			v.missing = append(v.missing, t)
		}
	}
	if len(v.read) == 0 {
		return v, nil
	}
	starts, err := v.adm.ListStartOffsets(ctx, v.read...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("trace: start offsets: %w", err)
	}
	ends, err := v.adm.ListEndOffsets(ctx, v.read...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("trace: end offsets: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		start, ok := starts.Lookup(o.Topic, o.Partition)
		if !ok || start.Offset >= o.Offset {
			return // empty
		}
		if v.starts[o.Topic] == nil {
			v.starts[o.Topic], v.ends[o.Topic] = map[int32]int64{}, map[int32]int64{}
		}
		v.starts[o.Topic][o.Partition], v.ends[o.Topic][o.Partition] = start.Offset, o.Offset
	})
	return v, nil
}

// offsetsAt returns, for each non-empty partition, the offset of its first record at or after
// t, within the partition's start and end; for a zero t, the end.
func (v *logView) offsetsAt(ctx context.Context, t time.Time) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for topic, ps := range v.ends {
		out[topic] = maps.Clone(ps)
	}
	if t.IsZero() || len(out) == 0 {
		return out, nil
	}
	if known, ok := v.at[t.UnixMilli()]; ok {
		return known, nil
	}
	if t.UnixMilli() <= 0 { // negative timestamps are ListOffsets' special values
		for topic, ps := range v.starts {
			out[topic] = maps.Clone(ps)
		}
		return out, nil
	}
	listed, err := v.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), slices.Collect(maps.Keys(v.ends))...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("trace: offsets at %s: %w", t.Format(time.RFC3339), err)
	}
	listed.Each(func(o kadm.ListedOffset) {
		end, ok := out[o.Topic][o.Partition]
		if !ok {
			return
		}
		// No record at or after t: the broker answers the end (or -1).
		if o.Offset >= 0 && o.Offset < end {
			out[o.Topic][o.Partition] = max(o.Offset, v.starts[o.Topic][o.Partition])
		}
	})
	if v.at == nil {
		v.at = map[int64]map[string]map[int32]int64{}
	}
	v.at[t.UnixMilli()] = out
	return out, nil
}

// readSpan reads the records from the first at or after lo up to the first at or after hi (the
// end for a zero hi) and returns those keep accepts.
func (v *logView) readSpan(ctx context.Context, o options, lo, hi time.Time, keep func(id, corr string) bool) ([]*kgo.Record, error) {
	from, err := v.offsetsAt(ctx, lo)
	if err != nil {
		return nil, err
	}
	to, err := v.offsetsAt(ctx, hi)
	if err != nil {
		return nil, err
	}
	recs, n, err := v.readRanges(ctx, from, to, keep)
	if o.recordsOf != nil {
		o.recordsOf(n)
	}
	return recs, err
}

// reaches reports whether the span from lo to hi (the end for a zero hi) holds every record of
// the topics: no partition has a record before lo or, for a non-zero hi, at or after hi.
func (v *logView) reaches(ctx context.Context, lo, hi time.Time) (bool, error) {
	from, err := v.offsetsAt(ctx, lo)
	if err != nil {
		return false, err
	}
	to, err := v.offsetsAt(ctx, hi)
	if err != nil {
		return false, err
	}
	for topic, ps := range from {
		for p, off := range ps {
			if off > v.starts[topic][p] || to[topic][p] < v.ends[topic][p] {
				return false, nil
			}
		}
	}
	return true, nil
}

// locate searches for the records match accepts, in windows growing away from WithAround's
// time or back from the end, and returns those of the first window that has any. whole reports
// that the search reached every partition's start (and end) before its lookback.
func (v *logView) locate(ctx context.Context, o options, match func(id, corr string) bool) (found []*kgo.Record, whole bool, err error) {
	if len(v.ends) == 0 {
		return nil, true, nil
	}
	type span struct{ lo, hi time.Time }
	for k := 0; ; k++ {
		inner, outer := widened(o.window, k-1), widened(o.window, k)
		var spans []span
		switch {
		case o.around.IsZero() && k == 0:
			spans = []span{{time.Now().Add(-outer), time.Time{}}}
		case o.around.IsZero():
			now := time.Now()
			spans = []span{{now.Add(-outer), now.Add(-inner)}}
		case k == 0:
			spans = []span{{o.around.Add(-outer), o.around.Add(outer)}}
		default:
			spans = []span{{o.around.Add(-outer), o.around.Add(-inner)}, {o.around.Add(inner), o.around.Add(outer)}}
		}
		for _, s := range spans {
			got, err := v.readSpan(ctx, o, s.lo, s.hi, match)
			if err != nil {
				return nil, false, err
			}
			found = append(found, got...)
		}
		lo, hi := time.Now().Add(-outer), time.Time{}
		if !o.around.IsZero() {
			lo, hi = o.around.Add(-outer), o.around.Add(outer)
		}
		if whole, err = v.reaches(ctx, lo, hi); err != nil {
			return nil, false, err
		}
		if len(found) > 0 || whole || (o.lookback > 0 && outer >= o.lookback) || outer == widened(outer, 1) {
			return found, whole, nil
		}
	}
}

// readRanges reads each partition from its offset in from up to (not including) its offset in
// to, and returns the records whose identity keep accepts and how many records it read.
func (v *logView) readRanges(ctx context.Context, from, to map[string]map[int32]int64, keep func(id, corr string) bool) (recs []*kgo.Record, read int, err error) {
	want := make(map[string]map[int32]kgo.Offset)
	end := make(map[string]map[int32]int64)
	left, widest := 0, int64(0)
	for topic, ps := range from {
		for p, off := range ps {
			if off >= to[topic][p] {
				continue
			}
			widest = max(widest, to[topic][p]-off)
			if want[topic] == nil {
				want[topic], end[topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			want[topic][p], end[topic][p] = kgo.NewOffset().At(off), to[topic][p]
			left++
		}
	}
	if left == 0 {
		return nil, 0, nil
	}
	rd, err := kgo.NewClient(append(v.cl.Opts(),
		kgo.ConsumePartitions(want),
		// The end offsets are high watermarks: read uncommitted records too, and control
		// records, so that a partition ending in one is seen to end.
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
		// Fetch about the window and little beyond it: the defaults (50 MiB a fetch, 1 MiB a
		// partition) make a broker send, and the client decode, megabytes past a small
		// window's end. A record is taken to be 256 bytes at most, before compression.
		kgo.FetchMaxBytes(8<<20),
		kgo.FetchMaxPartitionBytes(int32(min(max(widest*256, 16<<10), 1<<20))),
	)...)
	if err != nil {
		return nil, 0, fmt.Errorf("trace: %w", err)
	}
	defer rd.Close()
	done := func(topic string, p int32) {
		if _, ok := end[topic][p]; ok {
			delete(end[topic], p)
			left--
		}
	}
	for left > 0 {
		pctx, cancel := context.WithTimeout(ctx, readIdle)
		fs := rd.PollFetches(pctx)
		idle := pctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, read, fmt.Errorf("trace: read %d partition(s) to their end: %w", left, err)
		}
		if idle {
			// Nothing came for a while: the offsets left below an end may not exist (compacted
			// away, or deleted by retention), and a fetch past them returns nothing.
			if err := v.settleIdle(ctx, end, done); err != nil {
				return nil, read, err
			}
			continue
		}
		var ferr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil {
				var loss *kgo.ErrDataLoss
				if errors.Is(p.Err, context.DeadlineExceeded) || errors.Is(p.Err, context.Canceled) {
					return // the idle bound of this poll, not the caller's context (checked above)
				}
				if !errors.As(p.Err, &loss) {
					if ferr == nil {
						ferr = fmt.Errorf("trace: read %s/%d: %w", p.Topic, p.Partition, p.Err)
					}
				} else if e, ok := end[p.Topic][p.Partition]; ok && loss.ResetTo >= e {
					done(p.Topic, p.Partition) // the rest of the range is gone
				}
				return
			}
			for _, r := range p.Records {
				e, ok := end[r.Topic][r.Partition]
				if !ok {
					continue // a partition done with
				}
				// Offset e-1 may not exist (compaction, retention): any record at or past it
				// ends the range.
				if r.Offset >= e-1 {
					done(r.Topic, r.Partition)
				}
				if r.Offset >= e {
					continue // beyond the end
				}
				read++
				if r.Attrs.IsControl() {
					continue
				}
				if id, corr := identity(r); keep(id, corr) {
					recs = append(recs, r)
				}
			}
			if e, ok := end[p.Topic][p.Partition]; ok && len(p.Records) > 0 {
				// The log holds nothing past the last record: the offsets left below e are gone.
				if next := p.Records[len(p.Records)-1].Offset + 1; p.HighWatermark <= next || p.LogStartOffset >= e {
					done(p.Topic, p.Partition)
				}
			}
		})
		if ferr != nil {
			return nil, read, ferr
		}
	}
	return recs, read, nil
}

// readIdle is how long a read waits for records before it asks the brokers whether the
// offsets still to read exist at all.
const readIdle = 10 * time.Second

// settleIdle ends the partitions left in end whose remaining offsets can no longer arrive: the
// log starts at or past the end (retention deleted the range), or the log reaches the end yet a
// fetch idle for readIdle returned nothing below it (the offsets were compacted away). Fetches
// read uncommitted and keep control records, so any offset that exists below the high
// watermark is returned.
func (v *logView) settleIdle(ctx context.Context, end map[string]map[int32]int64, done func(string, int32)) error {
	var topics []string
	for t, ps := range end {
		if len(ps) > 0 {
			topics = append(topics, t)
		}
	}
	starts, err := v.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("trace: list start offsets: %w", err)
	}
	ends, err := v.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("trace: list end offsets: %w", err)
	}
	for t, ps := range end {
		for p, e := range ps {
			s, sok := starts.Lookup(t, p)
			h, hok := ends.Lookup(t, p)
			if (sok && s.Err == nil && s.Offset >= e) || (hok && h.Err == nil && h.Offset >= e) {
				done(t, p)
			}
		}
	}
	return nil
}

// notFound is the error for an ID no record carries in the part of the topics searched.
func (v *logView) notFound(id string, whole bool, o options) error {
	where := "on " + strings.Join(v.read, ", ")
	if len(v.read) == 0 {
		where = "anywhere: none of the topics exists"
	}
	if len(v.missing) > 0 {
		where += " (topics that do not exist: " + strings.Join(v.missing, ", ") + ")"
	}
	if !whole {
		from := "before the topics' end"
		if !o.around.IsZero() {
			from = "either side of " + o.around.UTC().Format(time.RFC3339)
		}
		return fmt.Errorf("%w: no record carries %s as ce_id or ce_correlationid %s: %w: searched %s %s; the record may be older",
			ErrNotFound, id, where, ErrNotInWindow, o.lookback, from)
	}
	return fmt.Errorf("%w: no record carries %s as ce_id or ce_correlationid %s", ErrNotFound, id, where)
}

// widened returns the window after k fourfold widenings (none for k < 0: a quarter of it), at
// most 200 years, which holds any topic and keeps the arithmetic on times from overflowing.
func widened(w time.Duration, k int) time.Duration {
	const most = 200 * 365 * 24 * time.Hour
	if k < 0 {
		return w / 4
	}
	for ; k > 0 && w < most; k-- {
		w *= 4
	}
	return min(w, most)
}
