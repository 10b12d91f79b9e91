package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recipe returns the shell block that follows the kcat-recipe marker in README.md.
func recipe(t *testing.T, readme string) string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- kcat-recipe")
	if !ok {
		t.Fatal("README.md has no kcat-recipe marker")
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh block after the kcat-recipe marker")
	}
	return block
}

func getJSON(url string, out any) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

func waitFor(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestREADMEKcatRecipe runs the README's kcat recipe, as written, against `choreo dev` on its
// default ports, and checks the outcome the README promises: one user, one welcome email.
func TestREADMEKcatRecipe(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (Debian package kcat; .ci/run installs it)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "choreo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build choreo: %v\n%s", err, out)
	}
	args := []string{"dev", "-data-dir", t.TempDir()}
	if brokers := os.Getenv("KAFKA_BROKERS"); brokers != "" {
		// The recipe names localhost:9092, so the cluster must be there; its default topics
		// must start empty, as on the embedded broker.
		if brokers != "127.0.0.1:9092" && brokers != "localhost:9092" {
			t.Skipf("the README recipe publishes to localhost:9092; KAFKA_BROKERS is %s", brokers)
		}
		resetDefaultTopics(t, brokers)
		args = append(args, "-brokers", brokers)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev := exec.CommandContext(ctx, bin, args...)
	var devOut bytes.Buffer
	dev.Stdout, dev.Stderr = &devOut, &devOut
	dev.Cancel = func() error { return dev.Process.Signal(os.Interrupt) }
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil && ctx.Err() == nil {
			t.Errorf("choreo dev: %v", err)
		}
		if t.Failed() {
			t.Logf("choreo dev output:\n%s", devOut.String())
		}
	})
	waitFor(t, 60*time.Second, "choreo dev on its default ports", func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("choreo dev exited (%v) before it served; is a default port (9092, 8080-8084) taken? "+
				"With a broker of `make kafka` running, set KAFKA_BROKERS=127.0.0.1:9092.\n%s", err, devOut.String())
		default:
		}
		_, err := getJSON("http://localhost:8080/healthz", nil)
		return err
	})

	script := "set -euo pipefail\n" + recipe(t, filepath.Join(root, "README.md"))
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = root
	t.Cleanup(func() { os.Remove(filepath.Join(root, "ev.avro")) })
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README recipe failed: %v\n%s", err, out)
	}

	waitFor(t, 15*time.Second, "the user of acc-kcat-1", func() error {
		code, err := getJSON("http://localhost:8082/users?accountId=acc-kcat-1", nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		return err
	})
	var stats struct {
		Consumer struct{ Handled, Duplicates int64 }
	}
	waitFor(t, 15*time.Second, "the second publish seen as a duplicate", func() error {
		if _, err := getJSON("http://localhost:8082/stats", &stats); err != nil {
			return err
		}
		if stats.Consumer.Duplicates != 1 || stats.Consumer.Handled != 1 {
			return fmt.Errorf("user-service stats %+v, want 1 handled and 1 duplicate", stats.Consumer)
		}
		return nil
	})
	var ns []struct{ Kind, To string }
	waitFor(t, 15*time.Second, "the welcome email", func() error {
		if _, err := getJSON("http://localhost:8083/notifications?accountId=acc-kcat-1", &ns); err != nil {
			return err
		}
		if len(ns) != 1 || ns[0].Kind != "welcome" || ns[0].To != "jane@mail.com" {
			return fmt.Errorf("notifications %+v", ns)
		}
		return nil
	})
}

// resetDefaultTopics deletes the un-namespaced topics and groups of a shared cluster, and waits
// until the deletions are done, so the recipe meets an empty platform.
func resetDefaultTopics(t *testing.T, brokers string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topics := []string{"accounts", "users", "user-service.dlq", "notification-service.dlq", "account-service.dlq"}
	// Only groups that exist: on a new broker there are none, and not even a group coordinator
	// until the offsets topic is made.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	var groups []string
	for _, g := range []string{"user-service", "notification-service", "account-service"} {
		if _, ok := listed[g]; ok {
			groups = append(groups, g)
		}
	}
	if len(groups) > 0 {
		if _, err := adm.DeleteGroups(ctx, groups...); err != nil {
			t.Fatalf("delete groups %v: %v", groups, err)
		}
	}
	if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
		t.Fatalf("delete topics: %v", err)
	}
	waitFor(t, 60*time.Second, "topic deletion", func() error {
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		for _, tp := range topics {
			if tds.Has(tp) {
				return fmt.Errorf("%s still exists", tp)
			}
		}
		return nil
	})
}
