// Package pkg_test holds the rule every package under pkg/ keeps: pkg/ is the platform other
// teams build their services on, so it never depends on the applications built on it.
package pkg_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/choreo-dev/choreo"

// TestPlatformImportsNoApplication: no file under pkg/, tests included, imports services/ or
// cmd/. Direct imports suffice: whatever pkg/ imports is pkg/ itself or outside the module, and
// neither can reach back into the applications.
func TestPlatformImportsNoApplication(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join("..", "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	forbidden := []string{module + "/services", module + "/cmd"}
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			for _, bad := range forbidden {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("pkg/%s imports %s: the platform must not depend on an application", filepath.ToSlash(path), p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read %d Go files under pkg/, expected the whole platform", files)
	}
}
