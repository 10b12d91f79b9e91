package consumer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/deadletter"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

func TestRunnerAppliesEveryEventOnceInPartitionOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)})

	const total = 30
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, h.accountCreated(t, int32(i%partitions), envelope.NewID(),
			fmt.Sprintf("acc-%02d", i), fmt.Sprintf("user%02d", i)))
	}
	h.produce(t, recs...)

	n.waitStats(t, "every event handled", func(s consumer.Stats) bool { return s.Handled >= total })
	n.stop() // nothing more can happen: the assertions below see the final state
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: total}) {
		t.Errorf("stats = %+v, want %d handled and nothing else", st, total)
	}
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		byID[string(headerValue(r, envelope.HeaderID))] = r
	}
	cs := calls(t, n.db)
	if len(cs) != total {
		t.Errorf("%d handler calls, want %d", len(cs), total)
	}
	seen := map[string]bool{}
	lastOffset := map[int32]int64{0: -1, 1: -1, 2: -1}
	for _, c := range cs {
		r, ok := byID[c.EventID]
		switch {
		case !ok:
			t.Errorf("call for unknown event %s", c.EventID)
			continue
		case seen[c.EventID]:
			t.Errorf("event %s applied twice", c.EventID)
		}
		seen[c.EventID] = true
		if r.Offset <= lastOffset[r.Partition] {
			t.Errorf("partition %d: offset %d applied after offset %d", r.Partition, r.Offset, lastOffset[r.Partition])
		}
		lastOffset[r.Partition] = r.Offset
	}
	if got := storetest.Count(t, n.db, `SELECT count(*) FROM inbox WHERE consumer = $1 AND event_type = 'AccountCreated'`, h.scoped(group)); got != total {
		t.Errorf("%d inbox records, want %d", got, total)
	}
}

func TestRunnerAppliesARedeliveredEventOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		partition int32 // of the second delivery; the first is on 0
	}{
		{"same partition", 0},
		{"another partition", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			var invoked atomic.Int64
			n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create",
				func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error { invoked.Add(1); return nil })})

			id := envelope.NewID()
			first := h.accountCreated(t, 0, id, "acc-dup", "dupe")
			again := &kgo.Record{Topic: first.Topic, Partition: tc.partition, Key: first.Key, Value: first.Value, Headers: first.Headers}
			other := h.accountCreated(t, 1, envelope.NewID(), "acc-dup", "dupe") // same fact, new ID
			h.produce(t, first)
			h.produce(t, again, other)

			n.waitStats(t, "three records", func(s consumer.Stats) bool { return s.Handled+s.Duplicates >= 3 })
			n.stop()
			if st := n.runner.Stats(); st != (consumer.Stats{Handled: 2, Duplicates: 1}) {
				t.Errorf("stats = %+v, want 2 handled and 1 duplicate", st)
			}
			if got := invoked.Load(); got != 2 {
				t.Errorf("handler invoked %d times, want 2", got)
			}
			n1 := 0
			for _, c := range calls(t, n.db) {
				if c.EventID == id {
					n1++
				}
			}
			if n1 != 1 {
				t.Errorf("event %s applied %d times, want 1", id, n1)
			}
		})
	}
}

// TestRunnerParksAFailingHandlersRecord: one record's handler fails in the middle of a batch;
// its changes are undone, it is parked, and the records around it are applied.
func TestRunnerParksAFailingHandlersRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fail    func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error
		wantErr string // in the parked record's error header
	}{
		{
			name: "returns an error",
			fail: func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error {
				return consumer.Permanent(fmt.Errorf("apply: %w", errBoom))
			},
			wantErr: "apply: boom",
		},
		{
			name:    "panics",
			fail:    func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error { panic("kaboom") },
			wantErr: consumer.ErrPanic.Error() + ": kaboom",
		},
		{
			name: "emits an undeclared event",
			fail: func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
				err := tx.Emit(ctx, &event.UserDeleted{UserID: "u", AccountID: ev.AccountID, DeletedAt: time.Now()})
				if !errors.Is(err, consumer.ErrUndeclaredEmit) {
					return fmt.Errorf("Emit of an undeclared event = %v, want ErrUndeclaredEmit", err)
				}
				return err
			},
			wantErr: "create emits UserDeleted: " + consumer.ErrUndeclaredEmit.Error(),
		},
		{
			name: "emits, then fails",
			fail: func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
				if err := tx.Emit(ctx, userCreatedOf(ev)); err != nil {
					return err
				}
				return consumer.Permanent(errBoom)
			},
			wantErr: "boom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create",
				func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
					if ev.Username == "bad" {
						return tc.fail(ctx, tx, ev) // after its call was recorded
					}
					return nil
				}, consumer.Emits(new(event.UserCreated)))})

			before := h.accountCreated(t, 1, "id-before", "acc-1", "before")
			bad := h.accountCreated(t, 1, "id-bad", "acc-1", "bad")
			after := h.accountCreated(t, 1, "id-after", "acc-1", "after")
			h.produce(t, before, bad, after)

			n.waitStats(t, "3 records", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 3 })
			n.flush(t)
			if st := n.runner.Stats(); st != (consumer.Stats{Handled: 2, Parked: 1}) {
				t.Errorf("stats = %+v, want 2 handled, 1 parked", st)
			}
			var got []string
			for _, c := range calls(t, n.db) {
				got = append(got, c.Username)
			}
			if !slices.Equal(got, []string{"before", "after"}) {
				t.Errorf("committed calls %v, want [before after]: the failed handler's write must be rolled back", got)
			}
			if c := storetest.Count(t, n.db, `SELECT count(*) FROM inbox WHERE event_id = 'id-bad'`); c != 0 {
				t.Errorf("the parked event is in the inbox: re-driving it would be ignored")
			}
			if emitted := h.readTopic(t, "users"); len(emitted) != 0 {
				t.Errorf("%d events published for a failed handler, want none", len(emitted))
			}

			parked := h.readTopic(t, deadletter.Topic(group))
			if len(parked) != 1 {
				t.Fatalf("%d parked records, want 1", len(parked))
			}
			p := parked[0]
			checkParked(t, h, p, bad, "create", "handler")
			if hs := headers(p); !strings.Contains(hs[deadletter.HeaderError], tc.wantErr) {
				t.Errorf("%s = %q, want it to contain %q", deadletter.HeaderError, hs[deadletter.HeaderError], tc.wantErr)
			}
		})
	}
}

// checkParked checks that p is orig, parked by handler for reason.
func checkParked(t *testing.T, h *harness, p, orig *kgo.Record, handler, reason string) {
	t.Helper()
	if !bytes.Equal(p.Key, orig.Key) || !bytes.Equal(p.Value, orig.Value) {
		t.Errorf("parked key %q value %x, want the original key %q value %x", p.Key, p.Value, orig.Key, orig.Value)
	}
	hs := headers(p)
	for _, h := range orig.Headers {
		if got := headerValue(p, h.Key); !bytes.Equal(got, h.Value) {
			t.Errorf("parked record's header %s = %q, want the original %q", h.Key, got, h.Value)
		}
	}
	want := map[string]string{
		deadletter.HeaderTopic:     orig.Topic,
		deadletter.HeaderPartition: strconv.Itoa(int(orig.Partition)),
		deadletter.HeaderOffset:    strconv.FormatInt(orig.Offset, 10),
		deadletter.HeaderGroup:     h.scoped(group),
		deadletter.HeaderReason:    reason,
	}
	for k, v := range want {
		if hs[k] != v {
			t.Errorf("header %s = %q, want %q", k, hs[k], v)
		}
	}
	if got, ok := hs[deadletter.HeaderHandler]; handler == "" && ok {
		t.Errorf("header %s = %q on a record no handler saw", deadletter.HeaderHandler, got)
	} else if got != handler {
		t.Errorf("header %s = %q, want %q", deadletter.HeaderHandler, got, handler)
	}
	if _, err := time.Parse(time.RFC3339Nano, hs[deadletter.HeaderTime]); err != nil {
		t.Errorf("header %s: %v", deadletter.HeaderTime, err)
	}
}

func headerValue(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

func TestRunnerParksUndecodableRecords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		bad    func(t *testing.T, h *harness) *kgo.Record // on partition 0
		want   error
		reason string // the choreo_dlq_reason header; "" for "decode"
	}{
		{
			name: "random bytes",
			bad: func(_ *testing.T, h *harness) *kgo.Record {
				v := make([]byte, 64)
				_, _ = rand.Read(v)
				v[0] = 0x7f // not the Confluent magic byte
				return &kgo.Record{Topic: h.topic("accounts"), Key: []byte("acc-x"), Value: v}
			},
			want: codec.ErrFraming,
		},
		{
			name: "empty value",
			bad: func(_ *testing.T, h *harness) *kgo.Record {
				return &kgo.Record{Topic: h.topic("accounts"), Key: []byte("acc-x"), Value: []byte{}}
			},
			want:   codec.ErrEmptyValue,
			reason: "empty",
		},
		{
			name: "tombstone",
			bad: func(_ *testing.T, h *harness) *kgo.Record {
				return &kgo.Record{Topic: h.topic("accounts"), Key: []byte("acc-x")}
			},
			want:   codec.ErrEmptyValue,
			reason: "empty",
		},
		{
			name: "schema ID not in the registry",
			bad: func(t *testing.T, h *harness) *kgo.Record {
				v, err := new(sr.ConfluentHeader).AppendEncode(nil, 987654, nil)
				if err != nil {
					t.Fatal(err)
				}
				return &kgo.Record{Topic: h.topic("accounts"), Key: []byte("acc-x"), Value: append(v, 2, 'x')}
			},
			want: codec.ErrUnknownSchema,
		},
		{
			name: "truncated body",
			bad: func(t *testing.T, h *harness) *kgo.Record {
				r := h.accountCreated(t, 0, "id-trunc", "acc-x", "truncated")
				r.Value = r.Value[:len(r.Value)-8]
				return r
			},
			want: codec.ErrBody,
		},
		{
			name: "event on the wrong topic",
			bad: func(t *testing.T, h *harness) *kgo.Record {
				r := h.accountCreated(t, 0, "id-wrong", "acc-x", "wrong")
				r.Topic = h.topic("users")
				return r
			},
			want:   codec.ErrWrongTopic,
			reason: "contract",
		},
		{
			name: "ce_type of another event",
			bad: func(t *testing.T, h *harness) *kgo.Record {
				r := h.accountCreated(t, 0, "id-type", "acc-x", "type")
				for i := range r.Headers {
					if r.Headers[i].Key == envelope.HeaderType {
						r.Headers[i].Value = []byte("AccountDeleted")
					}
				}
				return r
			},
			want:   codec.ErrTypeMismatch,
			reason: "contract",
		},
		{
			name: "unsupported spec version",
			bad: func(t *testing.T, h *harness) *kgo.Record {
				r := h.accountCreated(t, 0, "id-spec", "acc-x", "spec")
				for i := range r.Headers {
					if r.Headers[i].Key == envelope.HeaderSpecVersion {
						r.Headers[i].Value = []byte("0.3")
					}
				}
				return r
			},
			want:   envelope.ErrMalformed,
			reason: "headers",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil), onUserCreated("user")})

			bad := tc.bad(t, h)
			bad.Partition = 0
			var next *kgo.Record // a valid event right behind it
			if bad.Topic == h.topic("users") {
				next = h.record(t, 0, "id-next", userCreatedOf(&event.AccountCreated{AccountID: "acc-x", Username: "next"}))
			} else {
				next = h.accountCreated(t, 0, "id-next", "acc-x", "next")
			}
			h.produce(t, bad, next)

			n.waitStats(t, "2 records", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 2 })
			n.flush(t)
			if st := n.runner.Stats(); st != (consumer.Stats{Handled: 1, Parked: 1}) {
				t.Errorf("stats = %+v, want 1 handled, 1 parked", st)
			}
			if cs := calls(t, n.db); len(cs) != 1 || cs[0].EventID != "id-next" {
				t.Errorf("calls = %+v, want only the valid event's", cs)
			}
			parked := h.readTopic(t, deadletter.Topic(group))
			if len(parked) != 1 {
				t.Fatalf("%d parked records, want 1", len(parked))
			}
			p := parked[0]
			reason := tc.reason
			if reason == "" {
				reason = "decode"
			}
			checkParked(t, h, p, bad, "", reason)
			if e := headers(p)[deadletter.HeaderError]; !strings.Contains(e, tc.want.Error()) {
				t.Errorf("%s = %q, want it to contain %q", deadletter.HeaderError, e, tc.want)
			}
		})
	}
}

// TestParkedTombstoneStaysATombstone: a parked record is the original record; a tombstone
// (null value) must not come back as an empty value, which compaction treats differently.
func TestParkedTombstoneStaysATombstone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)})
	h.produce(t, &kgo.Record{Topic: h.topic("accounts"), Key: []byte("acc-x")})
	n.waitStats(t, "the tombstone parked", func(s consumer.Stats) bool { return s.Parked >= 1 })
	n.flush(t)
	parked := h.readTopic(t, deadletter.Topic(group))
	if len(parked) != 1 {
		t.Fatalf("%d parked records, want 1", len(parked))
	}
	if parked[0].Value != nil {
		t.Errorf("parked tombstone has value %q (non-null), want null", parked[0].Value)
	}
}

func TestRunnerIgnoresEventsItHasNoHandlerFor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)})
	h.produce(t,
		h.record(t, 0, "id-deleted", &event.AccountDeleted{AccountID: "acc-1", DeletedAt: time.Now()}),
		h.accountCreated(t, 0, "id-created", "acc-1", "one"))

	n.waitStats(t, "2 records", func(s consumer.Stats) bool { return s.Handled+s.Ignored+s.Parked >= 2 })
	n.flush(t)
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 1, Ignored: 1}) {
		t.Errorf("stats = %+v, want 1 handled, 1 ignored", st)
	}
	if parked := h.readTopic(t, deadletter.Topic(group)); len(parked) != 0 {
		t.Errorf("%d records parked, want none", len(parked))
	}
	if cs := calls(t, n.db); len(cs) != 1 || cs[0].EventID != "id-created" {
		t.Errorf("calls = %+v", cs)
	}
}

func userCreatedOf(ev *event.AccountCreated) *event.UserCreated {
	return &event.UserCreated{
		UserID: envelope.DeriveUUID("user", ev.AccountID), AccountID: ev.AccountID,
		Username: ev.Username, Email: ev.Email, CreatedAt: ev.CreatedAt,
	}
}

// TestEmitDerivesTheEventFromItsCause: an emitted event carries its cause's lineage and an ID
// derived from the cause's, so that handling a cause again never emits a different fact.
func TestEmitDerivesTheEventFromItsCause(t *testing.T) {
	t.Parallel()
	h := newHarness(t, group, "g2")
	now := time.Date(2030, 1, 2, 3, 4, 5, 6000000, time.UTC)
	handlers := func() []consumer.Handler {
		return []consumer.Handler{onAccountCreated("create-user",
			func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
				return tx.Emit(ctx, userCreatedOf(ev))
			}, consumer.Emits(new(event.UserCreated)))}
	}
	n := h.start(t, openDB(t), group, handlers(), consumer.Clock(func() time.Time { return now }))

	created := time.Now().UTC().Truncate(time.Millisecond)
	withCorr := h.accountCreated(t, 0, "cause-1", "acc-1", "one") // correlation "corr-cause-1"
	noCorr, err := h.codec.Record(envelope.Envelope{ID: "cause-2", Source: "/test"},
		&event.AccountCreated{AccountID: "acc-2", Username: "two", Email: "two@mail.com", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	noCorr.Partition = 1
	h.produce(t, withCorr, noCorr)
	n.waitStats(t, "2 causes", func(s consumer.Stats) bool { return s.Handled >= 2 })
	n.flush(t)

	emitted := h.readTopic(t, "users")
	if len(emitted) != 2 {
		t.Fatalf("%d events emitted, want 2", len(emitted))
	}
	want := map[string]struct{ accountID, corr string }{
		"cause-1": {"acc-1", "corr-cause-1"},
		"cause-2": {"acc-2", "cause-2"}, // a cause without correlation starts the chain
	}
	for _, r := range emitted {
		hs := headers(r)
		cause := hs[envelope.HeaderCausationID]
		w, ok := want[cause]
		if !ok {
			t.Errorf("emitted event with causation %q: %v", cause, hs)
			continue
		}
		wantHs := map[string]string{
			envelope.HeaderID:            envelope.DeriveID(cause, "UserCreated", w.accountID+"#0"),
			envelope.HeaderType:          "UserCreated",
			envelope.HeaderSource:        "/" + service,
			envelope.HeaderCorrelationID: w.corr,
			envelope.HeaderTime:          now.Format(time.RFC3339Nano),
			envelope.HeaderContentType:   envelope.ContentType,
		}
		for k, v := range wantHs {
			if hs[k] != v {
				t.Errorf("%s: header %s = %q, want %q", cause, k, hs[k], v)
			}
		}
		if string(r.Key) != w.accountID {
			t.Errorf("%s: key %q, want %q", cause, r.Key, w.accountID)
		}
		d, err := h.codec.DecodeRecord(context.Background(), r)
		if err != nil {
			t.Errorf("%s: decode emitted record: %v", cause, err)
			continue
		}
		if uc, ok := d.Event.(*event.UserCreated); !ok || uc.AccountID != w.accountID || uc.UserID != envelope.DeriveUUID("user", w.accountID) {
			t.Errorf("%s: emitted %+v", cause, d.Event)
		}
	}

	// The same cause again is a duplicate: nothing new is emitted.
	// A copy of the produced record: same key, value and headers (ce_id), new produce context.
	again := &kgo.Record{Topic: withCorr.Topic, Partition: 2, Key: withCorr.Key, Value: withCorr.Value, Headers: withCorr.Headers}
	h.produce(t, again)
	n.waitStats(t, "the duplicate", func(s consumer.Stats) bool { return s.Duplicates >= 1 })
	n.flush(t)
	if got := h.readTopic(t, "users"); len(got) != 2 {
		t.Errorf("%d events on users after a duplicate cause, want still 2", len(got))
	}

	// Another group with its own database handles the same causes: the very same facts.
	n2 := h.start(t, openDB(t), "g2", handlers(), consumer.Clock(func() time.Time { return now }))
	n2.waitStats(t, "the causes in g2", func(s consumer.Stats) bool { return s.Handled+s.Duplicates >= 3 })
	n2.flush(t)
	all := h.readTopic(t, "users")
	if len(all) != 4 {
		t.Fatalf("%d events on users, want 4", len(all))
	}
	values := map[string][][]byte{}
	for _, r := range all {
		id := headers(r)[envelope.HeaderID]
		values[id] = append(values[id], r.Value)
	}
	if len(values) != 2 {
		t.Errorf("%d distinct ce_ids among 4 emitted events, want 2 (each emitted once per group)", len(values))
	}
	for id, vs := range values {
		if len(vs) != 2 || !bytes.Equal(vs[0], vs[1]) {
			t.Errorf("ce_id %s: %d events, values equal %v", id, len(vs), len(vs) == 2 && bytes.Equal(vs[0], vs[1]))
		}
	}
}

// TestRunnerCommitsProcessedOffsets: what a runner finished is committed when it stops, and
// another runner of the group starts after it.
func TestRunnerCommitsProcessedOffsets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	n := h.start(t, db, group, []consumer.Handler{onAccountCreated("create", nil)})

	const total = 12
	perPartition := map[int32]int64{}
	for i := range total {
		p := int32(i % partitions)
		perPartition[p]++
		h.produce(t, h.accountCreated(t, p, envelope.NewID(), fmt.Sprintf("acc-%d", i), "u"))
	}
	n.waitStats(t, "all handled", func(s consumer.Stats) bool { return s.Handled >= total })
	n.stop()

	offsets := h.committed(t, group)["accounts"]
	sum := int64(0)
	for p, want := range perPartition {
		if offsets[p] != want {
			t.Errorf("partition %d: committed %d, want %d", p, offsets[p], want)
		}
		sum += offsets[p]
	}
	if sum != total {
		t.Errorf("committed offsets sum to %d, want %d", sum, total)
	}

	var invoked atomic.Int64
	n2 := h.start(t, db, group, []consumer.Handler{onAccountCreated("create",
		func(context.Context, *consumer.UnitOfWork, *event.AccountCreated) error { invoked.Add(1); return nil })})
	for p := range int32(partitions) {
		h.produce(t, h.accountCreated(t, p, envelope.NewID(), fmt.Sprintf("acc-new-%d", p), "new"))
	}
	n2.waitStats(t, "the new records", func(s consumer.Stats) bool { return s.Handled >= partitions })
	n2.stop()
	if st := n2.runner.Stats(); st != (consumer.Stats{Handled: partitions}) {
		t.Errorf("second runner stats = %+v, want only the %d new records handled (no redelivery)", st, partitions)
	}
	if got := invoked.Load(); got != partitions {
		t.Errorf("second runner invoked its handler %d times, want %d", got, partitions)
	}
	if got := len(calls(t, db)); got != total+partitions {
		t.Errorf("%d calls, want %d", got, total+partitions)
	}
}

// TestRunnerDoesNotCommitAnUnfinishedBatch: a runner stopped while a handler is running
// commits neither that record nor those after it; the next runner applies them, once.
func TestRunnerDoesNotCommitAnUnfinishedBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	blocked := make(chan struct{})
	var once sync.Once
	n := h.start(t, db, group, []consumer.Handler{onAccountCreated("create",
		func(ctx context.Context, _ *consumer.UnitOfWork, ev *event.AccountCreated) error {
			if ev.Username != "block" {
				return nil
			}
			once.Do(func() { close(blocked) })
			<-ctx.Done() // a handler still working when the service stops
			return ctx.Err()
		})})

	recs := h.produce(t,
		h.accountCreated(t, 0, "id-a", "acc-1", "a"),
		h.accountCreated(t, 0, "id-b", "acc-1", "b"),
		h.accountCreated(t, 0, "id-block", "acc-1", "block"),
		h.accountCreated(t, 0, "id-c", "acc-1", "c"))
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking record never reached its handler")
	}
	n.stop()

	if got := h.committed(t, group)["accounts"][0]; got > recs[2].Offset {
		t.Errorf("committed offset %d of partition 0, want at most %d (the unfinished record's)", got, recs[2].Offset)
	}
	for _, c := range calls(t, db) {
		if c.Username == "block" || c.Username == "c" {
			t.Errorf("%s applied by a runner stopped before finishing it", c.Username)
		}
	}
	handledBefore := n.runner.Stats().Handled

	n2 := h.start(t, db, group, []consumer.Handler{onAccountCreated("create", nil)})
	n2.waitStats(t, "the rest", func(s consumer.Stats) bool { return handledBefore+s.Handled >= 4 })
	n2.stop()
	var got []string
	for _, c := range calls(t, db) {
		got = append(got, c.Username)
	}
	if !slices.Equal(got, []string{"a", "b", "block", "c"}) {
		t.Errorf("applied %v, want [a b block c], each once", got)
	}
	if st := n2.runner.Stats(); st.Duplicates != 0 || st.Parked != 0 {
		t.Errorf("second runner stats = %+v", st)
	}
}

// TestRunnerRetriesWhileTheRegistryIsUnavailable: a record whose schema ID the codec has not
// seen needs the registry. A registry outage is not a defect of the record (codec: "except
// ErrRegistryUnavailable, which may pass"): it must not be parked, and is applied once the
// registry answers again.
func TestRunnerRetriesWhileTheRegistryIsUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	// A newer producer writes AccountCreated with a field this build does not know.
	evolved := `{"name":"choreo.account.v1.AccountCreated","type":"record","fields":[
		{"name":"accountId","type":"string"},{"name":"username","type":"string"},
		{"name":"email","type":"string"},
		{"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"plan","type":"string","default":"free"}]}`
	ss, err := h.srClient.CreateSchema(context.Background(), "accounts-choreo.account.v1.AccountCreated",
		sr.Schema{Schema: evolved, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	schema, err := avro.ParseWithCache(evolved, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := avro.Marshal(schema, map[string]any{
		"accountId": "acc-new", "username": "newer", "email": "newer@mail.com",
		"createdAt": time.Now().UTC().Truncate(time.Millisecond), "plan": "pro",
	})
	if err != nil {
		t.Fatal(err)
	}
	value, err := new(sr.ConfluentHeader).AppendEncode(nil, ss.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := h.accountCreated(t, 0, "id-newer", "acc-new", "newer")
	newer.Value = append(value, body...)

	// The registry fails its first two schema lookups, then recovers.
	var lookups atomic.Int64
	h.reg.Intercept(srfake.Interceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") && lookups.Add(1) <= 2 {
			http.Error(w, `{"error_code":50003,"message":"unavailable"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	}))

	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create", nil)})
	h.produce(t, newer, h.accountCreated(t, 0, "id-next", "acc-new", "next"))
	n.waitStats(t, "2 records", func(s consumer.Stats) bool { return s.Handled+s.Parked >= 2 })
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 2}) {
		t.Errorf("stats = %+v, want 2 handled: a registry outage parked a valid event", st)
	}
	if lookups.Load() < 2 {
		t.Errorf("%d schema lookups, want the failing ones and a successful one", lookups.Load())
	}
}

// TestRunnerParksAHandlerErrorThatEndedTheTransaction: SQLite ends the whole transaction on some
// errors (a conflict with ON CONFLICT ROLLBACK, RAISE(ROLLBACK) in a trigger). The handler
// reports the error as any other; the record must be parked and the next one applied, not the
// batch retried forever while the runner takes nothing else.
func TestRunnerParksAHandlerErrorThatEndedTheTransaction(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var conflicts atomic.Int64
	n := h.start(t, openDB(t), group, []consumer.Handler{onAccountCreated("create",
		func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO strict (id) VALUES ($1)`, ev.Username)
			if err != nil {
				conflicts.Add(1)
			}
			return err
		})}, consumer.Retry(consumer.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond}))
	h.produce(t,
		h.accountCreated(t, 0, "id-1", "acc-1", "same"),
		h.accountCreated(t, 0, "id-2", "acc-2", "same"), // conflicts with the first
		h.accountCreated(t, 0, "id-3", "acc-3", "other"))
	// Wait until partition 0 is done or its conflict was seen twice (the batch is being retried).
	kafkatest.Eventually(t, 10*time.Second, func() error {
		if st := n.runner.Stats(); st.Handled+st.Parked < 3 && conflicts.Load() < 2 {
			return fmt.Errorf("stats %+v, %d conflicts", st, conflicts.Load())
		}
		return nil
	})
	h.produce(t, h.accountCreated(t, 1, "id-4", "acc-4", "elsewhere")) // another partition, polled later

	// A runner stuck retrying the batch never gets here: it takes nothing else, so the deadline
	// is generous and only bounds the failure.
	deadline := time.Now().Add(30 * time.Second)
	for st := n.runner.Stats(); st.Handled+st.Parked < 4 && time.Now().Before(deadline); st = n.runner.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: 3, Parked: 1, Retried: 1}) {
		t.Fatalf("stats = %+v after 30s, want 3 handled, 1 retried once and parked; the handler met the conflict %d times: "+
			"the runner retries the batch forever and polls nothing else", st, conflicts.Load())
	}
	if c := conflicts.Load(); c != 2 {
		t.Errorf("the handler met the conflict %d times, want 2 (MaxAttempts)", c)
	}
}

// bogus is an event the catalog does not know.
type bogus struct{}

func (*bogus) Schema() avro.Schema {
	return avro.MustParse(`{"name":"choreo.test.Bogus","type":"record","fields":[{"name":"id","type":"string"}]}`)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	relay := outbox.NewRelay(db, nil)
	valid := func() consumer.Config {
		return consumer.Config{Service: service, Group: group, DB: db, Codec: h.codec, Relay: relay,
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(h.brokers...)}}
	}
	create := onAccountCreated("create", nil)
	for _, tc := range []struct {
		name     string
		cfg      func(*consumer.Config)
		handlers []consumer.Handler
		wantErr  string // empty: New succeeds
	}{
		{name: "valid", handlers: []consumer.Handler{create, onUserCreated("user")}},
		{name: "empty service", cfg: func(c *consumer.Config) { c.Service = "" }, handlers: []consumer.Handler{create}, wantErr: "Service"},
		{name: "empty group", cfg: func(c *consumer.Config) { c.Group = "" }, handlers: []consumer.Handler{create}, wantErr: "Group"},
		{name: "nil DB", cfg: func(c *consumer.Config) { c.DB = nil }, handlers: []consumer.Handler{create}, wantErr: "DB"},
		{name: "nil codec", cfg: func(c *consumer.Config) { c.Codec = nil }, handlers: []consumer.Handler{create}, wantErr: "Codec"},
		{name: "nil relay", cfg: func(c *consumer.Config) { c.Relay = nil }, handlers: []consumer.Handler{create}, wantErr: "Relay"},
		{name: "no handlers", wantErr: "no handlers"},
		{name: "unnamed handler", handlers: []consumer.Handler{onAccountCreated("", nil)}, wantErr: "empty or registered twice"},
		{
			name:     "handler name twice",
			handlers: []consumer.Handler{create, consumer.On("create", func(context.Context, *consumer.UnitOfWork, *event.UserCreated) error { return nil })},
			wantErr:  "empty or registered twice",
		},
		{
			name:     "two handlers for one event",
			handlers: []consumer.Handler{create, onAccountCreated("create-2", nil)},
			wantErr:  "both consume AccountCreated",
		},
		{
			name:     "handler of an unknown event",
			handlers: []consumer.Handler{consumer.On("bogus", func(context.Context, *consumer.UnitOfWork, *bogus) error { return nil })},
			wantErr:  event.ErrUnknown.Error(),
		},
		{
			name:     "handler emitting an unknown event",
			handlers: []consumer.Handler{onAccountCreated("create", nil, consumer.Emits(new(bogus)))},
			wantErr:  event.ErrUnknown.Error(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			r, err := consumer.New(cfg, tc.handlers)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = r.Run(ctx) // closes the runner's client
				if got := r.Topics(); !slices.Equal(got, []string{h.topic("accounts"), h.topic("users")}) {
					t.Errorf("Topics() = %v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error about %q", tc.wantErr)
			}
			if r != nil {
				t.Errorf("New returned a runner with error %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New: %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}
