package mail_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

func TestFileMailerConformance(t *testing.T) {
	t.Parallel()
	testMailer(t, func(t *testing.T) mailerHarness {
		dir := t.TempDir()
		fm, err := mail.NewFileMailer(dir)
		if err != nil {
			t.Fatalf("NewFileMailer: %v", err)
		}
		return mailerHarness{mailer: fm, delivered: func(t *testing.T) [][]byte {
			var out [][]byte
			for _, name := range dirNames(t, dir) {
				if !strings.HasSuffix(name, ".eml") {
					continue // a temporary file: not delivered
				}
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		}}
	})
}

func TestFileMailerSend(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "outbox")
	fm, err := mail.NewFileMailer(dir)
	if err != nil {
		t.Fatalf("NewFileMailer: %v", err)
	}
	m := welcomeMessage()
	path := filepath.Join(dir, m.ID+".eml")
	if got := fm.Path(m.ID); got != path {
		t.Errorf("Path(%q) = %q, want %q", m.ID, got, path)
	}

	if err := fm.Send(t.Context(), m); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	assertWelcome(t, m, first)

	if err := fm.Send(t.Context(), m); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	second, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("second Send changed the file:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != m.ID+".eml" {
		t.Errorf("directory holds %q, want only %q", names, m.ID+".eml")
	}
}

func TestFileMailerSameIDConcurrently(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fm, err := mail.NewFileMailer(dir)
	if err != nil {
		t.Fatalf("NewFileMailer: %v", err)
	}
	m := welcomeMessage()
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = fm.Send(context.Background(), m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("directory holds %q, want one file", names)
	}
	got, err := os.ReadFile(fm.Path(m.ID))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustBytes(t, m); !bytes.Equal(got, want) {
		t.Errorf("file content differs from Bytes()")
	}
}

func TestFileMailerPathStaysInDir(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "outbox")
	fm, err := mail.NewFileMailer(dir)
	if err != nil {
		t.Fatalf("NewFileMailer: %v", err)
	}
	// Every ID is a valid Message-ID; none may leave dir, become hidden or
	// share a file with another.
	ids := []string{
		"../../etc/passwd@x",
		"..@x",
		"../@x",
		".hidden@x",
		"a/b@c",
		"a_b@c",
		"a%2Fb@c",
		`a\b@c`,
		"a:b@c",
		"a*?|\"b@c",
		"sha256-abc@c",
		strings.Repeat("long", 100) + "@choreo.local",
		strings.Repeat("long", 100) + "@choreo.example",
	}
	seen := make(map[string]string)
	for _, id := range ids {
		t.Run(id[:min(len(id), 24)], func(t *testing.T) {
			path := fm.Path(id)
			if filepath.Dir(path) != dir {
				t.Errorf("Path(%q) = %q is not directly in %q", id, path, dir)
			}
			base := filepath.Base(path)
			if strings.HasPrefix(base, ".") || !strings.HasSuffix(base, ".eml") || len(base) > 255 {
				t.Errorf("Path(%q) has base name %q", id, base)
			}
			if other, ok := seen[base]; ok {
				t.Errorf("IDs %q and %q share file %q", id, other, base)
			}
			seen[base] = id

			m := welcomeMessage()
			m.ID = id
			if err := fm.Send(t.Context(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("Send did not write Path: %v", err)
			}
		})
	}
	if names := dirNames(t, dir); len(names) != len(ids) {
		t.Errorf("outbox holds %d files %q, want %d", len(names), names, len(ids))
	}
	if names := dirNames(t, parent); len(names) != 1 || names[0] != "outbox" {
		t.Errorf("parent holds %q, want only outbox", names)
	}
}

func TestFileMailerErrors(t *testing.T) {
	t.Parallel()
	t.Run("empty dir", func(t *testing.T) {
		t.Parallel()
		if _, err := mail.NewFileMailer(""); err == nil {
			t.Error("NewFileMailer(\"\") succeeded")
		}
	})
	t.Run("dir is a file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := mail.NewFileMailer(file); err == nil {
			t.Error("NewFileMailer on a regular file succeeded")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		fm, err := mail.NewFileMailer(dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := fm.Send(ctx, welcomeMessage()); !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("directory holds %q, want nothing", names)
		}
	})
}

// dirNames lists dir, leftover temporary files included, so counts catch them.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
