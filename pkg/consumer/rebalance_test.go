package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/stacktest"
)

// TestRebalanceAppliesEachEventOnce runs two members of one group over one database, as two
// replicas of a service do: a member joining mid-stream and one leaving mid-stream move
// partitions between them, and every event is still applied exactly once.
func TestRebalanceAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	db := openDB(t)
	handlers := func() []consumer.Handler { return []consumer.Handler{onAccountCreated("record", nil)} }
	burst := func(from, n int) {
		for i := from; i < from+n; i++ {
			h.produce(t, h.accountCreated(t, int32(i%partitions), fmt.Sprintf("id-%04d", i), fmt.Sprintf("acc-%04d", i), "u"))
		}
	}
	a := h.start(t, db, group, handlers())
	burst(0, 150)
	b := h.start(t, db, group, handlers()) // joins: partitions move from a to b
	burst(150, 150)
	a.waitStats(t, "a to have handled something", func(s consumer.Stats) bool { return s.Handled > 0 })
	// While a is still a member, b handles records only if the join gave it partitions: a
	// rebalance that left everything with a would pass every count below.
	b.waitStats(t, "b, while a is still in the group, to have handled something", func(s consumer.Stats) bool { return s.Handled > 0 })
	a.stop() // leaves: its partitions move to b
	burst(300, 150)
	stacktest.Eventually(t, 20*time.Second, func() error {
		if n := stacktest.Count(t, db, `SELECT count(*) FROM calls`); n < 450 {
			return fmt.Errorf("%d of 450 events applied", n)
		}
		return nil
	})
	if n := stacktest.Count(t, db, `SELECT count(DISTINCT account_id) FROM calls`); n != 450 {
		t.Errorf("%d distinct accounts applied, want 450", n)
	}
	if n := stacktest.Count(t, db, `SELECT count(*) FROM calls`); n != 450 {
		t.Errorf("%d handler effects for 450 events: some event was applied twice", n)
	}
	sa, sb := a.runner.Stats(), b.runner.Stats()
	if sa.Handled+sb.Handled != 450 {
		t.Errorf("handled %d + %d, want 450 in all (duplicates %d + %d)", sa.Handled, sb.Handled, sa.Duplicates, sb.Duplicates)
	}
}
