// Package sentlog is the Notification Service's log of the emails a mail server accepted that
// the database does not yet record as sent: one line appended to a file per email, folded into
// the database many at a time.
//
// The sender commits one email at a time (or a few, with a window) and records it before
// committing the next, so a crash leaves at most one email (or the window) accepted and
// unrecorded. Recording each in the database made every
// email wait for SQLite's one connection, which the service's handlers share: at a steady
// 1,000 emails a second the sender spent most of its time waiting for that connection. An
// append to a file of the sender's own is a write system call, and like a SQLite commit in WAL
// mode with synchronous=NORMAL it survives the death of the process (not of the machine).
package sentlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one email the mail server accepted.
type Entry struct {
	MessageID string
	At        time.Time
}

// Log is an append-only file of accepted emails. It is safe for concurrent use.
type Log struct {
	path string

	mu      sync.Mutex
	f       *os.File
	entries []Entry // in the file, not yet folded
	broken  error   // set by a failed append: the file may end in part of a line
	buf     []byte
}

// ErrBroken is returned by Append after an append failed, until the next Fold empties the file.
var ErrBroken = errors.New("sent log: a previous append failed")

// Open opens the log at path, creating it (and its directory) if need be. Entries left by a
// previous process, which the database may not record yet, are kept for the next Fold. A last
// line without its end, which only a machine's crash mid-write leaves, is dropped: its email was
// accepted and is not recorded, so it is the one sent again.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sent log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sent log: %w", err)
	}
	entries, end, err := read(f, path)
	if err == nil {
		// Drop a torn last line, so the next append starts a line of its own.
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sent log: %w", err)
	}
	return &Log{path: path, f: f, entries: entries}, nil
}

// read returns the entries of f and the offset just past the last complete line.
func read(f *os.File, path string) (entries []Entry, end int64, err error) {
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return entries, end, nil // line, if any, is a torn last line
		}
		if err != nil {
			return nil, 0, err
		}
		e, ok := parse(line[:len(line)-1])
		if !ok {
			return nil, 0, fmt.Errorf("%s line %d is not \"<unix milliseconds> <message ID>\": %q; "+
				"delete the file to go on (the emails it lists are then sent again)", path, n, line)
		}
		entries = append(entries, e)
		end += int64(len(line))
	}
}

func parse(line []byte) (Entry, bool) {
	ms, id, ok := strings.Cut(string(line), " ")
	if !ok || !validID(id) {
		return Entry{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return Entry{}, false
	}
	return Entry{MessageID: id, At: time.UnixMilli(n)}, true
}

// validID reports whether id fits on a line of the log. Message IDs are printable ASCII without
// spaces (RFC 5322), so every email the sender makes does.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Append records that the mail server accepted email id at at. When it returns, the record
// survives the process's death. An error leaves the email to be recorded some other way.
func (l *Log) Append(id string, at time.Time) error {
	if !validID(id) {
		return fmt.Errorf("sent log: message ID %q cannot be logged", id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	l.buf = strconv.AppendInt(l.buf[:0], at.UnixMilli(), 10)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, id...)
	l.buf = append(l.buf, '\n')
	if _, err := l.f.Write(l.buf); err != nil {
		l.broken = err
		return fmt.Errorf("sent log: %w", err)
	}
	l.entries = append(l.entries, Entry{MessageID: id, At: at})
	return nil
}

// Len returns how many entries wait for a Fold.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Fold hands the entries to record, which writes them to the database, and once it returns nil
// empties the log. Its error is record's: the entries stay for the next Fold. A crash between
// the two leaves the entries to be folded again, so record must be idempotent. If the file
// cannot be emptied, the entries are still dropped (they are recorded) and the log is broken
// until a Fold empties it: appends fail, and what they were for is recorded some other way.
// Appends wait for the fold to end.
func (l *Log) Fold(record func([]Entry) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 && l.broken == nil {
		return nil
	}
	if len(l.entries) > 0 {
		if err := record(l.entries); err != nil {
			return err
		}
		clear(l.entries)
		l.entries = l.entries[:0]
	}
	err := l.f.Truncate(0)
	if err == nil {
		_, err = l.f.Seek(0, 0)
	}
	if err != nil {
		l.broken = fmt.Errorf("empty after folding: %w", err)
		return nil
	}
	l.broken = nil
	return nil
}

// Close closes the log's file. Entries not folded stay in it for the next Open.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
