// Package orchestrator is the Account Service's client of the synchronous endpoints an
// orchestrated registration calls, as in the sequence diagram of orchestration: AddUser on the
// User Service, SendEmail on the Notification Service, and DeleteUser to compensate. Each call
// has a timeout; what a failed call means for the registration is decided by the caller.
package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrUnavailable is returned when a service cannot be reached, does not answer within the
// timeout, or answers with a server error: the step may be retried later.
var ErrUnavailable = errors.New("service unavailable")

// ErrUsernameTaken is returned by AddUser when another live user holds the username.
var ErrUsernameTaken = errors.New("username is taken")

// ErrRefused is returned when a service refuses the request itself (a 4xx other than a taken
// username): retrying the same request cannot succeed.
var ErrRefused = errors.New("request refused")

// DefaultTimeout bounds each call unless WithTimeout says otherwise.
const DefaultTimeout = 2 * time.Second

// Client calls the User and Notification Services. It is safe for concurrent use.
type Client struct {
	users, notifications string // base URLs without a trailing slash
	http                 *http.Client
	timeout              time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each call, connecting included. Default DefaultTimeout (2s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithHTTPClient sends the calls through hc. Default: a client of its own, keeping up to 64
// idle connections per service.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a client of the User Service at usersURL and the Notification Service at
// notificationsURL (http(s) base URLs such as http://127.0.0.1:8082).
func New(usersURL, notificationsURL string, opts ...Option) (*Client, error) {
	for _, u := range []string{usersURL, notificationsURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", u)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	c := &Client{
		users: strings.TrimSuffix(usersURL, "/"), notifications: strings.TrimSuffix(notificationsURL, "/"),
		http: &http.Client{Transport: t}, timeout: DefaultTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// User is the user AddUser creates.
type User struct {
	AccountID string    `json:"accountId"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
}

// AddUser creates the account's user and returns its ID. It is idempotent by account: a
// repeated call returns the same user.
func (c *Client) AddUser(ctx context.Context, u User) (userID string, err error) {
	var out struct {
		UserID string `json:"userId"`
	}
	status, err := c.call(ctx, http.MethodPost, c.users+"/users", u, &out)
	switch {
	case err != nil:
		return "", fmt.Errorf("AddUser of account %s: %w", u.AccountID, err)
	case status == http.StatusConflict:
		return "", fmt.Errorf("AddUser of account %s: %w", u.AccountID, ErrUsernameTaken)
	case status == http.StatusGone:
		// The account's user was created and deleted again: a compensated registration retried.
		return "", fmt.Errorf("AddUser of account %s: its user was deleted: %w", u.AccountID, ErrRefused)
	case out.UserID == "":
		return "", fmt.Errorf("AddUser of account %s: the answer carries no userId: %w", u.AccountID, ErrUnavailable)
	}
	return out.UserID, nil
}

// DeleteUser deletes a user; deleting a deleted user succeeds.
func (c *Client) DeleteUser(ctx context.Context, userID string) error {
	if _, err := c.call(ctx, http.MethodDelete, c.users+"/users/"+url.PathEscape(userID), nil, nil); err != nil {
		return fmt.Errorf("DeleteUser %s: %w", userID, err)
	}
	return nil
}

// Welcome is the welcome email SendWelcome asks for.
type Welcome struct {
	UserID    string `json:"userId"`
	AccountID string `json:"accountId"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	Locale    string `json:"locale"`
	// OperationID identifies the registration in the Notification Service's records.
	OperationID string    `json:"operationId"`
	StartedAt   time.Time `json:"startedAt"`
}

// SendWelcome has the Notification Service queue the welcome email; it returns once the email
// is queued durably. It is idempotent by user: one welcome email per user.
func (c *Client) SendWelcome(ctx context.Context, w Welcome) error {
	if _, err := c.call(ctx, http.MethodPost, c.notifications+"/emails/welcome", w, nil); err != nil {
		return fmt.Errorf("SendEmail to user %s: %w", w.UserID, err)
	}
	return nil
}

// call sends in (JSON, unless nil), decodes a 2xx answer into out (unless nil) and returns the
// status. Transport errors, timeouts and 5xx are ErrUnavailable; 409 and 410 are returned as
// statuses for the caller to interpret; any other 4xx is ErrRefused.
func (c *Client) call(ctx context.Context, method, u string, in, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %w", method, u, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("%s %s: read answer: %w: %w", method, u, ErrUnavailable, err)
	}
	switch s := resp.StatusCode; {
	case s >= 500:
		return s, fmt.Errorf("%s %s: %s: %s: %w", method, u, resp.Status, bytes.TrimSpace(b), ErrUnavailable)
	case s == http.StatusConflict || s == http.StatusGone:
		return s, nil
	case s >= 400:
		return s, fmt.Errorf("%s %s: %s: %s: %w", method, u, resp.Status, bytes.TrimSpace(b), ErrRefused)
	case s < 200 || s > 299:
		return s, fmt.Errorf("%s %s: unexpected %s: %w", method, u, resp.Status, ErrUnavailable)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: answer is not the expected JSON: %w: %w", method, u, ErrUnavailable, err)
		}
	}
	return resp.StatusCode, nil
}
