package schemas_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/choreo-dev/choreo/pkg/catalog"
	"github.com/choreo-dev/choreo/pkg/evolution"
)

// TestSchemaEvolutionGate is `choreo schema check` on this directory: every schema keeps its
// event's compatibility level towards every version in history/, and every current schema is
// the last version of its history.
func TestSchemaEvolutionGate(t *testing.T) {
	fsys := os.DirFS(".")
	cat, err := catalog.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evolution.Check(fsys, cat)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryIsAppendOnly: no version in history/ that main (or origin/main) has may be
// modified, renamed or deleted, in commits or in the working tree; only new versions may be
// added. It needs git and a checkout that has main; it skips otherwise.
func TestHistoryIsAppendOnly(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if err := exec.Command("git", "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	checked := 0
	for _, base := range []string{"origin/main", "main", "HEAD"} {
		if exec.Command("git", "rev-parse", "--verify", "--quiet", base+"^{commit}").Run() != nil {
			continue
		}
		out, err := exec.Command("git", "diff", "--name-status", "--no-renames", "--diff-filter=DM", base, "--", "history").CombinedOutput()
		if err != nil {
			t.Fatalf("git diff %s: %v: %s", base, err, out)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("schemas/history is append-only, but versions that %s has were changed or deleted "+
				"(add a new version instead):\n%s", base, s)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no commit to compare with")
	}
}
