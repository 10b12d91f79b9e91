package orchestrator_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/services/account/internal/orchestrator"
)

// TestErrors: each way a call can fail is told apart, a slow service included.
func TestErrors(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"created", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"userId":"u1"}`))
		}, nil},
		{"server error", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, orchestrator.ErrUnavailable},
		{"slower than the timeout", func(w http.ResponseWriter, r *http.Request) {
			// The body read, the server notices the client hanging up and ends the context.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}, orchestrator.ErrUnavailable},
		{"username taken", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusConflict) }, orchestrator.ErrUsernameTaken},
		{"user deleted", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }, orchestrator.ErrRefused},
		{"bad request", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }, orchestrator.ErrRefused},
		{"no userId", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }, orchestrator.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			c, err := orchestrator.New(srv.URL, srv.URL, orchestrator.WithTimeout(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.AddUser(t.Context(), orchestrator.User{AccountID: "a1", Username: "jane", Email: "jane@mail.com"})
			if !errors.Is(err, tt.want) || (tt.want == nil && id != "u1") {
				t.Errorf("AddUser = %q, %v; want %v", id, err, tt.want)
			}
		})
	}
}

// TestServiceDown: a service that does not listen is unavailable, at once.
func TestServiceDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	c, err := orchestrator.New(url, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendWelcome(t.Context(), orchestrator.Welcome{UserID: "u1"}); !errors.Is(err, orchestrator.ErrUnavailable) {
		t.Errorf("SendWelcome = %v, want ErrUnavailable", err)
	}
	if err := c.DeleteUser(t.Context(), "u1"); !errors.Is(err, orchestrator.ErrUnavailable) {
		t.Errorf("DeleteUser = %v, want ErrUnavailable", err)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:8082", "ftp://x", "http://"} {
		if _, err := orchestrator.New(u, "http://127.0.0.1:8083"); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
