package accountsvc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/httpapi"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/accountsvc"
	"github.com/choreo-dev/choreo/services/notification/notificationsvc"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
	"github.com/choreo-dev/choreo/services/user/usersvc"
)

func TestRegistrationFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want accountsvc.Mode
		bad  string // the variable the error names
	}{
		{"default", nil, accountsvc.Choreography, ""},
		{"choreography", map[string]string{"REGISTRATION_MODE": "choreography"}, accountsvc.Choreography, ""},
		{"orchestrated", map[string]string{"REGISTRATION_MODE": "orchestrated", "USER_SERVICE_URL": "http://127.0.0.1:8082",
			"NOTIFICATION_SERVICE_URL": "http://127.0.0.1:8083", "ORCHESTRATION_TIMEOUT": "500ms"}, accountsvc.Orchestrated, ""},
		{"unknown mode", map[string]string{"REGISTRATION_MODE": "Orchestrated"}, "", "REGISTRATION_MODE"},
		{"orchestrated without the user service", map[string]string{"REGISTRATION_MODE": "orchestrated", "NOTIFICATION_SERVICE_URL": "http://127.0.0.1:8083"}, "", "USER_SERVICE_URL"},
		{"orchestrated without the notification service", map[string]string{"REGISTRATION_MODE": "orchestrated", "USER_SERVICE_URL": "http://127.0.0.1:8082"}, "", "NOTIFICATION_SERVICE_URL"},
		{"not a URL", map[string]string{"REGISTRATION_MODE": "orchestrated", "USER_SERVICE_URL": "127.0.0.1:8082", "NOTIFICATION_SERVICE_URL": "http://127.0.0.1:8083"}, "", "USER_SERVICE_URL"},
		{"bad timeout", map[string]string{"ORCHESTRATION_TIMEOUT": "2"}, "", "ORCHESTRATION_TIMEOUT"},
		{"negative timeout", map[string]string{"ORCHESTRATION_TIMEOUT": "-1s"}, "", "ORCHESTRATION_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := accountsvc.RegistrationFromEnv(func(k string) string { return tt.env[k] })
			if tt.bad != "" {
				if !errors.Is(err, service.ErrConfig) || !strings.Contains(err.Error(), tt.bad) {
					t.Errorf("err = %v, want ErrConfig naming %s", err, tt.bad)
				}
				return
			}
			if err != nil || r.Mode != tt.want {
				t.Errorf("= %+v, %v; want mode %s", r, err, tt.want)
			}
		})
	}
}

// TestMainRefusesAnUnknownMode: the service binary does not start with a mode it does not know,
// and says why.
func TestMainRefusesAnUnknownMode(t *testing.T) {
	t.Parallel()
	var stderr lockedBuffer
	env := map[string]string{"REGISTRATION_MODE": "sync", "DATA_DIR": t.TempDir(), "HTTP_ADDR": "127.0.0.1:0"}
	getenv := func(k string) string { return env[k] }
	code := service.Main(accountsvc.Name, accountsvc.DefaultHTTPAddr, nil, getenv, &stderr, accountsvc.Builder(getenv))
	if code == 0 || !strings.Contains(stderr.String(), `REGISTRATION_MODE="sync": want choreography (the default) or orchestrated`) {
		t.Errorf("Main = %d, stderr:\n%s", code, stderr.String())
	}
}

// TestOrchestratedRegistration runs the orchestrated Account Service against the real User and
// Notification Services of an in-process stack: what the client sees with each service down,
// what is stored, and which emails leave.
func TestOrchestratedRegistration(t *testing.T) {
	t.Parallel()
	cfg := stacktest.Config(t)
	// The Notification Service is restarted on the address the orchestrator knows.
	cfg.HTTPAddrs[notificationsvc.Name] = freeAddr(t)
	smtp := stacktest.WithSMTP(t, &cfg)
	s := stacktest.StartConfig(t, cfg)
	if err := s.StopService(accountsvc.Name); err != nil {
		t.Fatal(err)
	}
	reg := accountsvc.Registration{
		Mode: accountsvc.Orchestrated, Timeout: 5 * time.Second,
		UserURL: stacktest.URL(s, usersvc.Name, ""), NotificationURL: stacktest.URL(s, notificationsvc.Name, ""),
	}
	acc, err := accountsvc.NewWith(t.Context(), s.ServiceConfig(accountsvc.Name), slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- acc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("account service: %v", err)
		}
	})
	register := func(name string) (int, string, string) {
		t.Helper()
		var out struct {
			AccountID, UserID string
			httpapi.Error
		}
		code, err := stacktest.DoJSON("POST", "http://"+acc.HTTPAddr()+"/accounts", fmt.Sprintf(`{"username":%q,"email":"%s@mail.com"}`, name, name), &out)
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		return code, out.AccountID, out.Code
	}
	users, accounts := s.Service(usersvc.Name).DB, acc.DB
	live := func(name string) int {
		return stacktest.Count(t, users, `SELECT count(*) FROM users WHERE username = $1 AND deleted_at IS NULL`, name)
	}
	stored := func(name string) int {
		return stacktest.Count(t, accounts, `SELECT count(*) FROM accounts WHERE username = $1`, name)
	}

	if code, id, _ := register("jane"); code != 201 || id == "" || live("jane") != 1 || stored("jane") != 1 {
		t.Fatalf("jane with every service up: %d %q, %d users, %d accounts", code, id, live("jane"), stored("jane"))
	}
	if code, _, errCode := register("jane"); code != 409 || errCode != httpapi.CodeConflict {
		t.Errorf("jane again: %d %s, want 409 conflict", code, errCode)
	}

	if err := s.StopService(notificationsvc.Name); err != nil {
		t.Fatal(err)
	}
	if code, _, errCode := register("bob"); code != 503 || errCode != httpapi.CodeUnavailable {
		t.Errorf("bob with the Notification Service down: %d %s, want 503 unavailable", code, errCode)
	}
	if live("bob") != 0 || stored("bob") != 0 {
		t.Errorf("bob refused, yet %d live users and %d accounts: the user was not compensated", live("bob"), stored("bob"))
	}
	if err := s.StartService(context.Background(), notificationsvc.Name); err != nil {
		t.Fatal(err)
	}
	// bob's registration was refused, so nothing remembers it: only a retry by the client
	// registers him, and the compensation freed his username for it.
	if code, _, _ := register("bob"); code != 201 {
		t.Errorf("bob retried with the Notification Service back: %d, want 201", code)
	}

	if err := s.StopService(usersvc.Name); err != nil {
		t.Fatal(err)
	}
	if code, _, errCode := register("carol"); code != 503 || errCode != httpapi.CodeUnavailable || stored("carol") != 0 {
		t.Errorf("carol with the User Service down: %d %s, %d accounts; want 503 unavailable, none", code, errCode, stored("carol"))
	}

	stacktest.Eventually(t, 30*time.Second, func() error {
		if n := smtp.Count(); n < 2 {
			return fmt.Errorf("%d emails delivered, want 2", n)
		}
		return nil
	})
	if bad := stacktest.Deliveries(smtp, "jane@mail.com", "bob@mail.com"); len(bad) > 0 {
		t.Errorf("deliveries: %v", bad)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// Below Linux's ephemeral range (32768-60999): a port the kernel picked for a listener
	// (127.0.0.1:0) is free again once closed, and a busy machine's next outgoing connection, or
	// another test's listener, can take it before the service binds it.
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+mrand.IntN(5000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port in 20000-24999")
	return ""
}
