package event_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/event"
	"github.com/choreo-dev/choreo/schemas"
)

// schemasDir is the schemas directory seen from this package's directory, where go test runs.
const schemasDir = "../../schemas"

// wantTypes is what the catalog and the schemas say about each event, written out by hand so
// that a change to a topic, key or namespace is a deliberate edit here too.
var wantTypes = []struct {
	name, fullName, topic, key, subject string
}{
	{"AccountCreated", "choreo.account.v1.AccountCreated", "accounts", "accountId", "accounts-choreo.account.v1.AccountCreated"},
	{"AccountDeleted", "choreo.account.v1.AccountDeleted", "accounts", "accountId", "accounts-choreo.account.v1.AccountDeleted"},
	{"UserCreated", "choreo.user.v1.UserCreated", "users", "accountId", "users-choreo.user.v1.UserCreated"},
	{"UserDeleted", "choreo.user.v1.UserDeleted", "users", "accountId", "users-choreo.user.v1.UserDeleted"},
	{"UserRegistrationRejected", "choreo.user.v1.UserRegistrationRejected", "users", "accountId", "users-choreo.user.v1.UserRegistrationRejected"},
}

func mustLoad(t *testing.T) *event.TypeSet {
	t.Helper()
	r, err := event.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func mustCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatalf("catalog.Load: %v", err)
	}
	return cat
}

func TestLoadCoversCatalog(t *testing.T) {
	t.Parallel()
	r := mustLoad(t)
	cat := mustCatalog(t)

	var catNames, typeNames, wantNames []string
	for _, e := range cat.Events {
		catNames = append(catNames, e.Name)
	}
	for _, ty := range r.Types() {
		typeNames = append(typeNames, ty.Name)
	}
	for _, w := range wantTypes {
		wantNames = append(wantNames, w.name)
	}
	slices.Sort(catNames)
	if !slices.Equal(typeNames, catNames) {
		t.Errorf("Types() = %v (sorted by name), catalog events = %v", typeNames, catNames)
	}
	if !slices.Equal(wantNames, catNames) {
		t.Errorf("this test knows events %v, the catalog has %v: update wantTypes", wantNames, catNames)
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	r := mustLoad(t)
	cat := mustCatalog(t)

	for _, w := range wantTypes {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			ty, err := r.ByName(w.name)
			if err != nil {
				t.Fatalf("ByName(%q): %v", w.name, err)
			}
			if ty.Name != w.name || ty.FullName != w.fullName || ty.Topic != w.topic || ty.Key != w.key {
				t.Errorf("Type = {Name %q FullName %q Topic %q Key %q}, want {%q %q %q %q}",
					ty.Name, ty.FullName, ty.Topic, ty.Key, w.name, w.fullName, w.topic, w.key)
			}
			if got := ty.Subject(); got != w.subject {
				t.Errorf("Subject() = %q, want %q", got, w.subject)
			}

			// The Type agrees with the catalog entry and its .avsc file.
			ce, ok := cat.Event(w.name)
			if !ok {
				t.Fatalf("catalog has no event %q", w.name)
			}
			if ty.Topic != ce.Topic || ty.Key != ce.Key {
				t.Errorf("Type topic/key = %s/%s, catalog says %s/%s", ty.Topic, ty.Key, ce.Topic, ce.Key)
			}
			avsc, err := os.ReadFile(filepath.Join(schemasDir, ce.Schema))
			if err != nil {
				t.Fatal(err)
			}
			fileSchema, err := avro.ParseBytesWithCache(avsc, "", &avro.SchemaCache{})
			if err != nil {
				t.Fatalf("parse %s: %v", ce.Schema, err)
			}
			if ty.Schema.Fingerprint() != fileSchema.Fingerprint() {
				t.Errorf("Type.Schema = %s\nschemas/%s = %s", ty.Schema, ce.Schema, fileSchema)
			}

			if got, err := r.ByFullName(w.fullName); err != nil || got != ty {
				t.Errorf("ByFullName(%q) = %v, %v; want the Type of ByName", w.fullName, got, err)
			}
			ev := ty.New()
			if ev == nil {
				t.Fatal("New() = nil")
			}
			if got, err := r.Of(ev); err != nil || got != ty {
				t.Errorf("Of(New()) = %v, %v; want the Type itself", got, err)
			}
			if other := ty.New(); reflect.ValueOf(other).Pointer() == reflect.ValueOf(ev).Pointer() {
				t.Error("New() returned the same pointer twice")
			}
			if got := event.NameOf(ev); got != w.name {
				t.Errorf("NameOf(New()) = %q, want %q", got, w.name)
			}
		})
	}
}

// alien is an Event whose Go type no registry knows.
type alien struct{}

var alienSchema, _ = avro.ParseWithCache(`{"type":"record","name":"Alien","namespace":"test.v1","fields":[]}`, "", &avro.SchemaCache{})

func (alien) Schema() avro.Schema { return alienSchema }

func TestUnknown(t *testing.T) {
	t.Parallel()
	r := mustLoad(t)

	tests := []struct {
		name   string
		lookup func() (*event.Type, error)
	}{
		{"ByName empty", func() (*event.Type, error) { return r.ByName("") }},
		{"ByName unknown", func() (*event.Type, error) { return r.ByName("OrderPlaced") }},
		{"ByName full name", func() (*event.Type, error) { return r.ByName("choreo.account.v1.AccountCreated") }},
		{"ByName wrong case", func() (*event.Type, error) { return r.ByName("accountCreated") }},
		{"ByFullName short name", func() (*event.Type, error) { return r.ByFullName("AccountCreated") }},
		{"ByFullName wrong namespace", func() (*event.Type, error) { return r.ByFullName("choreo.user.v1.AccountCreated") }},
		{"Of foreign type", func() (*event.Type, error) { return r.Of(alien{}) }},
		{"Of nil", func() (*event.Type, error) { return r.Of(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ty, err := tt.lookup()
			if !errors.Is(err, event.ErrUnknown) {
				t.Fatalf("err = %v, want one wrapping event.ErrUnknown", err)
			}
			if ty != nil {
				t.Errorf("Type = %+v, want nil with an error", ty)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	r := mustLoad(t)
	tests := []struct {
		name string
		ev   event.Event
		want string
	}{
		{"AccountCreated", &event.AccountCreated{AccountID: "acc-1", Username: "ada", Email: "ada@example.com"}, "acc-1"},
		{"AccountDeleted", &event.AccountDeleted{AccountID: "acc-2"}, "acc-2"},
		// The user events are keyed by account, not by user, so both facts of one account stay in order.
		{"UserCreated", &event.UserCreated{UserID: "usr-3", AccountID: "acc-3"}, "acc-3"},
		{"UserDeleted", &event.UserDeleted{UserID: "usr-4", AccountID: "acc-4"}, "acc-4"},
		{"empty key", &event.AccountCreated{Username: "nobody"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ty, err := r.Of(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := ty.KeyOf(tt.ev); got != tt.want {
				t.Errorf("KeyOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNameOf(t *testing.T) {
	t.Parallel()
	if got := event.NameOf(&event.UserDeleted{}); got != "UserDeleted" {
		t.Errorf("NameOf(*UserDeleted) = %q", got)
	}
	if got := event.NameOf(alien{}); got != "Alien" {
		t.Errorf("NameOf(alien) = %q, want the record name of its schema", got)
	}
}

// TestNewTypeSetRejectsDrift checks that the registry refuses a catalog that does not match
// the generated Go types, in either direction.
func TestNewTypeSetRejectsDrift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		edit        func(c *catalog.Catalog)
		wantUnknown bool // the error must wrap event.ErrUnknown
	}{
		{
			name: "Go type without catalog entry",
			edit: func(c *catalog.Catalog) {
				c.Events = slices.DeleteFunc(c.Events, func(e catalog.Event) bool { return e.Name == "AccountDeleted" })
			},
			wantUnknown: true,
		},
		{
			name: "catalog entry without Go type",
			edit: func(c *catalog.Catalog) {
				c.Events = append(c.Events, catalog.Event{Name: "OrderPlaced", Topic: "orders", Key: "orderId", Schema: "order_placed.avsc"})
			},
			wantUnknown: true,
		},
		{
			name: "key is not a field",
			edit: func(c *catalog.Catalog) { setKey(c, "UserCreated", "nope") },
		},
		{
			name: "key is not a string field",
			edit: func(c *catalog.Catalog) { setKey(c, "AccountCreated", "createdAt") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cat := mustCatalog(t)
			tt.edit(cat)
			r, err := event.NewTypeSet(cat)
			if err == nil {
				t.Fatalf("NewTypeSet = %v, nil; want an error", r)
			}
			if tt.wantUnknown && !errors.Is(err, event.ErrUnknown) {
				t.Errorf("err = %v, want one wrapping event.ErrUnknown", err)
			}
		})
	}

	t.Run("other key field", func(t *testing.T) {
		t.Parallel()
		cat := mustCatalog(t)
		setKey(cat, "UserCreated", "userId")
		r, err := event.NewTypeSet(cat)
		if err != nil {
			t.Fatal(err)
		}
		ty, err := r.ByName("UserCreated")
		if err != nil {
			t.Fatal(err)
		}
		if got := ty.KeyOf(&event.UserCreated{UserID: "usr", AccountID: "acc"}); got != "usr" {
			t.Errorf("KeyOf with key userId = %q, want %q", got, "usr")
		}
	})
}

func setKey(c *catalog.Catalog, name, key string) {
	for i := range c.Events {
		if c.Events[i].Name == name {
			c.Events[i].Key = key
		}
	}
}

// generateArgs returns the arguments of the //go:generate line of event.go.
func generateArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("event.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate "); ok {
			lines = append(lines, rest)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("event.go has %d //go:generate lines, want 1: %q", len(lines), lines)
	}
	args := strings.Fields(lines[0])
	if len(args) < 3 || args[0] != "go" || args[1] != "tool" || args[2] != "avrogen" {
		t.Fatalf("//go:generate %s: want it to run go tool avrogen", lines[0])
	}
	return args
}

func TestGeneratedCodeIsUpToDate(t *testing.T) {
	t.Parallel()
	args := generateArgs(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("cannot check events.gen.go: the go command is not found: %v", err)
	}

	out := filepath.Join(t.TempDir(), "events.gen.go")
	cmdArgs := slices.Clone(args[1:])
	i := slices.Index(cmdArgs, "-o")
	if i < 0 || i+1 >= len(cmdArgs) {
		t.Fatalf("//go:generate %s: no -o <file>", strings.Join(args, " "))
	}
	if cmdArgs[i+1] != "events.gen.go" {
		t.Fatalf("//go:generate writes %s, want events.gen.go", cmdArgs[i+1])
	}
	cmdArgs[i+1] = out

	cmd := exec.Command(goBin, cmdArgs...)
	cmd.Dir = "." // the package directory, as for go generate
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmdArgs, " "), err, stderr.String())
	}

	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("events.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("events.gen.go is stale: run go generate ./pkg/event")
	}
}

func TestGenerateCoversEverySchema(t *testing.T) {
	t.Parallel()
	var inLine []string
	for _, a := range generateArgs(t) {
		if strings.HasSuffix(a, ".avsc") {
			inLine = append(inLine, filepath.Clean(a))
		}
	}
	onDisk, err := filepath.Glob(filepath.Join(schemasDir, "*.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) == 0 {
		t.Fatalf("no .avsc files in %s", schemasDir)
	}
	for _, f := range onDisk {
		if !slices.Contains(inLine, filepath.Clean(f)) {
			t.Errorf("%s is not in the //go:generate line of event.go: add it and run go generate ./pkg/event", f)
		}
	}
	for _, f := range inLine {
		if !slices.Contains(onDisk, f) {
			t.Errorf("//go:generate names %s, which is not a schema in %s", f, schemasDir)
		}
	}

	// Every catalog schema is one of them, so every catalog event gets a Go type.
	for _, e := range mustCatalog(t).Events {
		if p := filepath.Join(schemasDir, e.Schema); !slices.Contains(inLine, p) {
			t.Errorf("catalog event %s has schema %s, which //go:generate does not generate", e.Name, p)
		}
	}
}

// TestGeneratedRoundTrip checks the generated encoders against their schemas: what Marshal
// writes, Unmarshal reads back, at the millisecond precision of timestamp-millis.
func TestGeneratedRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.FixedZone("CET", 3600))
	in := event.UserCreated{UserID: "usr-1", AccountID: "acc-1", Username: "ada", Email: "ada@example.com", CreatedAt: at}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out event.UserCreated
	if err := out.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	want := in
	want.CreatedAt = at.Truncate(time.Millisecond).UTC()
	if out != want {
		t.Errorf("round trip = %+v, want %+v", out, want)
	}
}
