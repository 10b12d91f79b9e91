// Package registry is the schema registry of `choreo dev`: franz-go's in-memory Confluent-compatible
// fake (srfake) served on a TCP address, with its state saved to a JSON file after every change.
//
// srfake alone forgets everything when the process stops, but the records in the Kafka log carry
// schema IDs: a registry that restarted empty would hand the same IDs to different schemas and make
// the log undecodable. With a state file, a restarted registry has exactly the subjects, versions and
// IDs it had before, and never gives out an ID twice.
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// ErrBadStateFile is wrapped by the error Start returns when the state file exists but cannot be
// read back into the registry. Start never falls back to an empty registry in that case.
var ErrBadStateFile = errors.New("registry: unusable state file")

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = time.Second

type options struct {
	stateFile string
	log       *slog.Logger
}

// Option configures a Server.
type Option func(*options)

// StateFile makes the registry load its state from path at start (if the file exists) and rewrite
// it atomically after every change, so that schema IDs survive restarts. Its directory is created
// if missing. Default: "" (pure in-memory, nothing is written anywhere).
func StateFile(path string) Option { return func(o *options) { o.stateFile = path } }

// Logger sets where the server reports what it cannot return: failed snapshots and server errors.
// Default: discarded.
func Logger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Server serves a schema registry on a TCP address and persists every change to a JSON file.
type Server struct {
	opts options
	reg  *srfake.Registry
	api  api // srfake's own REST API, called in-process to snapshot and restore
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when srv.Serve has returned

	// mu serialises mutating requests with the snapshot that follows each, so a snapshot always
	// sees a state no other request is halfway through changing, and writes cannot interleave.
	mu     sync.Mutex
	last   []byte // the snapshot last written, to skip rewriting an unchanged state
	maxID  int    // highest schema ID ever seen, where snapshots look for IDs no subject lists
	closed bool
}

// Start listens on addr (for example "127.0.0.1:8081", or "127.0.0.1:0" for any free port) and
// serves the registry until Close. With a StateFile that exists, the registry starts with the
// state recorded in it; if that file cannot be used, Start fails with ErrBadStateFile rather than
// start empty, because records already in Kafka may reference the schema IDs it holds.
func Start(addr string, opts ...Option) (*Server, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	reg := srfake.NewRegistry()
	s := &Server{opts: o, reg: reg, api: api{h: reg.Handler()}, done: make(chan struct{})}

	var h http.Handler = s.api.h
	if o.stateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
		h = http.HandlerFunc(s.servePersisting)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("schema registry stopped serving", "addr", s.Addr(), "err", err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on, with the port chosen if addr asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL clients use, such as "http://127.0.0.1:8081". A server listening on
// every interface is reached through 127.0.0.1.
func (s *Server) URL() string {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return "http://" + s.Addr()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Close stops serving, waiting up to a few seconds for requests in flight, and writes a final
// snapshot to the state file. Closing a closed server does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock() // requests in flight need mu to finish

	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		// Past the deadline only connections that never sent a request remain (Shutdown
		// waits for those too, since a request could still arrive): cut them.
		if !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("registry: shutdown: %w", err))
		}
		_ = s.srv.Close()
	}
	<-s.done
	s.reg.Close()

	if s.opts.stateFile != "" {
		s.mu.Lock()
		if err := s.persistLocked(true); err != nil {
			errs = append(errs, err)
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// servePersisting serves one request and, if it changed the registry, saves the new state before
// the client sees the answer: an ID a producer has been given is already on disk.
func (s *Server) servePersisting(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		s.api.h.ServeHTTP(w, r)
		return
	}

	s.mu.Lock()
	rec := httptest.NewRecorder()
	s.api.h.ServeHTTP(rec, r)
	if rec.Code >= 200 && rec.Code < 300 {
		// Lookups (POST /subjects/{subject}) end here too; the snapshot is then unchanged and
		// the file is not rewritten.
		if err := s.persistLocked(false); err != nil {
			s.opts.log.Error("schema registry state not saved; retrying at the next change and at close",
				"file", s.opts.stateFile, "err", err)
		}
	}
	s.mu.Unlock()

	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes()) // a client that went away has nothing to be told
}

// load restores the state file, if there is one, and writes the state back, which also proves
// early that the file can be written.
func (s *Server) load() error {
	path := s.opts.stateFile
	st, err := readState(path)
	if err != nil {
		return badState(path, err)
	}
	if st != nil {
		if err := restore(s.reg, s.api, st, s.opts.log); err != nil {
			return badState(path, err)
		}
		got, maxID, err := s.api.snapshot(st.maxID())
		if err != nil {
			return fmt.Errorf("registry: snapshot after restoring %s: %w", path, err)
		}
		if err := sameState(st, got); err != nil {
			return badState(path, fmt.Errorf("restored registry differs from the file: %w", err))
		}
		s.maxID = maxID
		s.opts.log.Info("schema registry state loaded", "file", path,
			"versions", len(st.Schemas), "ids", maxID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.persistLocked(true)
}

// persistLocked snapshots the registry and writes it to the state file, unless force is false
// and the state is the one last written. The caller holds mu.
func (s *Server) persistLocked(force bool) error {
	st, maxID, err := s.api.snapshot(s.maxID)
	if err != nil {
		return fmt.Errorf("registry: snapshot: %w", err)
	}
	s.maxID = maxID
	data, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("registry: snapshot: %w", err)
	}
	if !force && bytes.Equal(data, s.last) {
		return nil
	}
	if err := writeAtomic(s.opts.stateFile, data); err != nil {
		return fmt.Errorf("registry: save state: %w", err)
	}
	s.last = data
	return nil
}

func badState(path string, err error) error {
	return fmt.Errorf("%w %s: %w. Records in Kafka may reference the schema IDs it holds, so the "+
		"registry does not start empty over it: repair the file, or remove it to start fresh", ErrBadStateFile, path, err)
}
