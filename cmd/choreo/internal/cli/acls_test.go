package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/cmd/choreo/internal/cli"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
)

func TestACLsPlan(t *testing.T) {
	t.Parallel()
	r := run(t, "acls", "plan", "-namespace", "prod")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr.String())
	}
	out := r.stdout.String()
	for _, want := range []string{
		"User:prod.user-service\n",
		"ALLOW READ      topic:prod.accounts",
		"ALLOW READ      group:prod.user-service",
		"User:prod.user-service-dlq\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	r = run(t, "acls", "plan", "-format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr.String())
	}
	var grants []struct{ Principal, Operation, ResourceType, Name string }
	if err := json.Unmarshal(r.stdout.Bytes(), &grants); err != nil {
		t.Fatal(err)
	}
	var userService []string
	for _, g := range grants {
		if g.Principal == "User:user-service" {
			userService = append(userService, g.Operation+" "+g.ResourceType+":"+g.Name)
		}
	}
	want := []string{
		"READ topic:accounts", "WRITE topic:users", "DESCRIBE topic:users", "READ group:user-service",
		"WRITE topic:user-service.dlq", "DESCRIBE topic:user-service.dlq",
	}
	if strings.Join(userService, ", ") != strings.Join(want, ", ") {
		t.Errorf("user-service grants:\n got %v\nwant %v", userService, want)
	}

	for _, args := range [][]string{{"acls"}, {"acls", "grant"}, {"acls", "plan", "-format", "yaml"}, {"acls", "plan", "extra"}} {
		if r := run(t, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, r.code)
		}
	}
}

// TestSecuredACLsCommands runs acls apply and check on the secured broker, and shows a
// command logged in as a service being refused a topic the catalog does not give it.
func TestSecuredACLsCommands(t *testing.T) {
	path := os.Getenv("CHOREO_SECURE_ENV")
	if path == "" {
		t.Skip("no secured broker: set CHOREO_SECURE_ENV to the admin.env of deployments/kafka/kafka-secure.sh (make test-secure does)")
	}
	vars := readEnv(t, path)
	ns := kafkatest.Namespace(t)
	pwDir := t.TempDir()
	runEnv := func(vars map[string]string, args ...string) *result {
		t.Helper()
		var r result
		r.code = cli.Run(context.Background(), args, cli.Env{
			Stdin: strings.NewReader(""), Stdout: &r.stdout, Stderr: &r.stderr,
			Getenv: func(k string) string { return vars[k] },
		})
		return &r
	}

	if r := runEnv(vars, "acls", "apply", "-namespace", ns, "-passwords-dir", pwDir, "-partitions", "1"); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout.String(), r.stderr.String())
	}
	if r := runEnv(vars, "acls", "check", "-namespace", ns); r.code != 0 || !strings.Contains(r.stdout.String(), "ACLs match the catalog") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout.String(), r.stderr.String())
	}
	// Checking with IDEMPOTENT_WRITE in the plan finds those grants missing: check fails.
	if r := runEnv(vars, "acls", "check", "-namespace", ns, "-idempotent-write"); r.code != 1 || !strings.Contains(r.stdout.String(), "missing: ALLOW User:"+ns+".user-service IDEMPOTENT_WRITE cluster:kafka-cluster") {
		t.Errorf("check with -idempotent-write: exit %d, want 1\n%s%s", r.code, r.stdout.String(), r.stderr.String())
	}

	reg := newRegistry(t)
	user := ns + ".user-service"
	as := map[string]string{}
	for k, v := range vars {
		as[k] = v
	}
	as["KAFKA_SASL_USERNAME"], as["KAFKA_SASL_PASSWORD_FILE"] = user, filepath.Join(pwDir, user+".password")
	as["SCHEMA_REGISTRY_URL"] = reg.URL()
	r := runEnv(as, "tail", "-n", "1", "-idle", "1s", ns+".accounts")
	if r.code != 0 {
		t.Errorf("tail %s.accounts as %s (it may READ it): exit %d\n%s", ns, user, r.code, r.stderr.String())
	}
	r = runEnv(as, "tail", "-n", "1", "-idle", "5s", ns+".account-service.dlq")
	if r.code != 1 || !strings.Contains(r.stderr.String(), "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(r.stderr.String(), "User:"+user) {
		t.Errorf("tail of another service's dead-letter topic as %s: exit %d, want 1 naming the principal and the authorization error\n%s", user, r.code, r.stderr.String())
	}
	if strings.Contains(r.stderr.String(), vars["KAFKA_SASL_PASSWORD"]) && vars["KAFKA_SASL_PASSWORD"] != "" {
		t.Error("stderr shows the password")
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("CHOREO_SECURE_ENV: %v", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && !strings.HasPrefix(line, "#") {
			vars[k] = v
		}
	}
	return vars
}
