package consumer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
)

// TestBatchClaimsAndEmitsTogether: records waiting before the runner starts come in one batch,
// whose inbox marks and emitted events are written with a statement per batch, not per record.
// An event twice in the batch, and one the inbox holds from before, must still be applied once
// (never twice, never not at all), and the emitted events keep the order of their causes.
func TestBatchClaimsAndEmitsTogether(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	const total = 40
	var (
		recs []*kgo.Record
		ids  []string
	)
	for i := range total {
		id := envelope.NewID()
		ids = append(ids, id)
		recs = append(recs, h.accountCreated(t, 0, id, fmt.Sprintf("acc-%02d", i), fmt.Sprintf("user%02d", i)))
	}
	// Record 3 again at the end, and record 5 as processed before this run.
	again := recs[3]
	recs = append(recs, &kgo.Record{Topic: again.Topic, Partition: 0, Key: again.Key, Value: again.Value, Headers: again.Headers})
	if _, err := db.Exec(`INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES ($1, $2, 'AccountCreated', 0)`,
		h.scoped(group), ids[5]); err != nil {
		t.Fatal(err)
	}
	h.produce(t, recs...)

	n := h.start(t, db, group, []consumer.Handler{onAccountCreated("create-user",
		func(ctx context.Context, tx *consumer.UnitOfWork, ev *event.AccountCreated) error {
			return tx.Emit(ctx, userCreatedOf(ev))
		}, consumer.Emits(new(event.UserCreated)))})
	n.waitStats(t, "every record", func(s consumer.Stats) bool { return s.Handled+s.Duplicates >= total+1 })
	n.flush(t)
	n.stop()
	if st := n.runner.Stats(); st != (consumer.Stats{Handled: total - 1, Duplicates: 2}) {
		t.Errorf("stats = %+v, want %d handled and 2 duplicates", st, total-1)
	}
	var want, wantIDs []string
	for i := range total {
		if i != 5 {
			want, wantIDs = append(want, fmt.Sprintf("acc-%02d", i)), append(wantIDs, ids[i])
		}
	}
	cs := calls(t, db)
	if len(cs) != len(want) {
		t.Fatalf("%d handler calls, want %d", len(cs), len(want))
	}
	emitted := h.readTopic(t, "users")
	if len(emitted) != len(want) {
		t.Fatalf("%d events emitted, want %d", len(emitted), len(want))
	}
	pos := map[string]int{}
	for i, w := range want {
		if cs[i].AccountID != w {
			t.Errorf("call %d for %s, want %s", i, cs[i].AccountID, w)
		}
		pos[wantIDs[i]] = i
	}
	last := map[int32]int{}
	for _, r := range emitted {
		cause := headers(r)[envelope.HeaderCausationID]
		i, ok := pos[cause]
		if !ok {
			t.Errorf("emitted event caused by %s: not one of the causes, or emitted twice", cause)
			continue
		}
		delete(pos, cause)
		if prev, seen := last[r.Partition]; seen && i < prev {
			t.Errorf("partition %d: the event of cause %d after that of cause %d", r.Partition, i, prev)
		}
		last[r.Partition] = i
	}
}
