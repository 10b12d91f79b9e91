package trace

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReadRangesEndOffsetMissing: a range whose last offset no longer exists (deleted by
// retention here; compaction does the same) is read to its end instead of waited on for ever.
func TestReadRangesEndOffsetMissing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		after int // records produced after the deletion, past the range's end
	}{
		{name: "records past the end", after: 5},
		{name: "nothing past the end", after: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "log"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("log"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			produce := func(n int) {
				for i := range n {
					if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
			}
			produce(10)
			adm := kadm.NewClient(cl)
			upTo := kadm.Offsets{}
			upTo.Add(kadm.Offset{Topic: "log", Partition: 0, At: 10})
			res, err := adm.DeleteRecords(ctx, upTo)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			produce(tt.after)

			v, err := openLog(ctx, cl, []string{"log"})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = v.readRanges(ctx, map[string]map[int32]int64{"log": {0: 0}}, map[string]map[int32]int64{"log": {0: 10}},
				func(string, string) bool { return true })
			if err != nil {
				t.Fatalf("readRanges over a deleted range: %v", err)
			}
		})
	}
}
