package deadletter_test

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

func sameHeaders(a, b []kgo.RecordHeader) bool {
	return slices.EqualFunc(a, b, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && string(x.Value) == string(y.Value) })
}

// parkedHeaders are the headers the consumer runner adds when it parks a record, written out
// by hand: the format is a contract with parked records already on topics, not just whatever
// Build writes today.
func parkedHeaders(topic string, partition int32, offset int64) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		hdr("choreo_dlq_topic", topic),
		hdr("choreo_dlq_partition", strconv.Itoa(int(partition))),
		hdr("choreo_dlq_offset", strconv.FormatInt(offset, 10)),
		hdr("choreo_dlq_group", "g"),
		hdr("choreo_dlq_handler", "create-user"),
		hdr("choreo_dlq_reason", "handler"),
		hdr("choreo_dlq_class", "permanent"),
		hdr("choreo_dlq_error", "invalid account: bad email"),
		hdr("choreo_dlq_time", "2026-01-02T03:04:05.5Z"),
		hdr("choreo_dlq_attempts", "3"),
		hdr("choreo_dlq_first_failure", "2026-01-02T03:04:01Z"),
		hdr("choreo_dlq_last_failure", "2026-01-02T03:04:05Z"),
	}
}

func TestTopic(t *testing.T) {
	t.Parallel()
	if got := deadletter.Topic("ns.user-service"); got != "ns.user-service.dlq" {
		t.Errorf("Topic = %q, want ns.user-service.dlq", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	original := []kgo.RecordHeader{hdr(envelope.HeaderID, "ev-1"), hdr(envelope.HeaderType, "AccountCreated")}
	tests := []struct {
		name       string
		rec        *kgo.Record
		want       deadletter.Info
		wantParked bool
	}{
		{
			name: "parked by the runner",
			rec:  &kgo.Record{Partition: 2, Offset: 7, Headers: append(slices.Clone(original), parkedHeaders("accounts", 1, 42)...)},
			want: deadletter.Info{
				SourceTopic: "accounts", SourcePartition: 1, SourceOffset: 42, Group: "g", Handler: "create-user",
				Reason: "handler", Class: "permanent", Error: "invalid account: bad email", Attempts: 3,
				Time:         time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC),
				FirstFailure: time.Date(2026, 1, 2, 3, 4, 1, 0, time.UTC), LastFailure: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				Type: "AccountCreated", ID: "ev-1",
			},
			wantParked: true,
		},
		{
			name:       "published without CloudEvents headers: the ID is the source position's",
			rec:        &kgo.Record{Offset: 1, Headers: parkedHeaders("accounts", 0, 9)[:3]},
			want:       deadletter.Info{SourceTopic: "accounts", SourceOffset: 9, ID: envelope.RecordID("accounts", 0, 9)},
			wantParked: true,
		},
		{
			name: "a source position that does not parse gives no ID",
			rec:  &kgo.Record{Headers: []kgo.RecordHeader{hdr("choreo_dlq_topic", "accounts"), hdr("choreo_dlq_offset", "x")}},
			want: deadletter.Info{SourceTopic: "accounts"}, wantParked: true,
		},
		{
			name: "not parked by the runner",
			rec:  &kgo.Record{Offset: 3, Headers: []kgo.RecordHeader{hdr("choreo_dlq_attempts", "many")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := deadletter.Parse(tt.rec); got != tt.want {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
			if got := deadletter.IsParked(tt.rec); got != tt.wantParked {
				t.Errorf("IsParked = %v, want %v", got, tt.wantParked)
			}
		})
	}
}

// TestBuild: what Build writes, Parse reads back, and Original restores the consumed record.
func TestBuild(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	src := &kgo.Record{Topic: "accounts", Partition: 1, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []kgo.RecordHeader{hdr(envelope.HeaderID, "ev-1"), hdr(envelope.HeaderType, "AccountCreated")}}
	info := deadletter.Info{
		Group: "g", Handler: "create-user", Reason: deadletter.ReasonHandler, Class: deadletter.ClassTransient,
		Error: "db down", Attempts: 5, Time: at, FirstFailure: at.Add(-time.Second), LastFailure: at,
	}
	parked := deadletter.Build("g.dlq", src, info)
	if parked.Topic != "g.dlq" || string(parked.Key) != "k" || string(parked.Value) != "v" {
		t.Errorf("Build = %s key %q value %q, want g.dlq k v", parked.Topic, parked.Key, parked.Value)
	}
	want := info
	want.SourceTopic, want.SourcePartition, want.SourceOffset = "accounts", 1, 42
	want.Type, want.ID = "AccountCreated", "ev-1"
	got := deadletter.Parse(parked)
	if !got.Time.Equal(want.Time) || !got.FirstFailure.Equal(want.FirstFailure) || !got.LastFailure.Equal(want.LastFailure) {
		t.Errorf("times = %v %v %v, want %v %v %v", got.Time, got.FirstFailure, got.LastFailure, want.Time, want.FirstFailure, want.LastFailure)
	}
	got.Time, got.FirstFailure, got.LastFailure = want.Time, want.FirstFailure, want.LastFailure
	if got != want {
		t.Errorf("Parse(Build) =\n%+v\nwant\n%+v", got, want)
	}
	orig, err := deadletter.Original(parked)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Topic != src.Topic || string(orig.Key) != "k" || string(orig.Value) != "v" || !sameHeaders(orig.Headers, src.Headers) {
		t.Errorf("Original = %s key %q value %q headers %v, want %s k v %v", orig.Topic, orig.Key, orig.Value, orig.Headers, src.Topic, src.Headers)
	}

	// A record no handler saw carries no handler header.
	if got := deadletter.Parse(deadletter.Build("g.dlq", src, deadletter.Info{Reason: deadletter.ReasonDecode})); got.Handler != "" {
		t.Errorf("handler %q on a record no handler saw", got.Handler)
	}
	for _, h := range deadletter.Build("g.dlq", src, deadletter.Info{}).Headers {
		if h.Key == deadletter.HeaderHandler {
			t.Errorf("header %s written without a handler", h.Key)
		}
	}
}

func TestOriginal(t *testing.T) {
	t.Parallel()
	original := []kgo.RecordHeader{hdr(envelope.HeaderID, "ev-1"), hdr("x-trace", "t1"), hdr(envelope.HeaderType, "AccountCreated")}
	rec := &kgo.Record{Topic: "g.dlq", Key: []byte("k"), Value: []byte("v"),
		Headers: append(slices.Clone(original), append(parkedHeaders("accounts", 1, 42), hdr("choreo_dlq_future", "x"))...)}
	got, err := deadletter.Original(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Topic != "accounts" || string(got.Key) != "k" || string(got.Value) != "v" || !sameHeaders(got.Headers, original) {
		t.Errorf("Original = %s key %q value %q headers %v, want accounts k v %v", got.Topic, got.Key, got.Value, got.Headers, original)
	}

	// Without a ce_id, the record's identity was its source position: the original carries it.
	bare := &kgo.Record{Topic: "g.dlq", Value: []byte("v"), Headers: parkedHeaders("accounts", 1, 42)}
	got, err = deadletter.Original(bare)
	if err != nil {
		t.Fatal(err)
	}
	if want := []kgo.RecordHeader{hdr(envelope.HeaderID, envelope.RecordID("accounts", 1, 42))}; !sameHeaders(got.Headers, want) {
		t.Errorf("headers of a headerless record's original = %v, want %v", got.Headers, want)
	}

	if _, err := deadletter.Original(&kgo.Record{Value: []byte("v")}); !errors.Is(err, deadletter.ErrNotParked) {
		t.Errorf("Original of a record without %s: %v, want ErrNotParked", deadletter.HeaderTopic, err)
	}
}
