package consumer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A taken batch must not stay reachable through the queue's backing array: a handled batch
// holds its fetch's buffers, and a backlog would keep several of them per partition alive.
func TestPopBatchReleasesTheTakenBatch(t *testing.T) {
	t.Parallel()
	a := []*kgo.Record{{Offset: 1}}
	b := []*kgo.Record{{Offset: 2}}
	queue := make([][]*kgo.Record, 0, 4)
	queue = append(queue, a, b)
	backing := queue[:2]

	batch, rest := popBatch(queue)
	if len(batch) != 1 || batch[0].Offset != 1 {
		t.Fatalf("took %v, want the first batch", batch)
	}
	if len(rest) != 1 || rest[0][0].Offset != 2 {
		t.Fatalf("rest %v, want the second batch alone", rest)
	}
	if backing[0] != nil {
		t.Error("the backing array still references the taken batch")
	}
}
