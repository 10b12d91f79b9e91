package sentlog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, path string) *Log {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// folded returns the entries a Fold of l hands over, and folds them.
func folded(t *testing.T, l *Log) []Entry {
	t.Helper()
	var got []Entry
	if err := l.Fold(func(es []Entry) error { got = slices.Clone(es); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestEntriesSurviveAReopenUntilFolded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc", "sent.log")
	at := time.UnixMilli(1_700_000_000_123)
	l := open(t, path)
	for _, id := range []string{"<a@x>", "<b@x>", "<c@x>"} {
		if err := l.Append(id, at); err != nil {
			t.Fatal(err)
		}
	}
	_ = l.Close() // as a process that dies before folding

	l = open(t, path)
	if l.Len() != 3 {
		t.Fatalf("Len after reopen = %d, want 3", l.Len())
	}
	// A failed fold (the database is down) keeps the entries.
	boom := errors.New("database down")
	if err := l.Fold(func([]Entry) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Fold = %v, want %v", err, boom)
	}
	want := []Entry{{"<a@x>", at}, {"<b@x>", at}, {"<c@x>", at}}
	got := folded(t, l)
	if !slices.EqualFunc(got, want, func(a, b Entry) bool { return a.MessageID == b.MessageID && a.At.Equal(b.At) }) {
		t.Fatalf("folded %v, want %v", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("file after fold: %v, %v; want empty", fi, err)
	}
	if err := l.Append("<d@x>", at); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if got := folded(t, open(t, path)); len(got) != 1 || got[0].MessageID != "<d@x>" {
		t.Fatalf("after fold and one append, reopen folds %v, want only <d@x>", got)
	}
}

func TestOpenDropsATornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sent.log")
	if err := os.WriteFile(path, []byte("1000 <a@x>\n2000 <b@"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := open(t, path)
	if err := l.Append("<c@x>", time.UnixMilli(3000)); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1000 <a@x>\n3000 <c@x>\n"; string(b) != want {
		t.Fatalf("file = %q, want %q", b, want)
	}
}

func TestOpenRefusesAMalformedLine(t *testing.T) {
	for name, content := range map[string]string{
		"no time":   "<a@x>\n1000 <b@x>\n",
		"bad time":  "x1 <a@x>\n",
		"no ID":     "1000 \n",
		"space":     "1000 <a@x> extra\n",
		"empty row": "\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sent.log")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil || !strings.Contains(err.Error(), "line 1") {
				t.Fatalf("Open = %v, want an error naming line 1", err)
			}
		})
	}
}

func TestAppendRefusesIDsThatDoNotFitALine(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "sent.log"))
	for _, id := range []string{"", "<a b@x>", "<a@x>\n1 <b@x>", "<é@x>"} {
		if err := l.Append(id, time.Now()); err == nil {
			t.Errorf("Append(%q) = nil, want an error", id)
		}
	}
	if l.Len() != 0 {
		t.Errorf("Len = %d after refused appends, want 0", l.Len())
	}
}

func TestAFailedAppendBreaksTheLogUntilAFold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sent.log")
	l := open(t, path)
	good := l.f
	ro, err := os.Open(path) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	l.f = ro
	if err := l.Append("<a@x>", time.Now()); err == nil {
		t.Fatal("Append on a file that cannot be written = nil, want an error")
	}
	l.f = good
	_ = ro.Close()
	if err := l.Append("<b@x>", time.Now()); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after a failed one = %v, want ErrBroken", err)
	}
	if got := folded(t, l); len(got) != 0 {
		t.Fatalf("folded %v, want nothing (no append succeeded)", got)
	}
	if err := l.Append("<c@x>", time.Now()); err != nil {
		t.Fatalf("Append after the fold = %v, want nil", err)
	}
}

func TestAFoldThatCannotEmptyTheFileDropsTheEntriesAndBreaksTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sent.log")
	l := open(t, path)
	if err := l.Append("<a@x>", time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = l.f.Close() // the file can no longer be emptied
	if got := folded(t, l); len(got) != 1 {
		t.Fatalf("folded %v, want the one entry", got)
	}
	if l.Len() != 0 {
		t.Errorf("Len = %d after the fold, want 0: the entries are recorded", l.Len())
	}
	if err := l.Append("<b@x>", time.Now()); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after a fold that could not empty the file = %v, want ErrBroken", err)
	}
	// The next process folds the entry again, which record must take as a no-op.
	if got := folded(t, open(t, path)); len(got) != 1 || got[0].MessageID != "<a@x>" {
		t.Fatalf("reopen folds %v, want <a@x> again", got)
	}
}
