package catalog_test

import (
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/schemas"
)

var mdLink = regexp.MustCompile(`\]\(([^)#]+)\)`)

// TestSiteLinks checks that the docs site has an index and one page per service and per chain,
// that every page links back to the index, and that every link resolves to a page.
func TestSiteLinks(t *testing.T) {
	t.Parallel()
	real, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	large, err := catalog.Load(os.DirFS(largeDir))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*catalog.Catalog{"real": real, "large": large} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pages := c.Site()
			if want := 1 + len(c.Services) + len(c.Chains); len(pages) != want {
				t.Fatalf("Site() = %d pages, want %d (index, services, chains)", len(pages), want)
			}
			byPath := map[string][]byte{}
			for _, p := range pages {
				byPath[p.Path] = p.Body
			}
			if _, ok := byPath["index.md"]; !ok {
				t.Fatal("no index.md")
			}
			linked := map[string]bool{}
			for _, p := range pages {
				links := mdLink.FindAllSubmatch(p.Body, -1)
				if p.Path != "index.md" && !bytes.Contains(p.Body, []byte("](../index.md)")) {
					t.Errorf("%s does not link to the index", p.Path)
				}
				for _, l := range links {
					target := path.Clean(path.Join(path.Dir(p.Path), string(l[1])))
					if _, ok := byPath[target]; !ok {
						t.Errorf("%s links to %s, which is not a page", p.Path, l[1])
					}
					linked[target] = true
				}
			}
			for _, s := range c.Services {
				if !linked["services/"+strings.ToLower(s.Name)+".md"] {
					t.Errorf("no page links to service %s", s.Name)
				}
			}
			for _, p := range pages {
				if !linked[p.Path] {
					t.Errorf("no page links to %s", p.Path)
				}
			}
		})
	}
}

func TestSiteRealCatalogPages(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(schemas.FS)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]string{
		"index.md": {"| [Account registration](chains/account-registration.md) | `POST /accounts` | 3 |",
			"| AccountCreated | `accounts` | [account-service](services/account-service.md) | [user-service](services/user-service.md) | " +
				"[Account registration](chains/account-registration.md), [Account registration rejected](chains/account-registration-rejected.md) |"},
		"services/user-service.md": {"| AccountCreated | [account-service](../services/account-service.md) | `account_created.avsc` |",
			"| UserCreated | `users` | [notification-service](../services/notification-service.md) | `user_created.avsc` |"},
		"chains/account-registration.md": {"1. [account-service](../services/account-service.md) emits AccountCreated " +
			"(also in [Account registration rejected](../chains/account-registration-rejected.md))",
			"3. [notification-service](../services/notification-service.md) consumes UserCreated and causes the effect: welcome email", "```mermaid"},
	} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s lacks %q:\n%s", file, w, data)
			}
		}
	}
}

// The targets of issue 13: check and docs of a catalog with 300 events well under a second.
// Each iteration reads the catalog and its schemas from disk, as the CLI does.

func BenchmarkLargeCatalogCheck(b *testing.B) {
	fsys := os.DirFS(largeDir)
	for b.Loop() {
		c, err := catalog.Load(fsys)
		if err != nil {
			b.Fatal(err)
		}
		if f := c.Analyze(); len(f) != 0 {
			b.Fatal(f)
		}
	}
}

func BenchmarkLargeCatalogDocs(b *testing.B) {
	fsys := os.DirFS(largeDir)
	b.Run("markdown", func(b *testing.B) {
		for b.Loop() {
			c, err := catalog.Load(fsys)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.WriteMarkdown(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dir", func(b *testing.B) {
		dir := b.TempDir()
		for b.Loop() {
			c, err := catalog.Load(fsys)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.WriteDir(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLargeCatalogImpact(b *testing.B) {
	c, err := catalog.Load(os.DirFS(largeDir))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, s := range c.Services {
			if _, err := c.Impact(s.Name); err != nil {
				b.Fatal(err)
			}
		}
	}
}
