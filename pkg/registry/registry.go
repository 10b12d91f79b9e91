// Package registry is the schema registry of `choreo dev` and `choreo registry`: the REST API of
// Confluent Schema Registry, with its semantics (IDs shared by equal schemas across subjects,
// idempotent registration, compatibility levels checked for real by package avrocompat, soft and
// permanent deletes, its error codes and bodies), served on a TCP address, with its state saved
// to a JSON file after every change.
//
// The records in the Kafka log carry schema IDs: a registry that restarted empty would hand the
// same IDs to different schemas and make the log undecodable. With a state file, a restarted
// registry has exactly the subjects, versions and IDs it had before, and never gives out an ID
// twice. Schemas are kept exactly as registered (doc strings and all).
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
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
	opts  options
	store *store
	ln    net.Listener
	srv   *http.Server
	done  chan struct{} // closed when srv.Serve has returned

	// mu serialises requests, and each change with the snapshot that follows it, so a snapshot
	// always sees a state no other request is halfway through changing.
	mu     sync.Mutex
	last   []byte // the snapshot last written, to skip rewriting an unchanged state
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
	s := &Server{opts: o, store: newStore(), done: make(chan struct{})}
	if o.stateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	h := s.routes()

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

	if s.opts.stateFile != "" {
		s.mu.Lock()
		if err := s.persistLocked(true); err != nil {
			errs = append(errs, err)
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
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
		if err := s.store.load(st); err != nil {
			return badState(path, err)
		}
		s.opts.log.Info("schema registry state loaded", "file", path,
			"versions", len(st.Schemas), "next_id", s.store.nextID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.persistLocked(true)
}

// persistLocked snapshots the registry and writes it to the state file, unless force is false
// and the state is the one last written. The caller holds mu.
func (s *Server) persistLocked(force bool) error {
	if s.opts.stateFile == "" {
		return nil
	}
	data, err := encodeState(s.store.snapshot())
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
