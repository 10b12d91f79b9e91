package trace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/consumer"
)

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
			topics = append(topics, consumer.DeadLetterTopicOf(scoped(s.Group)))
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// Collect reads topics from their start to the end they have when Collect is called and returns
// the trace of operation correlationID: the records whose ce_correlationid is correlationID and
// the chain's first event, whose ce_id it is (it may carry no correlation ID).
//
// cl is used as it is for the admin requests, and its options (cl.Opts) are the base of the
// client that reads the partitions directly, with no consumer group: cl must not be a group
// consumer. c decodes the events; it must know the topics' names, so for namespaced topics
// it is built with event.Registry.WithNamespace. A nil c leaves the events undecoded. Topics that
// do not exist are skipped and listed in MissingTopics. When no record belongs to the operation
// the error wraps ErrNotFound.
func Collect(ctx context.Context, cl *kgo.Client, c *codec.Codec, topics []string, correlationID string) (*Trace, error) {
	recs, read, missing, err := scan(ctx, cl, topics, func(id, corr string) bool {
		return belongs(id, corr, correlationID)
	})
	if err != nil {
		return nil, err
	}
	return finish(ctx, c, correlationID, recs, read, missing)
}

// FindByID returns the trace of the operation that id belongs to: id is its correlation ID or
// the ce_id of any of its events, a parked copy included. Like Collect, it reads topics to
// their current end (twice when id is not the operation's first event: once to find the event
// and its correlation ID, once to collect the operation). Errors wrap ErrNotFound when no
// record carries id.
func FindByID(ctx context.Context, cl *kgo.Client, c *codec.Codec, topics []string, id string) (*Trace, error) {
	recs, read, missing, err := scan(ctx, cl, topics, func(rid, corr string) bool {
		return corr == id || rid == id
	})
	if err != nil {
		return nil, err
	}
	var own []*kgo.Record
	correlationID := ""
	for _, rec := range recs {
		rid, corr := identity(rec)
		switch {
		case belongs(rid, corr, id):
			own = append(own, rec)
		case rid == id && correlationID == "":
			correlationID = corr
		}
	}
	if len(own) > 0 || correlationID == "" {
		return finish(ctx, c, id, own, read, missing)
	}
	return Collect(ctx, cl, c, topics, correlationID)
}

func finish(ctx context.Context, c *codec.Codec, correlationID string, recs []*kgo.Record, read, missing []string) (*Trace, error) {
	if len(recs) == 0 {
		where := "on " + strings.Join(read, ", ")
		if len(read) == 0 {
			where = "anywhere: none of the topics exists"
		}
		if len(missing) > 0 {
			where += " (topics that do not exist: " + strings.Join(missing, ", ") + ")"
		}
		return nil, fmt.Errorf("%w: no record carries %s as ce_id or ce_correlationid %s", ErrNotFound, correlationID, where)
	}
	t := FromRecords(ctx, c, correlationID, recs)
	t.Topics, t.MissingTopics = read, missing
	return t, nil
}

// scan reads every partition of the topics that exist from its start offset to its end offset
// as listed before reading, and returns the records whose identity keep accepts, the topics it
// read and the topics that do not exist.
func scan(ctx context.Context, cl *kgo.Client, topics []string, keep func(id, corr string) bool) (recs []*kgo.Record, read, missing []string, err error) {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return nil, nil, nil, fmt.Errorf("trace: the client consumes in group %s; give one without a group", g)
	}
	adm := kadm.NewClient(cl)
	// Every topic: asking for a missing topic by name makes the client retry for seconds.
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trace: list topics: %w", err)
	}
	for _, t := range topics {
		if td, ok := tds[t]; ok && td.Err == nil {
			read = append(read, t)
		} else {
			missing = append(missing, t)
		}
	}
	if len(read) == 0 {
		return nil, read, missing, nil
	}
	starts, err := adm.ListStartOffsets(ctx, read...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trace: start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, read...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trace: end offsets: %w", err)
	}
	want := make(map[string]map[int32]kgo.Offset)
	end := make(map[string]map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		start, ok := starts.Lookup(o.Topic, o.Partition)
		if !ok || start.Offset >= o.Offset {
			return // empty
		}
		if want[o.Topic] == nil {
			want[o.Topic], end[o.Topic] = make(map[int32]kgo.Offset), make(map[int32]int64)
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().At(start.Offset)
		end[o.Topic][o.Partition] = o.Offset
	})
	left := 0
	for _, ps := range want {
		left += len(ps)
	}
	if left == 0 {
		return nil, read, missing, nil
	}
	rd, err := kgo.NewClient(append(cl.Opts(),
		kgo.ConsumePartitions(want),
		// The end offsets are high watermarks: read uncommitted records too, and control
		// records, so that a partition ending in one is seen to end.
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trace: %w", err)
	}
	defer rd.Close()
	for left > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, fmt.Errorf("trace: read %d partition(s) to their end: %w", left, err)
		}
		var ferr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil {
				var loss *kgo.ErrDataLoss
				if !errors.As(p.Err, &loss) && ferr == nil {
					ferr = fmt.Errorf("trace: read %s/%d: %w", p.Topic, p.Partition, p.Err)
				}
				return
			}
			for _, r := range p.Records {
				e, ok := end[r.Topic][r.Partition]
				if !ok || r.Offset >= e {
					continue // beyond the end, or a partition done with
				}
				if r.Offset >= e-1 {
					delete(end[r.Topic], r.Partition)
					left--
				}
				if r.Attrs.IsControl() {
					continue
				}
				if id, corr := identity(r); keep(id, corr) {
					recs = append(recs, r)
				}
			}
		})
		if ferr != nil {
			return nil, nil, nil, ferr
		}
	}
	return recs, read, missing, nil
}
