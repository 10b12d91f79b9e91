package dlq_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/dlq"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

func sameHeaders(a, b []kgo.RecordHeader) bool {
	return slices.EqualFunc(a, b, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && string(x.Value) == string(y.Value) })
}

// parkedHeaders are the headers the consumer runner adds when it parks a record.
func parkedHeaders(topic string, partition int32, offset int64) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		hdr(deadletter.HeaderTopic, topic),
		hdr(deadletter.HeaderPartition, strconv.Itoa(int(partition))),
		hdr(deadletter.HeaderOffset, strconv.FormatInt(offset, 10)),
		hdr(deadletter.HeaderGroup, "g"),
		hdr(deadletter.HeaderHandler, "create-user"),
		hdr(deadletter.HeaderReason, "handler"),
		hdr(deadletter.HeaderClass, "permanent"),
		hdr(deadletter.HeaderError, "invalid account: bad email"),
		hdr(deadletter.HeaderTime, "2026-01-02T03:04:05.5Z"),
		hdr(deadletter.HeaderAttempts, "3"),
		hdr(deadletter.HeaderFirstFailure, "2026-01-02T03:04:01Z"),
		hdr(deadletter.HeaderLastFailure, "2026-01-02T03:04:05Z"),
	}
}

// TestParse: a parked record's position and key come from the dead-letter topic, the rest from
// its headers (deadletter.Parse, tested there).
func TestParse(t *testing.T) {
	t.Parallel()
	rec := &kgo.Record{Topic: "g.dlq", Partition: 2, Offset: 7, Key: []byte("acc-1"), Headers: parkedHeaders("accounts", 1, 42)}
	got := dlq.Parse(rec)
	if got.Record != rec || got.Position != (dlq.Position{Partition: 2, Offset: 7}) || got.Key != "acc-1" ||
		got.SourceTopic != "accounts" || got.SourcePartition != 1 || got.SourceOffset != 42 || got.Handler != "create-user" {
		t.Errorf("Parse = %+v", got)
	}
}

func TestReplayRecord(t *testing.T) {
	t.Parallel()
	original := []kgo.RecordHeader{hdr(envelope.HeaderID, "ev-1"), hdr("x-trace", "t1")}
	rec := &kgo.Record{Topic: "g.dlq", Key: []byte("k"), Value: []byte("v"),
		Headers: append(slices.Clone(original), parkedHeaders("accounts", 1, 42)...)}
	got, err := dlq.Parse(rec).ReplayRecord()
	if err != nil {
		t.Fatal(err)
	}
	if got.Topic != "accounts" || string(got.Key) != "k" || string(got.Value) != "v" || !sameHeaders(got.Headers, original) {
		t.Errorf("ReplayRecord = %s key %q value %q headers %v, want accounts k v %v", got.Topic, got.Key, got.Value, got.Headers, original)
	}
	stray := &kgo.Record{Partition: 1, Offset: 2, Value: []byte("v")}
	if _, err := dlq.Parse(stray).ReplayRecord(); !errors.Is(err, dlq.ErrNotParked) || !strings.Contains(err.Error(), "1/2") {
		t.Errorf("ReplayRecord of a record without %s: %v, want ErrNotParked naming 1/2", deadletter.HeaderTopic, err)
	}
}

func TestPosition(t *testing.T) {
	t.Parallel()
	p := dlq.Position{Partition: 3, Offset: 1234567890123}
	if got, err := dlq.ParsePosition(p.String()); err != nil || got != p {
		t.Errorf("ParsePosition(%q) = %v, %v", p.String(), got, err)
	}
	for _, s := range []string{"", "3", "3/", "/4", "a/1", "1/b", "-1/2", "1/-2", "1/2/3"} {
		if _, err := dlq.ParsePosition(s); err == nil {
			t.Errorf("ParsePosition(%q) succeeded", s)
		}
	}
}

type fixture struct {
	brokers        []string
	ns, group, src string
	cl             *kgo.Client
}

// newFixture provisions a source topic and a group's dead-letter topic, 3 partitions each.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ns := kafkatest.Namespace(t)
	f := &fixture{brokers: kafkatest.Brokers(t), ns: ns, group: ns + ".svc", src: ns + ".accounts"}
	var err error
	f.cl, err = kgo.NewClient(kafka.ClientOpts(f.brokers, "dlq-test", kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.cl.Close)
	if _, err := kafka.EnsureTopics(t.Context(), kadm.NewClient(f.cl),
		kafka.Topic{Name: f.src, Partitions: 3, ReplicationFactor: 1},
		kafka.Topic{Name: deadletter.Topic(f.group), Partitions: 3, ReplicationFactor: 1},
	); err != nil {
		t.Fatal(err)
	}
	return f
}

// park puts recs on the dead-letter topic, each on the partition it names.
func (f *fixture) park(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		r.Topic = deadletter.Topic(f.group)
	}
	if err := f.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) open(t *testing.T, opts ...dlq.Opt) *dlq.DLQ {
	t.Helper()
	d, err := dlq.Open(t.Context(), f.group, kafka.ClientOpts(f.brokers, "dlq-test"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// read returns every record of topic.
func (f *fixture) read(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	adm := kadm.NewClient(f.cl)
	ends, err := adm.ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d records", topic, len(recs), total)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func parked(partition int32, key, value, id string, srcOffset int64, src string) *kgo.Record {
	hs := []kgo.RecordHeader{hdr(envelope.HeaderID, id), hdr(envelope.HeaderType, "AccountCreated")}
	return &kgo.Record{Partition: partition, Key: []byte(key), Value: []byte(value),
		Headers: append(hs, parkedHeaders(src, 0, srcOffset)...)}
}

func TestOpenWithoutDeadLetterTopic(t *testing.T) {
	t.Parallel()
	_, err := dlq.Open(t.Context(), kafkatest.Namespace(t)+".nobody", kafka.ClientOpts(kafkatest.Brokers(t), "dlq-test"))
	if !errors.Is(err, dlq.ErrNoTopic) {
		t.Fatalf("Open of a group without a dead-letter topic: %v, want ErrNoTopic", err)
	}
}

func TestListGetAndReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ns, src := f.ns, f.src
	f.park(t,
		parked(0, "a", "v-a", "ev-a", 10, src),
		parked(0, "b", "v-b", "ev-b", 11, src),
		parked(1, "c", "v-c", "ev-c", 12, src),
		parked(1, "gone", "v-gone", "ev-gone", 13, ns+".gone"),              // its source topic does not exist
		&kgo.Record{Partition: 1, Key: []byte("stray"), Value: []byte("x")}, // not parked by a runner
	)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	d := f.open(t, dlq.Clock(func() time.Time { return now }))

	var listed []dlq.Parked
	if err := d.Each(t.Context(), func(p dlq.Parked) error { listed = append(listed, p); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(listed, func(a, b dlq.Parked) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	var got []string
	for _, p := range listed {
		got = append(got, p.Position.String()+" "+p.Key+" "+p.SourceTopic+"@"+strconv.FormatInt(p.SourceOffset, 10)+" "+p.ID)
	}
	want := []string{
		"0/0 a " + src + "@10 ev-a", "0/1 b " + src + "@11 ev-b", "1/0 c " + src + "@12 ev-c",
		"1/1 gone " + ns + ".gone@13 ev-gone", "1/2 stray @0 ",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Each:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("Get", func(t *testing.T) {
		for _, tt := range []struct {
			partition int32
			offset    int64
			key       string
			err       error
		}{
			{partition: -1, offset: 0, err: dlq.ErrAmbiguous},
			{partition: 1, offset: 0, key: "c"},
			{partition: -1, offset: 2, key: "stray"},
			{partition: 0, offset: 2, err: dlq.ErrNotFound},
			{partition: 2, offset: 0, err: dlq.ErrNotFound},
			{partition: 7, offset: 0, err: dlq.ErrNotFound},
			{partition: -1, offset: 99, err: dlq.ErrNotFound},
		} {
			p, err := d.Get(t.Context(), tt.partition, tt.offset)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Errorf("Get(%d, %d): %v, want %v", tt.partition, tt.offset, err, tt.err)
				}
				continue
			}
			if err != nil || p.Key != tt.key || p.Offset != tt.offset {
				t.Errorf("Get(%d, %d) = %+v, %v, want key %s", tt.partition, tt.offset, p, err, tt.key)
			}
		}
	})

	// One record: re-published as it first arrived, and recorded.
	r, err := d.ReplayOne(t.Context(), 0, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Position != (dlq.Position{Partition: 0, Offset: 1}) || r.ID != "ev-b" || r.ToTopic != src || !r.ReplayedAt.Equal(now) || r.Previous != nil {
		t.Errorf("ReplayOne = %+v", r)
	}
	out := f.read(t, src)
	if len(out) != 1 {
		t.Fatalf("%d records on the source topic, want 1", len(out))
	}
	wantHeaders := []kgo.RecordHeader{hdr(envelope.HeaderID, "ev-b"), hdr(envelope.HeaderType, "AccountCreated")}
	if o := out[0]; string(o.Key) != "b" || string(o.Value) != "v-b" || !sameHeaders(o.Headers, wantHeaders) ||
		o.Partition != r.ToPartition || o.Offset != r.ToOffset {
		t.Errorf("replayed record %s/%d@%d key %q value %q headers %v; result %+v", o.Topic, o.Partition, o.Offset, o.Key, o.Value, o.Headers, r)
	}

	// The replays topic: compacted, one partition, and seen from another client (machine).
	adm := kadm.NewClient(f.cl)
	tds, err := adm.ListTopics(t.Context(), dlq.ReplaysTopic(f.group))
	if err != nil || len(tds[dlq.ReplaysTopic(f.group)].Partitions) != 1 {
		t.Errorf("replays topic: %+v, %v; want 1 partition", tds, err)
	}
	cfgs, err := adm.DescribeTopicConfigs(t.Context(), dlq.ReplaysTopic(f.group))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := cfgs.On(dlq.ReplaysTopic(f.group), nil); err != nil || !slices.ContainsFunc(c.Configs, func(c kadm.Config) bool {
		return c.Key == "cleanup.policy" && c.MaybeValue() == "compact"
	}) {
		t.Errorf("replays topic configs %+v, %v: want cleanup.policy=compact", c.Configs, err)
	}
	other := f.open(t)
	replays, err := other.Replays(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rp, ok := replays[r.Position]; len(replays) != 1 || !ok || rp != r.Replay {
		t.Errorf("Replays from another client = %+v, want %s: %+v", replays, r.Position, r.Replay)
	}

	// Once is enough, unless forced.
	_, err = other.ReplayOne(t.Context(), 0, 1, false)
	var replayed *dlq.ReplayedError
	if !errors.As(err, &replayed) || !errors.Is(err, dlq.ErrReplayed) || replayed.Replay != r.Replay ||
		!strings.Contains(err.Error(), "replayed at 2026-03-04T05:06:07Z") {
		t.Fatalf("second ReplayOne: %v, want a ReplayedError of %+v", err, r.Replay)
	}
	if _, err := d.ReplayOne(t.Context(), 1, 1, false); !errors.Is(err, dlq.ErrNoSourceTopic) {
		t.Errorf("ReplayOne of a record whose source topic is gone: %v, want ErrNoSourceTopic", err)
	}
	if _, err := d.ReplayOne(t.Context(), 1, 2, false); !errors.Is(err, dlq.ErrNotParked) {
		t.Errorf("ReplayOne of a stray record: %v, want ErrNotParked", err)
	}

	// All: the two not replayed yet; the ones that cannot be are reported.
	var all []string
	collect := func(r dlq.Result) error {
		all = append(all, r.Position.String())
		return nil
	}
	skipped, err := d.ReplayAll(t.Context(), false, collect)
	if !errors.Is(err, dlq.ErrNoSourceTopic) || !errors.Is(err, dlq.ErrNotParked) {
		t.Errorf("ReplayAll: %v, want the gone source topic and the stray record reported", err)
	}
	slices.Sort(all)
	if !slices.Equal(all, []string{"0/0", "1/0"}) || skipped != 1 {
		t.Errorf("ReplayAll replayed %v, skipped %d; want 0/0 1/0, skipped 1", all, skipped)
	}
	all = nil
	if skipped, _ := d.ReplayAll(t.Context(), false, collect); len(all) != 0 || skipped != 3 {
		t.Errorf("ReplayAll again replayed %v, skipped %d; want nothing, skipped 3", all, skipped)
	}
	var forced []dlq.Result
	if _, err := d.ReplayAll(t.Context(), true, func(r dlq.Result) error { forced = append(forced, r); return nil }); !errors.Is(err, dlq.ErrNotParked) {
		t.Errorf("ReplayAll forced: %v", err)
	}
	if len(forced) != 3 {
		t.Fatalf("ReplayAll forced replayed %d, want 3", len(forced))
	}
	for _, r := range forced {
		if r.Previous == nil {
			t.Errorf("forced replay of %s has no previous replay", r.Position)
		}
	}
	if n := len(f.read(t, src)); n != 1+2+3 {
		t.Errorf("%d records on the source topic, want 6", n)
	}
}
