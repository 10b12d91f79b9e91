package compose_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

// TestStack runs docker-compose.yml for real: `up --wait` under a project name and host ports
// of its own (so it runs beside a `make up`), registers an account through the Account
// Service's published port, waits for the welcome email in the mail server, and brings the
// stack down again, checking that no container, network or volume of it is left.
//
// It needs a container engine, Compose and the stack's images, so it runs only with
// CHOREO_TEST_COMPOSE=1 (deployments/containers/containers.sh test sets it, with the local
// images, in CI).
func TestStack(t *testing.T) {
	if os.Getenv("CHOREO_TEST_COMPOSE") != "1" {
		t.Skip("CHOREO_TEST_COMPOSE is not 1: the compose stack needs a container engine and its images (see deployments/containers)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	project := "choreo-stacktest-" + hex.EncodeToString(b)
	ports := map[string]string{}
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+project)
	for _, name := range []string{"KAFKA", "REGISTRY", "SMTP", "MAILPIT", "ACCOUNT", "USER", "NOTIFICATION"} {
		ports[name] = freePort(t)
		env = append(env, "CHOREO_"+name+"_PORT="+ports[name])
	}
	compose := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "deployments", "containers", "compose.sh")}, args...)...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	down := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// -v: the named volumes too; the test leaves nothing. A container that its restart
		// policy is restarting can make one removal fail: a second down finishes the job.
		if out, err := compose(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
			if out, err := compose(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
				t.Errorf("compose down, again: %v\n%s", err, out)
			}
		}
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if t.Failed() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				out, _ := compose(ctx, "logs", "--no-color", "--tail", "40")
				cancel()
				t.Logf("compose logs:\n%s", out)
			}
			down()
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := compose(ctx, "up", "-d", "--wait"); err != nil {
		t.Fatalf("compose up -d --wait: %v\n%s", err, out)
	}
	t.Logf("stack %s up in %s", project, time.Since(start).Round(time.Second))

	// Register through the published port. The service may still be creating its topics when
	// compose says it runs: a refused connection or a 5xx is retried.
	suffix := hex.EncodeToString(b)
	email := "stack-" + suffix + "@mail.example"
	body := fmt.Sprintf(`{"username":"stack%s","email":%q}`, suffix, email)
	var accountID string
	kafkatest.Eventually(t, 2*time.Minute, func() error {
		resp, err := http.Post("http://127.0.0.1:"+ports["ACCOUNT"]+"/accounts", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			return fmt.Errorf("POST /accounts: %s: %s", resp.Status, b)
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /accounts: %s: %s", resp.Status, b)
		}
		var r struct {
			AccountID string `json:"accountId"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.AccountID == "" {
			t.Fatalf("POST /accounts answered %s (%v)", b, err)
		}
		accountID = r.AccountID
		return nil
	})
	t.Logf("account %s registered", accountID)

	// The welcome email, in the mail server's API (Mailpit's /api/v1/messages).
	kafkatest.Eventually(t, 3*time.Minute, func() error {
		resp, err := http.Get("http://127.0.0.1:" + ports["MAILPIT"] + "/api/v1/messages")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			Messages []struct {
				To []struct {
					Address string `json:"Address"`
				} `json:"To"`
				Subject string `json:"Subject"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return fmt.Errorf("GET /api/v1/messages: %s: %w", resp.Status, err)
		}
		for _, m := range r.Messages {
			for _, to := range m.To {
				if to.Address == email && strings.Contains(m.Subject, "Welcome") {
					return nil
				}
			}
		}
		return fmt.Errorf("no welcome email to %s among %d messages", email, len(r.Messages))
	})
	t.Logf("welcome email received, %s after up", time.Since(start).Round(time.Second))

	downed = true
	down()
	for _, kind := range []string{"container", "network", "volume"} {
		if left := leftovers(t, kind, project); len(left) > 0 {
			t.Errorf("after down, %ss of project %s are left: %v", kind, project, left)
		}
	}
}

// leftovers lists the containers, networks or volumes of project that the engine still has:
// labelled with the project, or named after it (<project>_...).
func leftovers(t *testing.T, kind, project string) []string {
	t.Helper()
	engine := "podman"
	if _, err := exec.LookPath(engine); err != nil {
		engine = "docker"
	}
	args := []string{kind, "ls", "--format", "{{.Name}}"}
	if kind == "container" {
		args = []string{"ps", "-a", "--format", "{{.Names}}"}
	}
	out, err := exec.Command(engine, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", engine, args, err, out)
	}
	var left []string
	for name := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(name, project+"_") || strings.HasPrefix(name, project+"-") {
			left = append(left, name)
		}
	}
	return left
}

// freePort is a TCP port of 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
