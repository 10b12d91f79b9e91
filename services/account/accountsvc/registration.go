package accountsvc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/services/account/internal/orchestrator"
)

// Mode is how a registration reaches the User and Notification Services.
type Mode string

const (
	// Choreography emits AccountCreated; the User Service reacts with UserCreated and the
	// Notification Service with the welcome email. The default.
	Choreography Mode = "choreography"
	// Orchestrated calls the User Service's AddUser and the Notification Service's SendEmail
	// synchronously and emits no AccountCreated; the client's answer waits for both.
	Orchestrated Mode = "orchestrated"
)

// Registration configures how accounts are registered.
type Registration struct {
	// Mode (REGISTRATION_MODE: choreography or orchestrated). Default Choreography.
	Mode Mode
	// UserURL is the User Service's base URL (USER_SERVICE_URL); required when orchestrated.
	UserURL string
	// NotificationURL is the Notification Service's base URL (NOTIFICATION_SERVICE_URL);
	// required when orchestrated.
	NotificationURL string
	// Timeout bounds each synchronous call (ORCHESTRATION_TIMEOUT, a Go duration). Default 2s.
	Timeout time.Duration
}

// RegistrationFromEnv reads the registration settings from getenv (os.Getenv). Every error
// wraps service.ErrConfig and names its variable.
func RegistrationFromEnv(getenv func(string) string) (Registration, error) {
	r := Registration{Mode: Choreography, Timeout: orchestrator.DefaultTimeout}
	switch m := Mode(getenv("REGISTRATION_MODE")); m {
	case "", Choreography:
	case Orchestrated:
		r.Mode = m
	default:
		return r, fmt.Errorf("REGISTRATION_MODE=%q: want %s (the default) or %s: %w", m, Choreography, Orchestrated, service.ErrConfig)
	}
	r.UserURL, r.NotificationURL = getenv("USER_SERVICE_URL"), getenv("NOTIFICATION_SERVICE_URL")
	if v := getenv("ORCHESTRATION_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return r, fmt.Errorf("ORCHESTRATION_TIMEOUT=%q: want a positive duration such as 2s: %w", v, service.ErrConfig)
		}
		r.Timeout = d
	}
	return r, r.Validate()
}

// Validate checks that an orchestrated registration knows where to call.
func (r Registration) Validate() error {
	if r.Mode != Orchestrated {
		return nil
	}
	for _, v := range []struct{ name, url string }{{"USER_SERVICE_URL", r.UserURL}, {"NOTIFICATION_SERVICE_URL", r.NotificationURL}} {
		if v.url == "" {
			return fmt.Errorf("REGISTRATION_MODE=%s needs %s (e.g. http://127.0.0.1:8082): %w", Orchestrated, v.name, service.ErrConfig)
		}
	}
	if _, err := orchestrator.New(r.UserURL, r.NotificationURL); err != nil {
		return fmt.Errorf("USER_SERVICE_URL or NOTIFICATION_SERVICE_URL: %w: %w", err, service.ErrConfig)
	}
	return nil
}

// Builder returns the Account Service's builder with the registration settings read from
// getenv when it is called; an invalid setting fails the start with an error naming it.
func Builder(getenv func(string) string) service.Builder {
	return func(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
		reg, err := RegistrationFromEnv(getenv)
		if err != nil {
			return nil, err
		}
		return NewWith(ctx, cfg, log, reg)
	}
}

func (r Registration) orchestrator() (*orchestrator.Client, error) {
	if r.Mode != Orchestrated {
		return nil, nil
	}
	return orchestrator.New(r.UserURL, r.NotificationURL, orchestrator.WithTimeout(r.Timeout))
}
