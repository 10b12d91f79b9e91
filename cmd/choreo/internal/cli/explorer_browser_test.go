package cli_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/choreo-dev/choreo/cmd/choreo/internal/cli"
	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/explorer"
	"github.com/choreo-dev/choreo/pkg/trace"
	"github.com/choreo-dev/choreo/services/stack/stacktest"
)

var update = flag.Bool("update", false, "rewrite testdata/explorer.png, the README's screenshot of the explorer")

// readmeScreenshot is the screenshot of the explorer that the README shows.
const readmeScreenshot = "testdata/explorer.png"

// chromium returns the path of a Chromium (or Chrome) binary: $CHOREO_CHROMIUM, or the first
// found of the usual names. Without one the test is skipped, unless CHOREO_REQUIRE_BROWSER is
// set (CI sets it): then it fails, so that a lost browser cannot turn the test into a skip.
func chromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHOREO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CHOREO_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium binary (apt-get install chromium, or set CHOREO_CHROMIUM), and CHOREO_REQUIRE_BROWSER is set")
	}
	t.Skip("no chromium binary found (apt-get install chromium, or set CHOREO_CHROMIUM): the browser test needs one")
	return ""
}

// browser starts a headless Chromium for t and returns a context of one tab in it.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 760),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	return ctx
}

// artifacts returns the directory for the test's screenshots: $CHOREO_ARTIFACTS, or a
// temporary directory of t.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CHOREO_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// syncBuffer is a bytes.Buffer that a running command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs `choreo dev` in process with everything on free ports of 127.0.0.1 and returns
// what it printed once it runs; it stops when t ends.
func startDev(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"dev", "-data-dir", t.TempDir(), "-kafka-port", "0", "-registry-addr", "127.0.0.1:0",
			"-account-addr", "127.0.0.1:0", "-user-addr", "127.0.0.1:0", "-notification-addr", "127.0.0.1:0",
			"-ui-addr", "127.0.0.1:0", "-partitions", "3"},
			cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("choreo dev: exit status %d\nstderr:\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("choreo dev did not stop within 30s of its context's end")
		}
	})
	stacktest.Eventually(t, 60*time.Second, func() error {
		select {
		case code := <-done:
			t.Fatalf("choreo dev exited with status %d\nstderr:\n%s", code, stderr.String())
		default:
		}
		if !strings.Contains(stdout.String(), "Stop with Ctrl-C.") {
			return fmt.Errorf("choreo dev has not started; it printed:\n%s", stdout.String())
		}
		return nil
	})
	return stdout.String()
}

// printedURL returns the URL printed on the line of `choreo dev`'s listing named name.
func printedURL(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +(http://\S+?)/?$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("choreo dev printed no URL for %s:\n%s", name, out)
	}
	return m[1]
}

// TestExplorerInBrowser drives the explorer of `choreo dev` in a headless Chromium: register an
// account through the API, find its operation in the live list, open it, and see the tree
// (AccountCreated -> UserCreated) and the welcome email it ends in, sent. The screenshot goes to
// the artifacts directory (and, with -update, to the README's testdata/explorer.png).
func TestExplorerInBrowser(t *testing.T) {
	ctx := browser(t)
	out := startDev(t)
	ui, account, notif := printedURL(t, out, "explorer"), printedURL(t, out, "account-service"), printedURL(t, out, "notification-service")
	t.Logf("choreo dev:\n%s", out)

	var created struct{ AccountID, EventID string }
	code, err := stacktest.DoJSON("POST", account+"/accounts", `{"username":"ada","email":"ada@mail.com"}`, &created)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /accounts: %d %v", code, err)
	}
	// The email is sent before the page is opened, so that the tree shows it sent.
	stacktest.Eventually(t, 30*time.Second, func() error {
		var ns []stacktest.Notification
		if code, err := stacktest.DoJSON("GET", notif+"/notifications?accountId="+created.AccountID, "", &ns); err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /notifications: %d %v", code, err)
		}
		if len(ns) != 1 || ns[0].Status != "sent" {
			return fmt.Errorf("notifications %+v, want one sent", ns)
		}
		return nil
	})

	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	row := fmt.Sprintf(`#ops tr[data-correlation-id=%q]`, created.EventID)
	tree := `#tree > li[data-type="AccountCreated"] > ul > li[data-type="UserCreated"]`
	effect := tree + ` li[data-effect="welcome email"][data-service="notification-service"][data-status="sent"]`
	if err := chromedp.Do(tctx,
		chromedp.Navigate(ui),
		chromedp.WaitVisible(chromedp.CSS(row)), // the live list of recent operations
		chromedp.Click(chromedp.CSS(row+" a")),
		chromedp.WaitVisible(chromedp.CSS(tree)),
		chromedp.WaitVisible(chromedp.CSS(effect)),
	); err != nil {
		t.Fatalf("explorer at %s: %v", ui, err)
	}
	status, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`h1 .badge`)))
	if err != nil || status != "complete" {
		t.Errorf("operation status %q (%v), want complete", status, err)
	}
	text, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(effect)))
	if err != nil || !strings.Contains(text, "effect: welcome email") || !strings.Contains(text, "sent") {
		t.Errorf("effect leaf %q (%v)", text, err)
	}
	hop, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(tree+" > .node .hop")))
	if err != nil || !regexp.MustCompile(`^\+[0-9.]+ (ms|µs|s)$`).MatchString(hop) {
		t.Errorf("UserCreated's hop latency %q (%v)", hop, err)
	}
	loc, err := chromedp.Run(tctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "#/operations/"+url.PathEscape(created.EventID)) {
		t.Errorf("location %q (%v)", loc, err)
	}
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifacts(t), "explorer-operation.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the operation: %s", path)
	if *update {
		if err := os.WriteFile(readmeScreenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// noOperations is a Source of an empty cluster.
type noOperations struct{}

func (noOperations) Recent(context.Context, int) ([]*trace.Trace, error) { return nil, nil }
func (noOperations) Find(_ context.Context, id string) (*trace.Trace, error) {
	return nil, fmt.Errorf("%s: %w", id, trace.ErrNotFound)
}

// TestExplorerLargeCatalogInBrowser opens the generated 300-event catalog in the browser: every
// event is listed, the filter narrows the list, and a chain is drawn with a box per step.
func TestExplorerLargeCatalogInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := filepath.Join("..", "..", "..", "..", "pkg", "catalog", "testdata", "large")
	cat, err := catalog.Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := explorer.New(cat, noOperations{}, explorer.WithSchemas(os.DirFS(dir)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ex)
	defer srv.Close()

	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(tctx, chromedp.Navigate(srv.URL+"/#/events"), chromedp.WaitVisible(chromedp.CSS(`#events tbody tr`))); err != nil {
		t.Fatal(err)
	}
	t.Logf("the list of %d events shown after %s", len(cat.Events), time.Since(start).Round(time.Millisecond))
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#events tbody tr").length`))
	if err != nil || rows != len(cat.Events) || rows != 300 {
		t.Fatalf("%d rows (%v), want 300", rows, err)
	}
	// The filter: an event's name shows its row, and hides the rows that do not mention it.
	name := cat.Events[len(cat.Events)-1].Name
	want := 0
	for _, e := range cat.Events {
		if strings.Contains(strings.ToLower(e.Name+e.Description), strings.ToLower(name)) {
			want++
		}
	}
	if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`#filter`), name)); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(tctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#events tbody tr")].filter((r) => !r.hidden).length`))
	if err != nil || shown < want || shown >= 300 {
		t.Errorf("filter %q shows %d rows (%v), want at least %d and fewer than 300", name, shown, err, want)
	}
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#events tr[data-event=%q]`, name)))); err != nil {
		t.Errorf("row of %s after filtering: %v", name, err)
	}

	ch := cat.Chains[len(cat.Chains)-1]
	if err := chromedp.Do(tctx, chromedp.Navigate(srv.URL+"/#/chains/"+url.PathEscape(ch.Name)), chromedp.WaitVisible(chromedp.CSS(`#chain-diagram svg`))); err != nil {
		t.Fatal(err)
	}
	boxes, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("#chain-diagram g.box").length`))
	if err != nil || boxes != len(ch.Steps)+1 {
		t.Errorf("chain %q: %d boxes (%v), want %d (the trigger and each step)", ch.Name, boxes, err, len(ch.Steps)+1)
	}
	fits, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`document.querySelector("#chain-diagram svg").getBoundingClientRect().width <= document.querySelector("#chain-diagram").clientWidth`))
	if err != nil || !fits {
		t.Errorf("chain %q: the diagram is wider than the page (%v); it should wrap", ch.Name, err)
	}
	png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifacts(t), "explorer-large-chain.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of chain %q of the 300-event catalog: %s", ch.Name, path)
}
