package cli

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runBrokerOnly is `choreo dev -broker-only`: the embedded broker alone, in its own process, so
// that services, peers and load generators started separately (make bench) share one broker
// whose memory and CPU are not counted in theirs. Records live in memory only: a benchmark's
// broker starts empty and its state is not worth keeping.
func runBrokerOnly(ctx context.Context, env Env, port int) error {
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.ClusterID("choreo-dev"))
	if err != nil {
		return fmt.Errorf("embedded Kafka on 127.0.0.1:%d: %w", port, err)
	}
	defer c.Close()
	// The first line is the address, for scripts that start it on port 0.
	fmt.Fprintf(env.Stdout, "kafka %s\n", c.ListenAddrs()[0])
	<-ctx.Done()
	return nil
}
