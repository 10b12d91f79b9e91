package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/storetest"
)

// TestRebalanceAppliesEachEventOnce runs two members of one group over one database, as two
// replicas of a service do: a member joining mid-stream and one leaving mid-stream move
// partitions between them, and every event is still applied exactly once.
func TestRebalanceAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	handlers := func() []consumer.Handler { return []consumer.Handler{onAccountCreated("record", nil)} }
	a := h.start(t, db, group, handlers())
	produced := 0
	burst := func(n int) {
		for range n {
			h.produce(t, h.accountCreated(t, int32(produced%partitions), fmt.Sprintf("id-%04d", produced), fmt.Sprintf("acc-%04d", produced), "u"))
			produced++
		}
	}
	burst(150)
	b := h.start(t, db, group, handlers()) // joins: partitions move from a to b
	burst(150)
	a.waitStats(t, "a to have handled something", func(s consumer.Stats) bool { return s.Handled > 0 })
	// While a is still a member, b handles records only if the join gave it partitions: a
	// rebalance that left everything with a would pass every count below. Records keep coming
	// until then, since a real broker's rebalance may end after a has drained the burst.
	deadline := time.Now().Add(60 * time.Second)
	for b.runner.Stats().Handled == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b handled nothing in 60s while a was in the group: the join gave it no partition (a: %+v)", a.runner.Stats())
		}
		burst(partitions)
		time.Sleep(100 * time.Millisecond)
	}
	a.stop() // leaves: its partitions move to b
	burst(150)
	total := produced
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if n := storetest.Count(t, db, `SELECT count(*) FROM calls`); n < total {
			return fmt.Errorf("%d of %d events applied", n, total)
		}
		return nil
	})
	if n := storetest.Count(t, db, `SELECT count(DISTINCT account_id) FROM calls`); n != total {
		t.Errorf("%d distinct accounts applied, want %d", n, total)
	}
	if n := storetest.Count(t, db, `SELECT count(*) FROM calls`); n != total {
		t.Errorf("%d handler effects for %d events: some event was applied twice", n, total)
	}
	// A runner counts a batch's outcomes after its transaction commits: the rows can be there
	// before the counts.
	var sa, sb consumer.Stats
	kafkatest.Eventually(t, 30*time.Second, func() error {
		if sa, sb = a.runner.Stats(), b.runner.Stats(); sa.Handled+sb.Handled < int64(total) {
			return fmt.Errorf("handled %d + %d of %d", sa.Handled, sb.Handled, total)
		}
		return nil
	})
	if sa.Handled+sb.Handled != int64(total) {
		t.Errorf("handled %d + %d, want %d in all (duplicates %d + %d)", sa.Handled, sb.Handled, total, sa.Duplicates, sb.Duplicates)
	}
}
