package pkg_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/envelope"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/pkg/kafkatest"
	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/postgres"
	"github.com/choreo-dev/choreo/pkg/registry"
	"github.com/choreo-dev/choreo/pkg/service"
	"github.com/choreo-dev/choreo/schemas"
)

// The example of pkg/README.md ("Adding an event and a service that reacts to it"). Each region
// between "guide:begin <name>" and "guide:end" comments is a code block of the guide, and
// TestGuideMatchesExample keeps the two equal: change one, change the other.

// guide:begin migration
// farewellMigrations are the farewell service's tables. In a service of services/ they are
// files, internal/store/migrations/0001_farewells.sql, embedded and returned by migrate.Dir.
func farewellMigrations() migrate.Migrations {
	return migrate.Migrations{Component: "farewell-service", FS: fstest.MapFS{
		"0001_farewells.sql": {Data: []byte(`CREATE TABLE farewells (
    user_id    TEXT   PRIMARY KEY,
    email      TEXT   NOT NULL,
    deleted_at BIGINT NOT NULL -- unix milliseconds
);`)},
	}}
}

// guide:end

// guide:begin store
// DBTX is what the store needs of *sql.DB, *sql.Tx or a handler's *consumer.UnitOfWork.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertFarewell records that a user was deleted; a repeated call records nothing more.
func insertFarewell(ctx context.Context, db DBTX, userID, email string, at time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO farewells (user_id, email, deleted_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, userID, email, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("record farewell of user %s: %w", userID, err)
	}
	return nil
}

// guide:end

// guide:begin handler
// recordFarewell reacts to UserDeleted. It runs in one transaction with the event's inbox
// record, so a redelivered event is acknowledged without running it again.
func recordFarewell(ctx context.Context, tx *consumer.UnitOfWork, ev *event.UserDeleted) error {
	if ev.Email == "" {
		// Retrying cannot give the event an address: park it on the dead-letter topic.
		return consumer.Permanent(fmt.Errorf("user %s has no email", ev.UserID))
	}
	return insertFarewell(ctx, tx, ev.UserID, ev.Email, ev.DeletedAt)
}

// farewellHandlers are the service's handlers. A handler's name is part of its consumer
// group's contract: renaming it re-reads the topic for it.
func farewellHandlers() []consumer.Handler {
	return []consumer.Handler{
		consumer.On("record-farewell", recordFarewell),
	}
}

// guide:end

// guide:begin wiring
// newFarewellService builds the service: what its farewellsvc.New would be.
func newFarewellService(ctx context.Context, cfg service.Config, log *slog.Logger) (*service.Service, error) {
	return service.Open(ctx, "farewell-service", cfg, log,
		service.Migrations(farewellMigrations()),
		service.Consume("farewell-service", farewellHandlers()),
	)
}

// guide:end

// guide:begin emit
// emitUserDeleted emits ev outside a handler, as an HTTP API does: in the transaction of the
// change it reports (none here), published by the outbox relay once that commits.
func emitUserDeleted(ctx context.Context, s *service.Service, id string, ev *event.UserDeleted) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	env := envelope.Envelope{ID: id, Time: time.Now(), CorrelationID: id}
	if err := s.Emit(ctx, tx, env, ev); err != nil { // ErrUndeclaredEmit without service.Emits
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.Relay.Notify() // publish now, not at the relay's next poll
	return nil
}

// guide:end

// TestGuide runs the guide's example: a service emits UserDeleted through its outbox, the
// farewell service reacts on the embedded broker (or the cluster of KAFKA_BROKERS), a duplicate
// has no effect, an event its handler refuses is parked, and the catalog check accepts the
// service with the guide's catalog entry and refuses it without.
func TestGuide(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := registry.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	cfg := service.DefaultConfig("127.0.0.1:0")
	cfg.DataDir, cfg.Brokers, cfg.RegistryURL = t.TempDir(), kafkatest.Brokers(t), reg.URL()
	cfg.Namespace = kafkatest.Namespace(t)
	// config gives each service a database of its own: a SQLite file under DataDir, or a schema
	// of the PostgreSQL database of TEST_DATABASE_URL where CI provides one.
	config := func(name string) service.Config {
		c := cfg
		if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
			schema := strings.ToLower(strings.NewReplacer(".", "_", "-", "_").Replace(cfg.Scoped(name)))
			u, err := postgres.WithSearchPath(dsn, schema)
			if err != nil {
				t.Fatal(err)
			}
			c.DatabaseURL = u
		}
		return c
	}
	run := func(s *service.Service) {
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
		})
	}

	// guide:begin test
	users, err := service.Open(ctx, "user-service", config("user-service"), nil, service.Emits(new(event.UserDeleted)))
	if err != nil {
		t.Fatal(err)
	}
	run(users)
	farewell, err := newFarewellService(ctx, config("farewell-service"), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(farewell)

	at := time.Now().UTC().Truncate(time.Millisecond)
	jane := &event.UserDeleted{UserID: "u-1", AccountID: "acc-1", Username: "jane", Email: "jane@mail.com", DeletedAt: at}
	noEmail := &event.UserDeleted{UserID: "u-2", AccountID: "acc-1", Username: "joe", DeletedAt: at}
	for _, e := range []struct {
		id string
		ev *event.UserDeleted
	}{{"ev-1", jane}, {"ev-1", jane}, {"ev-2", noEmail}} { // ev-1 twice: a duplicate
		if err := emitUserDeleted(ctx, users, e.id, e.ev); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() error {
		if st := farewell.Runner().Stats(); st.Handled != 1 || st.Duplicates != 1 || st.Parked != 1 {
			return fmt.Errorf("stats %+v, want 1 handled, 1 duplicate, 1 parked", st)
		}
		return nil
	})
	var n int
	if err := farewell.DB.QueryRowContext(ctx, `SELECT count(*) FROM farewells WHERE user_id = 'u-1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("farewells of u-1: %d, %v; want 1", n, err)
	}
	// guide:end

	if err := emitUserDeleted(ctx, farewell, "ev-3", jane); !errors.Is(err, service.ErrUndeclaredEmit) {
		t.Errorf("emit of an undeclared event = %v, want ErrUndeclaredEmit", err)
	}

	guide := guideBlocks(t)
	base, err := fs.ReadFile(schemas.FS, catalog.FileName)
	if err != nil {
		t.Fatal(err)
	}
	entry := guide["catalog-service"].text
	if entry == "" {
		t.Fatal("README.md has no guide block catalog-service")
	}
	with := strings.Replace(string(base), "\nservices:\n", "\nservices:\n"+entry, 1)
	if with == string(base) {
		t.Fatal("no services: list in the catalog to add the guide's entry to")
	}
	cat, err := catalog.Parse([]byte(with))
	if err != nil {
		t.Fatalf("the catalog with the guide's entry: %v", err)
	}
	if err := cat.CheckService(farewell.Description()); err != nil {
		t.Errorf("the catalog check refuses the guide's service: %v", err)
	}
	cat, err = catalog.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CheckService(farewell.Description()); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("the catalog check of a service the catalog lacks = %v, want ErrInvalid", err)
	}
}

// TestGuideMatchesExample: every block of pkg/README.md marked <!-- guide:<name> --> is the
// region <name> of this file, or what it says it shows of a file under schemas/.
func TestGuideMatchesExample(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("guide_test.go")
	if err != nil {
		t.Fatal(err)
	}
	regions := sourceRegions(t, string(src))
	guide := guideBlocks(t)
	for name, b := range guide {
		switch {
		case b.kind == "file" || b.kind == "excerpt":
			data, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(b.arg)))
			if err != nil {
				t.Errorf("guide block %s: %v", name, err)
				continue
			}
			if b.kind == "file" && string(data) != b.text {
				t.Errorf("guide block %s differs from %s", name, b.arg)
			}
			if b.kind == "excerpt" && !strings.Contains(string(data), b.text) {
				t.Errorf("guide block %s is not in %s:\n%s", name, b.arg, b.text)
			}
		case name == "catalog-service":
			// TestGuide adds it to the catalog and runs the catalog check with it.
		default:
			r, ok := regions[name]
			if !ok {
				t.Errorf("guide block %s has no region in guide_test.go", name)
				continue
			}
			if r != b.text {
				t.Errorf("guide block %s differs from its region in guide_test.go:\nguide:\n%s\nsource:\n%s", name, b.text, r)
			}
		}
	}
	for name := range regions {
		if _, ok := guide[name]; !ok {
			t.Errorf("region %s of guide_test.go is not in the guide", name)
		}
	}
	for _, want := range []string{"migration", "store", "handler", "wiring", "emit", "test"} {
		if _, ok := regions[want]; !ok {
			t.Errorf("no region %s in guide_test.go", want)
		}
	}
}

type guideBlock struct {
	kind, arg string // "" for a region of guide_test.go; "file" or "excerpt" and a path
	text      string
}

// guideBlocks returns the fenced blocks of README.md that follow a <!-- guide:<name> [file|excerpt
// path] --> line, by name.
func guideBlocks(t *testing.T) map[string]guideBlock {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := map[string]guideBlock{}
	var (
		name  string
		cur   *guideBlock
		lines []string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur != nil && lines == nil: // between the marker and its block
			if strings.HasPrefix(line, "```") {
				lines = []string{}
			} else if strings.TrimSpace(line) != "" {
				t.Fatalf("README.md: guide block %s: the marker is not followed by a fenced block", name)
			}
		case cur != nil && line == "```":
			cur.text = strings.Join(lines, "\n") + "\n"
			blocks[name], cur, lines = *cur, nil, nil
		case cur != nil:
			lines = append(lines, line)
		case strings.HasPrefix(line, "<!-- guide:") && strings.HasSuffix(line, " -->"):
			f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(line, "<!-- guide:"), " -->"))
			name, cur = f[0], &guideBlock{}
			if len(f) == 3 {
				cur.kind, cur.arg = f[1], f[2]
			}
			if _, dup := blocks[name]; dup {
				t.Fatalf("README.md: guide block %s twice", name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md: guide block %s is not closed", name)
	}
	return blocks
}

// sourceRegions returns the lines between "// guide:begin <name>" and "// guide:end" of src,
// without the common indentation and without trailing blank lines.
func sourceRegions(t *testing.T, src string) map[string]string {
	t.Helper()
	regions := map[string]string{}
	var (
		name  string
		lines []string
	)
	for line := range strings.Lines(src) {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "// guide:begin "):
			name, lines = strings.TrimPrefix(trimmed, "// guide:begin "), []string{}
		case trimmed == "// guide:end" && name != "":
			for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
				lines = lines[:len(lines)-1]
			}
			regions[name], name = dedent(lines), ""
		case name != "":
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	return regions
}

func dedent(lines []string) string {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, "\t")); indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// waitFor calls fn every 20ms until it returns nil, and fails t with its last error after a
// minute.
func waitFor(t *testing.T, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after a minute: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
