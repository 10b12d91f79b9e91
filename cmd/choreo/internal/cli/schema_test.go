package cli_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copySchemas copies the repository's schemas directory (catalog, .avsc files, history) to a
// temporary directory that a test may edit.
func copySchemas(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "..", "..", "schemas")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if ext := filepath.Ext(p); ext != ".avsc" && ext != ".yaml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaCheck is the schema-evolution gate as a user meets it: the schemas as committed
// pass; an incompatible edit fails naming the event, the field and the rule; a compatible edit
// must be recorded in the history, and then passes.
func TestSchemaCheck(t *testing.T) {
	t.Parallel()
	t.Run("as committed", func(t *testing.T) {
		t.Parallel()
		r := run(t, "schema", "check", "-dir", copySchemas(t))
		if r.code != 0 || !strings.Contains(r.stdout.String(), "schemas ok") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout.String(), r.stderr.String())
		}
	})
	t.Run("incompatible edit", func(t *testing.T) {
		t.Parallel()
		dir := copySchemas(t)
		editFile(t, filepath.Join(dir, "account_created.avsc"), `"type": "string", "default": "en"`, `"type": "string"`)
		r := run(t, "schema", "check", "-dir", dir)
		want := "AccountCreated: field locale breaks BACKWARD_TRANSITIVE (READER_FIELD_MISSING_DEFAULT_VALUE): " +
			"account_created.avsc cannot read events written with history/AccountCreated/v1.avsc"
		if r.code != 1 || !strings.Contains(r.stderr.String(), want) {
			t.Fatalf("exit %d, stderr %s; want 1 and %q", r.code, r.stderr.String(), want)
		}
		// -record refuses to record a schema that fails.
		if r := run(t, "schema", "check", "-record", "-dir", dir); r.code != 1 {
			t.Fatalf("-record of an incompatible schema: exit %d", r.code)
		}
		if _, err := os.Stat(filepath.Join(dir, "history", "AccountCreated", "v3.avsc")); err == nil {
			t.Error("an incompatible schema was recorded")
		}
	})
	t.Run("compatible edit", func(t *testing.T) {
		t.Parallel()
		dir := copySchemas(t)
		editFile(t, filepath.Join(dir, "user_deleted.avsc"), `"fields": [`, `"fields": [
    {"name": "reason", "type": ["null", "string"], "default": null},`)
		r := run(t, "schema", "check", "-dir", dir)
		if r.code != 1 || !strings.Contains(r.stderr.String(), "record it as history/UserDeleted/v2.avsc") {
			t.Fatalf("unrecorded: exit %d, stderr %s", r.code, r.stderr.String())
		}
		if r := run(t, "schema", "check", "-record", "-dir", dir); r.code != 0 || !strings.Contains(r.stdout.String(), "recorded user_deleted.avsc as history/UserDeleted/v2.avsc") {
			t.Fatalf("-record: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout.String(), r.stderr.String())
		}
		if r := run(t, "schema", "check", "-dir", dir); r.code != 0 {
			t.Fatalf("after -record: exit %d, stderr %s", r.code, r.stderr.String())
		}
	})
	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		if r := run(t, "schema"); r.code != 2 {
			t.Errorf("choreo schema: exit %d, want 2", r.code)
		}
	})
}
