package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/choreo-dev/choreo/pkg/service"
)

// TestSecretsStayOut runs a service through Main, logged in to a SCRAM broker with a password
// and to the registry with user info in its URL, and checks that neither password shows in its
// log, its errors, /stats or /metrics. A wrong password fails start-up, again without it.
func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	const kafkaPw, registryPw = "kafka-pw-7f3a9c", "registry-pw-51e0d2"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "svc", kafkaPw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	vars := map[string]string{
		"KAFKA_BROKERS":                   strings.Join(c.ListenAddrs(), ","),
		"KAFKA_SASL_MECHANISM":            "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME":             "svc",
		"KAFKA_SASL_PASSWORD":             kafkaPw,
		"SCHEMA_REGISTRY_URL":             strings.Replace(reg.URL(), "http://", "http://reg:"+registryPw+"@", 1),
		"SCHEMA_REGISTRY_ALLOW_PLAINTEXT": "true",
		"DATA_DIR":                        t.TempDir(),
		"HTTP_ADDR":                       "127.0.0.1:0",
		"START_TIMEOUT":                   "20s",
	}
	errDone := errors.New("looked at the endpoints")
	var bodies []string
	build := func(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
		log.Info("configuration", "config", cfg) // what a careless debug line would log
		s, err := service.Open(ctx, "open-test", cfg, log)
		if err != nil {
			return nil, err
		}
		if err := s.Serve(http.NotFoundHandler()); err != nil {
			s.Close()
			return nil, err
		}
		s.Go(func(context.Context) error {
			for _, p := range []string{"/stats", "/metrics", "/healthz"} {
				resp, err := http.Get("http://" + s.HTTPAddr() + p)
				if err != nil {
					return err
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				bodies = append(bodies, string(b))
			}
			return errDone
		})
		return s, nil
	}
	var stderr bytes.Buffer
	if code := service.Main("open-test", "127.0.0.1:0", nil, env(vars), &stderr, build); code != 1 || !strings.Contains(stderr.String(), errDone.Error()) {
		t.Fatalf("Main = %d, want 1 after the endpoint task; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "msg=started") || len(bodies) != 3 || !strings.Contains(bodies[1], "choreo_outbox_pending") {
		t.Fatalf("the service did not run: bodies %q\nstderr:\n%s", bodies, stderr.String())
	}
	for name, out := range map[string]string{"log": stderr.String(), "/stats": bodies[0], "/metrics": bodies[1]} {
		if strings.Contains(out, kafkaPw) || strings.Contains(out, registryPw) {
			t.Errorf("%s shows a password:\n%s", name, out)
		}
	}

	vars["KAFKA_SASL_PASSWORD"] = "wrong-" + kafkaPw
	stderr.Reset()
	if code := service.Main("open-test", "127.0.0.1:0", nil, env(vars), &stderr, build); code != 1 {
		t.Fatalf("Main with a wrong password = %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "KAFKA_BROKERS") || strings.Contains(stderr.String(), kafkaPw) || strings.Contains(stderr.String(), registryPw) {
		t.Errorf("start-up error does not name the setting, or shows a password:\n%s", stderr.String())
	}
}
