// Package kafkatest gives tests a Kafka cluster, so that one behaviour suite runs unchanged on
// every broker choreo supports:
//
//   - KAFKA_BROKERS set: that cluster (CI points it at a real Apache Kafka 4.x broker);
//   - otherwise CHOREO_TEST_DOCKER=1 and a Docker engine answering: an apache/kafka container
//     started with testcontainers-go, shared by the package's tests;
//   - otherwise: an in-process franz-go kfake cluster per test.
//
// Tests sharing a cluster must not share topics or groups: Namespace gives each a unique prefix.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Image is the Kafka image of the Docker path: the version docker-compose.yml and
// deployments/kafka pin.
const Image = "apache/kafka:4.1.0"

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

// dockerBrokers starts one Kafka container for the test binary. It is never terminated by the
// tests that share it; testcontainers' reaper removes it when the binary exits.
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

func startContainer(ctx context.Context) (brokers []string, skip string, err error) {
	const advertise = "/tmp/advertise.sh"
	req := testcontainers.ContainerRequest{
		Image:        Image,
		ExposedPorts: []string{"9092/tcp"},
		Env: map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
		},
		// The advertised address needs the mapped port, known only once the container runs:
		// the entrypoint waits for a script the post-start hook writes.
		Entrypoint: []string{"sh", "-c"},
		Cmd:        []string{"while [ ! -f " + advertise + " ]; do sleep 0.1; done; . " + advertise + "; exec /etc/kafka/docker/run"},
		LifecycleHooks: []testcontainers.ContainerLifecycleHooks{{
			PostStarts: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
				host, err := c.Host(ctx)
				if err != nil {
					return err
				}
				port, err := c.MappedPort(ctx, "9092/tcp")
				if err != nil {
					return err
				}
				script := fmt.Sprintf("export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://%s:%s,BROKER://localhost:9093\n", host, port.Port())
				return c.CopyToContainer(ctx, []byte(script), advertise, 0o755)
			}},
		}},
		WaitingFor: wait.ForLog("Kafka Server started").WithStartupTimeout(2 * time.Minute),
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		if strings.Contains(err.Error(), "pull") || strings.Contains(err.Error(), "manifest") {
			return nil, fmt.Sprintf("Docker answers but the image %s cannot be pulled here: %v", Image, err), nil
		}
		return nil, "", err
	}
	host, err := c.Host(ctx)
	if err != nil {
		return nil, "", err
	}
	port, err := c.MappedPort(ctx, "9092/tcp")
	if err != nil {
		return nil, "", err
	}
	return []string{host + ":" + port.Port()}, "", nil
}
