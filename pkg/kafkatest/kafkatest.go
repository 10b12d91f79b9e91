// Package kafkatest gives tests a Kafka cluster, so that one behaviour suite runs unchanged on
// every broker choreo supports:
//
//   - KAFKA_BROKERS set: that cluster (CI points it at a real Apache Kafka 4.x broker);
//   - otherwise CHOREO_TEST_DOCKER=1 and a Docker engine answering (Docker, or Podman's
//     Docker-compatible API through DOCKER_HOST): a Kafka container started with
//     testcontainers-go, one per test binary, shared by its tests (see Image);
//   - otherwise: an in-process franz-go kfake cluster per test.
//
// Tests sharing a cluster must not share topics or groups: Namespace gives each a unique prefix.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultImage is the Kafka image of the Docker path: the version docker-compose.yml and
// deployments/kafka pin.
const DefaultImage = "apache/kafka:4.1.0"

// ImageEnv names the variable that replaces DefaultImage: any image with the official
// apache/kafka image's interface (KRaft settings from KAFKA_* variables, /etc/kafka/docker/run),
// such as the one deployments/containers builds where no registry can be reached.
const ImageEnv = "CHOREO_KAFKA_IMAGE"

// Image is the Kafka image the Docker path runs: $CHOREO_KAFKA_IMAGE, or DefaultImage.
func Image() string {
	if img := os.Getenv(ImageEnv); img != "" {
		return img
	}
	return DefaultImage
}

// Kind says which cluster Brokers gives: "external", "docker" or "kfake".
func Kind() string {
	switch {
	case os.Getenv("KAFKA_BROKERS") != "":
		return "external"
	case os.Getenv("CHOREO_TEST_DOCKER") == "1":
		return "docker"
	}
	return "kfake"
}

// Brokers returns the bootstrap addresses of a cluster for t (see the package doc).
func Brokers(t testing.TB) []string {
	t.Helper()
	switch Kind() {
	case "external":
		return strings.Split(os.Getenv("KAFKA_BROKERS"), ",")
	case "docker":
		return dockerBrokers(t)
	}
	c, err := kfake.NewCluster(kfake.Ports(0))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Namespace returns a prefix unique to this test run, for topics and consumer groups.
func Namespace(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "t-" + name + "-" + hex.EncodeToString(b)
}

var docker struct {
	once    sync.Once
	brokers []string
	skip    string
	err     error
}

// dockerBrokers starts one Kafka container for the test binary, shared by its tests. Go's
// testing has no hook after the last test, so the container's lifetime is a lease instead: the
// test binary renews it every leaseRenew, and the container stops and removes itself once the
// lease has not been renewed for leaseExpiry (the test binary exited or died). That works with
// and without testcontainers' reaper (Ryuk), whose image cannot be pulled everywhere.
func dockerBrokers(t testing.TB) []string {
	t.Helper()
	if reason := dockerUnavailable(); reason != "" {
		t.Skip("CHOREO_TEST_DOCKER=1 but no Docker engine answers: " + reason)
	}
	docker.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		docker.brokers, docker.skip, docker.err = startContainer(ctx)
	})
	if docker.skip != "" {
		t.Skip(docker.skip)
	}
	if docker.err != nil {
		t.Fatalf("kafka container: %v", docker.err)
	}
	return docker.brokers
}

// dockerUnavailable is testcontainers.SkipIfProviderIsNotHealthy for any testing.TB.
func dockerUnavailable() (reason string) {
	defer func() {
		if r := recover(); r != nil {
			reason = fmt.Sprint(r)
		}
	}()
	p, err := testcontainers.ProviderDocker.GetProvider()
	if err == nil {
		defer p.Close()
		err = p.Health(context.Background())
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

const (
	// Label marks every container this package starts, so that a script can find any left
	// behind (a test binary killed before its lease expired).
	Label = "dev.choreo.kafkatest"

	leaseRenew  = 5 * time.Second
	leaseExpiry = 30 * time.Second

	advertiseFile = "/tmp/kafkatest-advertise.sh"
	leaseFile     = "/tmp/kafkatest-lease"
)

// entrypoint is the container's shell script: it runs the image's own start script
// (/etc/kafka/docker/run, as in apache/kafka) once the advertised listeners are known, and stops
// it when the lease expires. POSIX sh: the official image's shell is busybox.
func entrypoint() string {
	return fmt.Sprintf(`
while [ ! -f %[1]s ]; do sleep 0.1; done
. %[1]s
/etc/kafka/docker/run &
kafka=$!
trap 'kill $kafka; wait $kafka; exit 0' TERM INT
seen= stale=0
while kill -0 $kafka 2>/dev/null; do
  sleep 5 & wait $!
  now=$(cat %[2]s 2>/dev/null)
  if [ "$now" = "$seen" ]; then stale=$((stale + 5)); else stale=0 seen=$now; fi
  if [ $stale -ge %[3]d ]; then
    echo "kafkatest: lease not renewed for ${stale}s, the test binary is gone: stopping"
    kill $kafka; wait $kafka; exit 0
  fi
done
wait $kafka
`, advertiseFile, leaseFile, int(leaseExpiry/time.Second))
}

func startContainer(ctx context.Context) (brokers []string, skip string, err error) {
	image := Image()
	req := testcontainers.ContainerRequest{
		Image: image,
		// Published on loopback only: the tests are the container's only clients.
		ExposedPorts: []string{"127.0.0.1::9092/tcp"},
		Labels:       map[string]string{Label: "1"},
		// The official image's KRaft configuration for one node; the host's clients use
		// PLAINTEXT on the mapped port, the broker itself BROKER.
		Env: map[string]string{
			"KAFKA_NODE_ID":                                          "1",
			"KAFKA_PROCESS_ROLES":                                    "broker,controller",
			"KAFKA_LISTENERS":                                        "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":                       "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@localhost:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                        "false",
		},
		// The advertised address needs the mapped port, known only once the container runs:
		// the entrypoint waits for a script the post-start hook writes.
		Entrypoint: []string{"sh", "-c"},
		Cmd:        []string{entrypoint()},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.AutoRemove = true // once it stops (lease expired), nothing is left
		},
		LifecycleHooks: []testcontainers.ContainerLifecycleHooks{{
			PostStarts: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
				addr, err := address(ctx, c)
				if err != nil {
					return err
				}
				script := fmt.Sprintf("export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://%s,BROKER://localhost:9093\n", addr)
				return c.CopyToContainer(ctx, []byte(script), advertiseFile, 0o644)
			}},
		}},
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		if strings.Contains(err.Error(), "pull") || strings.Contains(err.Error(), "manifest") {
			return nil, fmt.Sprintf("a Docker engine answers but the image %s cannot be pulled here (set %s to a local one, see deployments/containers): %v",
				image, ImageEnv, err), nil
		}
		return nil, "", err
	}
	go renewLease(c)
	addr, err := address(ctx, c)
	if err == nil {
		err = waitMetadata(ctx, c, addr)
	}
	if err != nil {
		_ = c.Terminate(context.Background())
		return nil, "", err
	}
	return []string{addr}, "", nil
}

// address is the host's address of the container's PLAINTEXT listener.
func address(ctx context.Context, c testcontainers.Container) (string, error) {
	host, err := c.Host(ctx)
	if err != nil {
		return "", fmt.Errorf("container host: %w", err)
	}
	port, err := c.MappedPort(ctx, "9092/tcp")
	if err != nil {
		return "", fmt.Errorf("mapped port of 9092: %w", err)
	}
	return net.JoinHostPort(host, port.Port()), nil
}

// renewLease writes a new value into the lease file every leaseRenew, for as long as the test
// binary runs. A failed write is retried at the next tick: the lease tolerates several.
func renewLease(c testcontainers.Container) {
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
		_ = c.CopyToContainer(ctx, []byte(strconv.Itoa(i)), leaseFile, 0o644)
		cancel()
		time.Sleep(leaseRenew)
	}
}

// waitMetadata waits until the broker answers a metadata request through addr and lists
// itself at addr: the advertised listener is in place and clients will stay on it. A container
// that stops while starting is reported with the end of its log.
func waitMetadata(ctx context.Context, c testcontainers.Container, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := adm.BrokerMetadata(mctx)
		cancel()
		switch {
		case err != nil:
			last = err
		case len(m.Brokers) == 1 && net.JoinHostPort(m.Brokers[0].Host, strconv.Itoa(int(m.Brokers[0].Port))) == addr && m.Controller >= 0:
			return nil
		default:
			last = fmt.Errorf("metadata lists brokers %v (controller %d), want the one at %s", m.Brokers, m.Controller, addr)
		}
		if st, err := c.State(ctx); err == nil && !st.Running {
			return fmt.Errorf("the kafka container stopped while starting (exit code %d):\n%s", st.ExitCode, logTail(c))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka at %s not ready: %w (last: %v)\n%s", addr, ctx.Err(), last, logTail(c))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logTail is the end of the container's log, for a failure message.
func logTail(c testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Logs(ctx)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
