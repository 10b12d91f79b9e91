package outbox_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/choreo-dev/choreo/pkg/kafka"
	"github.com/choreo-dev/choreo/pkg/outbox"
	"github.com/choreo-dev/choreo/pkg/sqlite"
)

// TestRelayStuckWhileTheBrokerDoesNotAcknowledge: on a partial outage the broker answers every
// produce with NOT_ENOUGH_REPLICAS and the producer retries without end, so a drain never ends
// and never fails. Stuck must still report it once a batch has waited longer than d, and clear
// once the broker acknowledges; the records are published then, none lost.
func TestRelayStuckWhileTheBrokerDoesNotAcknowledge(t *testing.T) {
	t.Parallel()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "held"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	var outage atomic.Bool
	outage.Store(true)
	var refused atomic.Int64
	fake.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		if !outage.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.SetVersion(req.GetVersion())
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	})
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cl, err := kgo.NewClient(kafka.ClientOpts(fake.ListenAddrs(), "relay")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	recs := testRecords("held", 3)
	add(t, db, recs...)
	r := outbox.NewRelay(db, cl)
	run(t, r)
	const d = 300 * time.Millisecond
	waitFor(t, "Stuck to report the unacknowledged batch", func() bool {
		return errors.Is(r.Stuck(d), outbox.ErrUnacknowledged)
	})
	if refused.Load() == 0 {
		t.Fatal("no produce request was refused: the outage was not simulated")
	}
	if n := pending(t, db); n != len(recs) {
		t.Fatalf("%d records in the outbox during the outage, want all %d", n, len(recs))
	}

	outage.Store(false)
	flush(t, r)
	if err := r.Stuck(d); err != nil {
		t.Fatalf("Stuck after the broker acknowledged: %v", err)
	}
	if n := pending(t, db); n != 0 {
		t.Fatalf("%d records in the outbox after recovery, want 0", n)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "held")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("held", 0); o.Offset != int64(len(recs)) {
		t.Fatalf("topic holds %d records, want %d", o.Offset, len(recs))
	}
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
