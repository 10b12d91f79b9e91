package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/connect"
	"github.com/choreo-dev/choreo/pkg/explorer"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/schemas"
)

// defaultUIAddr is where `choreo ui` and `choreo dev` serve the explorer.
const defaultUIAddr = "127.0.0.1:8084"

func runUI(ctx context.Context, env Env, args []string) error {
	fset := flag.NewFlagSet("ui", flag.ContinueOnError)
	cn := connFlags(fset, env)
	addr := fset.String("addr", orDefault(env.Getenv("CHOREO_UI_ADDR"), defaultUIAddr), "listen address of the explorer (env CHOREO_UI_ADDR)")
	ns := fset.String("namespace", env.Getenv("CHOREO_NAMESPACE"),
		"prefix of the topics and consumer groups the services were given (env CHOREO_NAMESPACE)")
	lookback := fset.Duration("lookback", 24*time.Hour, "search for an ID this far back from the topics' end; 0 searches the topics whole")
	effects := fset.String("effects", env.Getenv("CHOREO_EFFECTS"),
		"services to ask for each operation's effects (GET /effects), as service=url,... e.g. notification-service=http://127.0.0.1:8083 (env CHOREO_EFFECTS)")
	from := schemasFlag(fset)
	if err := parse(fset, env, args, 0); err != nil {
		return err
	}
	effectURLs, err := parseEffects(*effects)
	if err != nil {
		return err
	}
	cat, err := loadCatalog(*from)
	if err != nil {
		return err
	}
	var schemaFS fs.FS = schemas.FS
	if *from != "" {
		schemaFS = os.DirFS(*from)
	}
	ex, closeEx, err := newExplorer(ctx, env, cn, *ns, cat, schemaFS, effectURLs, *lookback)
	if err != nil {
		return err
	}
	defer closeEx()
	ln, url, err := listenUI(*addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "choreo explorer: %s\nStop with Ctrl-C.\n", url)
	return serveUI(ctx, ln, ex)
}

// uiConn is the connection of the explorer that `choreo dev` serves: its own brokers and
// registry, with the TLS and SASL settings of the cluster it runs on.
func uiConn(brokers []string, registry string, settings connect.Settings) *conn {
	return &conn{brokers: strings.Join(brokers, ","), registry: registry, Settings: settings}
}

// newExplorer connects to the cluster and the registry of cn and returns the explorer of cat
// over namespace ns's topics, and a function that closes its client. Without the registry the
// events are shown undecoded, with a warning: the headers still tell the chain.
func newExplorer(ctx context.Context, env Env, cn *conn, ns string, cat *catalog.Catalog, schemaFS fs.FS,
	effects map[string]string, lookback time.Duration) (*explorer.Explorer, func(), error) {
	c, err := newCodec(ctx, cn, ns)
	if err != nil {
		fmt.Fprintf(env.Stderr, "choreo ui: events are shown undecoded: %v\n", err)
		c = nil
	}
	kopts, err := cn.kafkaOpts()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("KAFKA_BROKERS %s (-brokers): %w", cn.brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("KAFKA_BROKERS %s (-brokers): no broker answers: %w", cn.brokers, cn.explain(err))
	}
	src := explorer.Kafka(cl, c, trace.Topics(cat, ns), trace.WithLookback(lookback),
		trace.WithComplete(func(t *trace.Trace) bool { return t.Settled(t.Compare(cat)) }))
	ex, err := explorer.New(cat, src, explorer.WithEffects(effects), explorer.WithSchemas(schemaFS))
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return ex, cl.Close, nil
}

// listenUI opens the explorer's listener on addr and returns it with the page's URL.
func listenUI(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("explorer on %s: %w", addr, err)
	}
	return ln, "http://" + ln.Addr().String() + "/", nil
}

// serveUI serves h on ln until ctx ends, then shuts down gracefully. The requests' contexts
// end with ctx, so that a read of Kafka in flight does not hold the shutdown up.
func serveUI(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("explorer on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("explorer on %s: shut down: %w", ln.Addr(), err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("explorer on %s: %w", ln.Addr(), err)
	}
	return nil
}
