package handlers

import "github.com/choreo-dev/choreo/pkg/event"

// Validate checks an account against the business rules create-user applies (an account ID, a
// username of at most 64 characters, a bare email address of at most 254 bytes); an error wraps
// ErrInvalidAccount. The synchronous AddUser applies the same rules through it.
func Validate(ev *event.AccountCreated) error { return validate(ev) }
