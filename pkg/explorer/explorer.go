// Package explorer serves a web page to look at a choreography: the event catalog (services,
// events with their schemas, each chain as a diagram), the recent operations in Kafka, and one
// operation's tree of events with per-hop latency, effects and parked records, its deviations
// from the catalog highlighted.
//
// Everything the page shows comes from a JSON API computed by the packages the command line
// uses (catalog for the catalog and impact, trace for operations, comparisons and summaries), so
// the page and `choreo trace` cannot disagree. The page itself is plain HTML, CSS and JavaScript
// embedded in the binary: no build step, nothing fetched at run time.
package explorer

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/codec"
	"github.com/choreo-dev/choreo/pkg/trace"
)

//go:embed static
var static embed.FS

// Source is where the explorer finds operations. Implementations are safe for concurrent use;
// Find returns an error wrapping trace.ErrNotFound when no event carries the ID.
type Source interface {
	// Recent returns the last n operations, newest first.
	Recent(ctx context.Context, n int) ([]*trace.Trace, error)
	// Find returns the operation that id (a correlation ID or any of its events' ce_id)
	// belongs to.
	Find(ctx context.Context, id string) (*trace.Trace, error)
}

// Kafka returns a Source reading the topics of a cluster as `choreo trace` does (trace.Recent,
// trace.FindByID): cl must not be a group consumer; c decodes the events (nil leaves them
// undecoded); topics are those trace.Topics names; opts tune how much is read.
func Kafka(cl *kgo.Client, c *codec.Codec, topics []string, opts ...trace.Option) Source {
	return kafkaSource{cl: cl, c: c, topics: topics, opts: opts}
}

type kafkaSource struct {
	cl     *kgo.Client
	c      *codec.Codec
	topics []string
	opts   []trace.Option
}

func (k kafkaSource) Recent(ctx context.Context, n int) ([]*trace.Trace, error) {
	return trace.Recent(ctx, k.cl, k.c, k.topics, n, k.opts...)
}

func (k kafkaSource) Find(ctx context.Context, id string) (*trace.Trace, error) {
	return trace.FindByID(ctx, k.cl, k.c, k.topics, id, k.opts...)
}

// Option configures an Explorer.
type Option func(*Explorer)

// WithEffects names the services to ask for each operation's effects (GET /effects), as service
// name -> base URL of its API, e.g. "notification-service" -> "http://127.0.0.1:8083". The
// default is none: effects are shown as declared, not observed.
func WithEffects(urls map[string]string) Option {
	return func(e *Explorer) { e.effects = urls }
}

// WithTimeout bounds the time one request may spend reading Kafka and asking the services. The
// default is 30 seconds.
func WithTimeout(d time.Duration) Option {
	return func(e *Explorer) { e.timeout = d }
}

// WithSchemas gives the file system the catalog's schemas are in (the catalog's Schema paths),
// so that an event's page shows its Avro schema. The default is none: no schema is shown.
func WithSchemas(fsys fs.FS) Option {
	return func(e *Explorer) { e.schemas = fsys }
}

// Explorer is the http.Handler of the page and its API:
//
//	GET /                        the page
//	GET /api/catalog             services, events and chains
//	GET /api/events/{name}       an event: its schema, consumers and what depends on it
//	GET /api/services/{name}     a service and what depends on it
//	GET /api/chains/{name}       a chain's steps
//	GET /api/operations?n=20     the last n operations (1 to 200), newest first
//	GET /api/operations/{id}     one operation's tree, compared with the catalog
//
// Errors are JSON {"error": "..."}: 400 for bad input, 404 for an unknown name or ID, 502 when
// Kafka cannot be read, 504 when it takes longer than WithTimeout.
type Explorer struct {
	cat     *catalog.Catalog
	src     Source
	effects map[string]string
	timeout time.Duration
	schemas fs.FS
	hc      *http.Client
	mux     *http.ServeMux
	catJSON []byte
}

// New returns the explorer of catalog cat, finding operations in src.
func New(cat *catalog.Catalog, src Source, opts ...Option) (*Explorer, error) {
	e := &Explorer{cat: cat, src: src, timeout: 30 * time.Second, hc: &http.Client{Timeout: 10 * time.Second}}
	for _, o := range opts {
		o(e)
	}
	var err error
	if e.catJSON, err = json.Marshal(catalogView(cat)); err != nil {
		return nil, fmt.Errorf("explorer: encode catalog: %w", err)
	}
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("explorer: %w", err)
	}
	files := http.FileServerFS(page)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed: the explorer is read-only (GET)", r.Method)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/catalog", e.serveCatalog)
	mux.HandleFunc("GET /api/events/{name}", e.serveEvent)
	mux.HandleFunc("GET /api/services/{name}", e.serveService)
	mux.HandleFunc("GET /api/chains/{name}", e.serveChain)
	mux.HandleFunc("GET /api/operations", e.serveRecent)
	mux.HandleFunc("GET /api/operations/{id}", e.serveOperation)
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s", r.URL.Path)
	})
	e.mux = mux
	return e, nil
}

// ServeHTTP serves the page and its API.
func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	e.mux.ServeHTTP(w, r)
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encode answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// sourceError answers a failure to read operations: not found, too slow, or Kafka failing.
func (e *Explorer) sourceError(w http.ResponseWriter, ctx context.Context, err error) {
	switch {
	case errors.Is(err, trace.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		writeError(w, http.StatusGatewayTimeout, "reading Kafka took longer than %s: %v", e.timeout, err)
	default:
		writeError(w, http.StatusBadGateway, "reading Kafka: %v", err)
	}
}
