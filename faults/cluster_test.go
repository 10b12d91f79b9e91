package faults_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterFaults runs the registrations on a three-broker cluster (deployments/kafka/cluster.sh:
// brokers 1-3, three controllers), where the services create every topic with replication 3 and
// min.insync.replicas 2 (schemas/catalog.yaml), and kills brokers with SIGKILL mid-stream.
func TestClusterFaults(t *testing.T) {
	if os.Getenv("CHOREO_FAULTS") != "1" {
		t.Skip(skipReason)
	}
	if registrations < 1 || workers < 1 {
		t.Fatalf("CHOREO_FAULTS_N=%d and CHOREO_FAULTS_WORKERS=%d must be at least 1", registrations, workers)
	}
	stopOnInterrupt(t)
	in := setUp(t, (*infra).startCluster)
	t.Logf("faults: %d registrations per scenario, %d workers, rate %d/s (0 = unlimited), cluster %s",
		registrations, workers, rate, strings.Join(in.brokers, ","))
	runScenarios(t, in, clusterScenarios())
}

func clusterScenarios() []scenario {
	one, two := &outage{}, &outage{}
	return []scenario{
		{
			name: "cluster-kill-leader", key: "clkill",
			steps: func(r *run) []step {
				one.r = r
				return []step{
					{0.4, "kill -9 the broker leading most partitions", one.killMostLeading},
					{0.7, "restart the killed broker", one.restartKilled},
				}
			},
			check: one.check,
		},
		{
			name: "cluster-lose-two-brokers", key: "cltwo",
			steps: func(r *run) []step {
				two.r, two.probing = r, true
				return []step{
					{0.3, "kill -9 the broker leading most partitions", two.killMostLeading},
					{0.4, "kill -9 a second broker: writes must wait for the ISR", two.killSecond},
					{0.5, "restart both killed brokers", two.restartKilled},
				}
			},
			check: two.check,
		},
	}
}

// startCluster starts a cluster of the test's own with cluster.sh on free ports and a data
// directory of its own, and stops it at the end. KAFKA_BROKERS is not used: the scenarios kill
// brokers, which must be the test's.
func (in *infra) startCluster(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		t.Skip("no java on PATH: the test's cluster needs Java 17+ (and Maven once)")
	}
	var ports []string
	for len(ports) < 6 {
		if p := strconv.Itoa(freePort(t)); !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	in.kafkaEnv = append(os.Environ(),
		"KAFKA_CLUSTER_PORTS="+strings.Join(ports[:3], ","),
		"KAFKA_CLUSTER_CONTROLLER_PORTS="+strings.Join(ports[3:], ","),
		"KAFKA_CLUSTER_DATA_DIR="+filepath.Join(in.tmp, "cluster"),
	)
	if os.Getenv("KAFKA_CLUSTER_WAIT_TIMEOUT") == "" {
		// Six JVMs starting at once on two busy cores can take minutes.
		in.kafkaEnv = append(in.kafkaEnv, "KAFKA_CLUSTER_WAIT_TIMEOUT=300")
	}
	for _, p := range ports[:3] {
		in.brokers = append(in.brokers, net.JoinHostPort("127.0.0.1", p))
	}
	in.ownBroker = true
	unregister := atInterrupt(func() { _, _ = in.cluster("stop") })
	t.Cleanup(func() {
		unregister()
		if out, err := in.cluster("stop"); err != nil {
			t.Errorf("cluster.sh stop: %v\n%s", err, out)
		}
		if t.Failed() {
			for id := 1; id <= 3; id++ {
				log := filepath.Join(in.tmp, "cluster", fmt.Sprintf("broker-%d", id), "kafka.log")
				t.Logf("last lines of %s:\n%s", log, tail(log, 15))
			}
		}
	})
	start := time.Now()
	if out, err := in.cluster("start"); err != nil {
		t.Fatalf("cluster.sh start: %v\n%s", err, out)
	}
	t.Logf("faults: started a cluster (3 brokers, 3 controllers) on %s in %s", strings.Join(in.brokers, ","), time.Since(start).Round(time.Millisecond))
}

// cluster runs cluster.sh with args against the test's cluster.
func (in *infra) cluster(args ...string) ([]byte, error) {
	c := exec.Command("bash", append([]string{filepath.Join(in.root, "deployments/kafka/cluster.sh")}, args...)...)
	c.Env = in.kafkaEnv
	return c.CombinedOutput()
}

// outage is one cluster scenario's state, shared by its steps and its check.
type outage struct {
	r       *run
	probing bool // probe writes with acks=all while two brokers are down

	mu          sync.Mutex
	adm         *kadm.Client
	killed      []int32 // broker IDs, in the order killed
	ledByKilled int     // partitions the first killed broker led
	refused     error   // what a probe write got with one broker left; nil: never refused
	accepted    bool    // a probe write was acknowledged once a second broker was back
}

func (o *outage) admin() (*kadm.Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.adm == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.r.in.brokers...), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		o.r.t.Cleanup(cl.Close)
		o.adm = kadm.NewClient(cl)
	}
	return o.adm, nil
}

// partitions returns the partitions of the scenario's topics.
func (o *outage) partitions(ctx context.Context) ([]kadm.PartitionDetail, error) {
	adm, err := o.admin()
	if err != nil {
		return nil, err
	}
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var ps []kadm.PartitionDetail
	for name, td := range tds {
		if strings.HasPrefix(name, o.r.ns+".") {
			ps = append(ps, td.Partitions.Sorted()...)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no topic of namespace %s", o.r.ns)
	}
	return ps, nil
}

// waitPartitions polls the metadata until ok holds for every partition of the scenario's topics.
func (o *outage) waitPartitions(what string, timeout time.Duration, ok func(kadm.PartitionDetail) bool) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		ps, err := o.partitions(ctx)
		if err == nil {
			var bad []string
			for _, p := range ps {
				if !ok(p) {
					bad = append(bad, fmt.Sprintf("%s/%d leader %d isr %v", p.Topic, p.Partition, p.Leader, p.ISR))
				}
			}
			if len(bad) == 0 {
				return time.Since(start), nil
			}
			last = fmt.Sprintf("%d of %d partitions not yet (first: %s)", len(bad), len(ps), bad[0])
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("%s: not within %s: %s", what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// mostLeading returns the live broker that leads most of the scenario's partitions.
func (o *outage) mostLeading() (id int32, led int, counts map[int32]int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := o.partitions(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	counts = map[int32]int{}
	for _, p := range ps {
		if p.Leader >= 0 && !slices.Contains(o.killed, p.Leader) {
			counts[p.Leader]++
		}
	}
	id = -1
	for b, n := range counts {
		if n > led || n == led && b < id {
			id, led = b, n
		}
	}
	if id < 0 {
		return 0, 0, counts, errors.New("no live broker leads a partition")
	}
	return id, led, counts, nil
}

// kill sends SIGKILL to the live broker leading most partitions and waits until every
// partition has a live leader again.
func (o *outage) kill() (int32, error) {
	id, led, counts, err := o.mostLeading()
	if err != nil {
		return 0, err
	}
	out, err := o.r.in.cluster("kill", strconv.Itoa(int(id)))
	if err != nil {
		return 0, fmt.Errorf("cluster.sh kill %d: %w\n%s", id, err, out)
	}
	o.mu.Lock()
	o.killed = append(o.killed, id)
	if len(o.killed) == 1 {
		o.ledByKilled = led
	}
	dead := slices.Clone(o.killed)
	o.mu.Unlock()
	o.r.logEvent("broker %d killed (SIGKILL); it led %d of the scenario's partitions (leaders by broker: %v)", id, led, counts)
	took, err := o.waitPartitions("new leaders", 90*time.Second, func(p kadm.PartitionDetail) bool {
		return p.Leader >= 0 && !slices.Contains(dead, p.Leader)
	})
	if err != nil {
		return id, err
	}
	o.r.logEvent("every partition has a live leader %s after broker %d was killed", took.Round(time.Millisecond), id)
	return id, nil
}

func (o *outage) killMostLeading() error {
	if o.probing {
		if err := o.createProbeTopic(); err != nil {
			return err
		}
	}
	_, err := o.kill()
	return err
}

// killSecond kills a second broker, so one is left: with min.insync.replicas 2 no write can be
// acknowledged. A probe producer shows the broker's answer, NOT_ENOUGH_REPLICAS; the outage is
// held for a while with the traffic going on.
func (o *outage) killSecond() error {
	id, err := o.kill()
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	var (
		last error
		seen []string // the distinct answers before, for the failure message
	)
	for time.Now().Before(deadline) {
		last = o.probe(5 * time.Second)
		if last != nil && !slices.Contains(seen, last.Error()) {
			seen = append(seen, last.Error())
		}
		if errors.Is(last, kerr.NotEnoughReplicas) || errors.Is(last, kerr.NotEnoughReplicasAfterAppend) {
			o.mu.Lock()
			o.refused = last
			o.mu.Unlock()
			o.r.logEvent("with broker %d killed too, a write with acks=all is refused %s later: %v", id, time.Since(start).Round(time.Millisecond), last)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if o.refused == nil {
		return fmt.Errorf("with one broker left, probe writes never got NOT_ENOUGH_REPLICAS within 90s; they got: %s", strings.Join(seen, "; "))
	}
	time.Sleep(10 * time.Second) // the outage goes on while the traffic does
	pending, _ := outboxPending(o.r.instance("account-service"))
	o.r.logEvent("after 10 s on one broker: account-service outbox holds %d records; probe: %v", pending, o.probe(5*time.Second))
	return nil
}

// restartKilled starts the killed brokers again, the last killed first, and waits until every
// partition has all three replicas in sync.
func (o *outage) restartKilled() error {
	o.mu.Lock()
	killed := slices.Clone(o.killed)
	o.mu.Unlock()
	for i, id := range slices.Backward(killed) {
		start := time.Now()
		out, err := o.r.in.cluster("start", strconv.Itoa(int(id)))
		if err != nil {
			return fmt.Errorf("cluster.sh start %d: %w\n%s", id, err, out)
		}
		o.r.logEvent("broker %d restarted and listed by the cluster in %s", id, time.Since(start).Round(time.Millisecond))
		if o.probing && i == len(killed)-1 {
			deadline := time.Now().Add(90 * time.Second)
			var err error
			for time.Now().Before(deadline) {
				if err = o.probe(5 * time.Second); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				return fmt.Errorf("with broker %d back, probe writes still fail after 90s: %w", id, err)
			}
			o.mu.Lock()
			o.accepted = true
			o.mu.Unlock()
			o.r.logEvent("with broker %d back, a write with acks=all is acknowledged %s after its restart", id, time.Since(start).Round(time.Millisecond))
		}
	}
	took, err := o.waitPartitions("full ISR", 180*time.Second, func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 })
	if err != nil {
		return err
	}
	o.r.logEvent("every partition has 3 in-sync replicas again, %s after the last restart", took.Round(time.Millisecond))
	return nil
}

func (o *outage) probeTopic() string { return o.r.topic("probe") }

// createProbeTopic creates a topic with the catalog's settings for the probe writes (it is not
// one of the services' topics, so probing cannot disturb them).
func (o *outage) createProbeTopic() error {
	adm, err := o.admin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	two := "2"
	resp, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &two}, o.probeTopic())
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", o.probeTopic(), err)
	}
	_, err = o.waitPartitions("probe topic leader", 30*time.Second, func(p kadm.PartitionDetail) bool { return p.Leader >= 0 })
	return err
}

// probe writes one record with acks=all and no retry, and returns the broker's answer (with a
// retry, the client's backoff and metadata refresh would outlast timeout). A timed-out write is
// retried until timeout all the same: the client cannot know whether it was written.
func (o *outage) probe(timeout time.Duration) error {
	o.mu.Lock()
	var live []string // seeds: a dead seed would stall the client's first metadata request
	for i, b := range o.r.in.brokers {
		if !slices.Contains(o.killed, int32(i+1)) {
			live = append(live, b)
		}
	}
	o.mu.Unlock()
	cl, err := kgo.NewClient(kgo.SeedBrokers(live...), kgo.DefaultProduceTopic(o.probeTopic()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.ProduceRequestTimeout(3*time.Second), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("probe")}).FirstErr()
}

func (o *outage) check(r *run, _ *result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.killed) == 0 || o.ledByKilled == 0 {
		r.t.Errorf("no broker leading a partition was killed (killed %v, it led %d)", o.killed, o.ledByKilled)
	}
	if o.probing {
		if len(o.killed) != 2 {
			r.t.Errorf("killed brokers %v, want two", o.killed)
		}
		if o.refused == nil {
			r.t.Error("writes were never refused with NOT_ENOUGH_REPLICAS while one broker was left")
		}
		if !o.accepted {
			r.t.Error("writes were not acknowledged again once a second broker was back")
		}
	}
}

// outboxPending reads choreo_outbox_pending from a service's /metrics.
func outboxPending(p *proc) (int64, error) {
	resp, err := httpClient.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "choreo_outbox_pending{") {
			f := strings.Fields(line)
			return strconv.ParseInt(f[len(f)-1], 10, 64)
		}
	}
	return 0, errors.New("no choreo_outbox_pending in /metrics")
}
