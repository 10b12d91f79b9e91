package handlers

import (
	"errors"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/event"
)

// TestUserIDIsGolden: the user ID of an account is persisted and carried in UserCreated; it
// must not change between versions (see envelope's golden vectors).
func TestUserIDIsGolden(t *testing.T) {
	t.Parallel()
	if got, want := UserID("acc-1"), "ff643d8b-b51f-55e7-854e-cd748a9f47e0"; got != want {
		t.Errorf("UserID(acc-1) = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := event.AccountCreated{AccountID: "acc-1", Username: "jane", Email: "jane@mail.com"}
	tests := []struct {
		name   string
		mutate func(*event.AccountCreated)
		valid  bool
	}{
		{"valid", func(*event.AccountCreated) {}, true},
		{"64 characters of two bytes", func(e *event.AccountCreated) { e.Username = strings.Repeat("é", 64) }, true},
		{"empty account", func(e *event.AccountCreated) { e.AccountID = " " }, false},
		{"empty username", func(e *event.AccountCreated) { e.Username = "\t" }, false},
		{"65 characters", func(e *event.AccountCreated) { e.Username = strings.Repeat("a", 65) }, false},
		{"email over 254 bytes", func(e *event.AccountCreated) { e.Email = strings.Repeat("a", 250) + "@x.io" }, false},
		{"display name", func(e *event.AccountCreated) { e.Email = "Jane <jane@mail.com>" }, false},
		{"not an address", func(e *event.AccountCreated) { e.Email = "jane" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := ok
			tt.mutate(&ev)
			err := validate(&ev)
			if tt.valid && err != nil {
				t.Errorf("validate = %v, want valid", err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidAccount) {
				t.Errorf("validate = %v, want ErrInvalidAccount", err)
			}
		})
	}
}
