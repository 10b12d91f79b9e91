// Package httpapi holds the conventions of choreo's JSON HTTP APIs: one error type with codes,
// mapped to HTTP statuses only here at the edge, and strict request decoding (size limit,
// unknown fields rejected), so a client's mistake is always a 4xx with a JSON body saying what.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// Error codes, each mapped to one HTTP status.
const (
	CodeInvalid          = "invalid"            // 400
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409
	CodeGone             = "gone"               // 410
	CodeTooLarge         = "too_large"          // 413
	CodeUnsupported      = "unsupported_media"  // 415
	CodeInternal         = "internal"           // 500
	CodeUnavailable      = "unavailable"        // 503
)

// Error is an application error with a code a client can act on.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Status maps a code to its HTTP status.
func Status(code string) int {
	switch code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeGone:
		return http.StatusGone
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as {code, message}. An error that is not an *Error is an internal one:
// it is logged, and the client sees no internals.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if log != nil {
			log.Error("internal error", "err", err)
		}
		e = &Error{Code: CodeInternal, Message: "internal error"}
	}
	WriteJSON(w, Status(e.Code), e)
}

// MaxBody is the largest request body Decode accepts.
const MaxBody = 64 << 10

// Decode reads one JSON object from r's body into dst, strictly: at most MaxBody bytes, no
// unknown fields, nothing after the object. Its errors are *Error values.
func Decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded") { // curl -d's default
			return Errorf(CodeUnsupported, "Content-Type %q: send application/json", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return Errorf(CodeTooLarge, "request body is larger than %d bytes", MaxBody)
		case errors.Is(err, io.EOF):
			return Errorf(CodeInvalid, "request body is empty; send a JSON object")
		case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
			return Errorf(CodeInvalid, "request body is not valid JSON: %v", err)
		case errors.As(err, &typ) && typ.Field == "":
			return Errorf(CodeInvalid, "request body must be a JSON object")
		case errors.As(err, &typ):
			return Errorf(CodeInvalid, "field %q must be a %s", typ.Field, jsonKind(typ.Type.Kind()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Errorf(CodeInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return Errorf(CodeInvalid, "request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(CodeInvalid, "request body holds more than one JSON object")
	}
	return nil
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value of another type"
}

// MethodNotAllowed answers requests whose path exists but method does not, in the API's format.
func MethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, nil, Errorf(CodeMethodNotAllowed, "method not allowed; use %s", allow))
	}
}

// NewServeMux returns a mux that answers a request no route of it matches with a not_found
// Error naming the method and path, in the API's format, instead of net/http's plain text.
// Routes registered on it take precedence: "/" is the least specific pattern.
func NewServeMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, nil, Errorf(CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}
