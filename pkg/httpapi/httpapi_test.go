package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/httpapi"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want int
	}{
		{httpapi.CodeInvalid, http.StatusBadRequest},
		{httpapi.CodeNotFound, http.StatusNotFound},
		{httpapi.CodeMethodNotAllowed, http.StatusMethodNotAllowed},
		{httpapi.CodeConflict, http.StatusConflict},
		{httpapi.CodeGone, http.StatusGone},
		{httpapi.CodeTooLarge, http.StatusRequestEntityTooLarge},
		{httpapi.CodeUnsupported, http.StatusUnsupportedMediaType},
		{httpapi.CodeInternal, http.StatusInternalServerError},
		{"", http.StatusInternalServerError},
		{"no_such_code", http.StatusInternalServerError},
		{"Invalid", http.StatusInternalServerError}, // codes are exact, not case-folded
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.code), func(t *testing.T) {
			t.Parallel()
			if got := httpapi.Status(tt.code); got != tt.want {
				t.Errorf("Status(%q) = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

// decodeError decodes a response body strictly as {code, message}.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder) httpapi.Error {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	var e httpapi.Error
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body %q is not {code, message}: %v", rec.Body.String(), err)
	}
	return e
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.1.2.3:5432: password=hunter2"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		want       httpapi.Error
		wantLogged bool
	}{
		{
			name:       "Error",
			err:        httpapi.Errorf(httpapi.CodeNotFound, "no account %s", "a1"),
			wantStatus: http.StatusNotFound,
			want:       httpapi.Error{Code: httpapi.CodeNotFound, Message: "no account a1"},
		},
		{
			name:       "wrapped Error",
			err:        fmt.Errorf("get: %w", httpapi.Errorf(httpapi.CodeConflict, "taken")),
			wantStatus: http.StatusConflict,
			want:       httpapi.Error{Code: httpapi.CodeConflict, Message: "taken"},
		},
		{
			name:       "joined with a rollback error",
			err:        errors.Join(httpapi.Errorf(httpapi.CodeGone, "gone"), errors.New("rollback: "+secret)),
			wantStatus: http.StatusGone,
			want:       httpapi.Error{Code: httpapi.CodeGone, Message: "gone"},
		},
		{
			name:       "plain error",
			err:        errors.New(secret),
			wantStatus: http.StatusInternalServerError,
			want:       httpapi.Error{Code: "internal", Message: "internal error"},
			wantLogged: true,
		},
		{
			name:       "wrapped plain error",
			err:        fmt.Errorf("insert account: %w", errors.New(secret)),
			wantStatus: http.StatusInternalServerError,
			want:       httpapi.Error{Code: "internal", Message: "internal error"},
			wantLogged: true,
		},
		{
			name:       "Error with an unknown code",
			err:        &httpapi.Error{Code: "teapot", Message: "short and stout"},
			wantStatus: http.StatusInternalServerError,
			want:       httpapi.Error{Code: "teapot", Message: "short and stout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, withLog := range []bool{true, false} {
				var logged bytes.Buffer
				var log *slog.Logger
				if withLog {
					log = slog.New(slog.NewTextHandler(&logged, nil))
				}
				rec := httptest.NewRecorder()
				httpapi.WriteError(rec, log, tt.err) // a nil logger must not panic
				if rec.Code != tt.wantStatus {
					t.Errorf("log=%v: status = %d, want %d", withLog, rec.Code, tt.wantStatus)
				}
				if got := decodeError(t, rec); got != tt.want {
					t.Errorf("log=%v: body = %+v, want %+v", withLog, got, tt.want)
				}
				if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "10.1.2.3") {
					t.Errorf("log=%v: body %q leaks the internal error", withLog, rec.Body.String())
				}
				if withLog && tt.wantLogged && !strings.Contains(logged.String(), "hunter2") {
					t.Errorf("internal error was not logged; log: %q", logged.String())
				}
				if withLog && !tt.wantLogged && logged.Len() != 0 {
					t.Errorf("client error was logged: %q", logged.String())
				}
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	httpapi.MethodNotAllowed("GET, DELETE")(rec, httptest.NewRequest(http.MethodPut, "/x", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("status = %d, want 405", rec.Code)
	}
	if got := rec.Header().Get("Allow"); got != "GET, DELETE" {
		t.Errorf("Allow = %q, want %q", got, "GET, DELETE")
	}
	if e := decodeError(t, rec); e.Code != httpapi.CodeMethodNotAllowed || !strings.Contains(e.Message, "GET, DELETE") {
		t.Errorf("body = %+v, want code %s and a message naming the allowed methods", e, httpapi.CodeMethodNotAllowed)
	}
}

type payload struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	// atLimit is a valid object of exactly MaxBody bytes.
	atLimit := `{"name":"` + strings.Repeat("x", httpapi.MaxBody-len(`{"name":""}`)) + `"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		want        payload // when wantCode is ""
		wantCode    string
		wantMsg     []string // substrings of the error message
	}{
		{name: "object", contentType: "application/json", body: `{"name":"a","n":2}`, want: payload{"a", 2}},
		{name: "charset parameter", contentType: "application/json; charset=utf-8", body: `{"name":"a"}`, want: payload{Name: "a"}},
		{name: "no Content-Type", body: `{"n":1}`, want: payload{N: 1}},
		{name: "curl -d default Content-Type", contentType: "application/x-www-form-urlencoded", body: `{"n":1}`, want: payload{N: 1}},
		{name: "surrounding whitespace", contentType: "application/json", body: " \n{\"n\":1}\n\t ", want: payload{N: 1}},
		{name: "body of exactly MaxBody bytes", contentType: "application/json", body: atLimit, want: payload{Name: atLimit[9 : len(atLimit)-2]}},
		{
			name: "media type in upper case", contentType: "Application/JSON", body: `{"n":1}`, want: payload{N: 1},
		},
		{name: "text/plain", contentType: "text/plain", body: `{"n":1}`, wantCode: httpapi.CodeUnsupported, wantMsg: []string{"text/plain", "application/json"}},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: `{"n":1}`, wantCode: httpapi.CodeUnsupported},
		{name: "empty body", contentType: "application/json", body: "", wantCode: httpapi.CodeInvalid, wantMsg: []string{"empty"}},
		{name: "whitespace only", contentType: "application/json", body: " \n ", wantCode: httpapi.CodeInvalid, wantMsg: []string{"empty"}},
		{name: "truncated object", contentType: "application/json", body: `{"name":`, wantCode: httpapi.CodeInvalid, wantMsg: []string{"not valid JSON"}},
		{name: "syntax error", contentType: "application/json", body: `{name: "a"}`, wantCode: httpapi.CodeInvalid, wantMsg: []string{"not valid JSON"}},
		{name: "unknown field", contentType: "application/json", body: `{"name":"a","admin":true}`, wantCode: httpapi.CodeInvalid, wantMsg: []string{"unknown field", "admin"}},
		{name: "wrong field type", contentType: "application/json", body: `{"n":"two"}`, wantCode: httpapi.CodeInvalid, wantMsg: []string{`"n"`, "number"}},
		{name: "two objects", contentType: "application/json", body: `{"n":1}{"n":2}`, wantCode: httpapi.CodeInvalid, wantMsg: []string{"more than one"}},
		{name: "object then garbage", contentType: "application/json", body: `{"n":1} x`, wantCode: httpapi.CodeInvalid},
		{name: "one byte over MaxBody", contentType: "application/json", body: atLimit[:len(atLimit)-2] + `x"}`, wantCode: httpapi.CodeTooLarge, wantMsg: []string{fmt.Sprint(httpapi.MaxBody)}},
		{name: "far over MaxBody", contentType: "application/json", body: `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, wantCode: httpapi.CodeTooLarge},
		{
			name: "object then a closing brace", contentType: "application/json", body: `{"n":1}}`, wantCode: httpapi.CodeInvalid,
		},
		{name: "object then a closing bracket", contentType: "application/json", body: `{"n":1}]`, wantCode: httpapi.CodeInvalid},
		{
			name: "array instead of object", contentType: "application/json", body: `[1]`, wantCode: httpapi.CodeInvalid, wantMsg: []string{"object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			var got payload
			err := httpapi.Decode(httptest.NewRecorder(), req, &got)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if got != tt.want {
					t.Errorf("decoded %+v, want %+v", got, tt.want)
				}
				return
			}
			var e *httpapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode error = %v (%T), want an *httpapi.Error", err, err)
			}
			if e.Code != tt.wantCode {
				t.Errorf("code = %q (%q), want %q", e.Code, e.Message, tt.wantCode)
			}
			if e.Message == "" {
				t.Error("message is empty")
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not mention %q", e.Message, s)
				}
			}
			if strings.Contains(e.Message, "httpapi_test.") {
				t.Errorf("message %q names a Go type", e.Message)
			}
		})
	}
}

func TestNewServeMux(t *testing.T) {
	t.Parallel()
	mux := httpapi.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, r.PathValue("id"))
	})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/things/1", http.StatusOK},
		{"GET", "/elsewhere", http.StatusNotFound},
		{"DELETE", "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.want)
			continue
		}
		if tt.want != http.StatusNotFound {
			continue
		}
		if e := decodeError(t, rec); e.Code != httpapi.CodeNotFound || !strings.Contains(e.Message, tt.method+" "+tt.path) {
			t.Errorf("%s %s: body = %+v, want code %s naming the route", tt.method, tt.path, e, httpapi.CodeNotFound)
		}
	}
}
