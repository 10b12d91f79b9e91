package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// FileMailer is the embedded default: it writes each message to
// <dir>/<sanitized Message-ID>.eml, so development and tests need no mail
// server and the output opens in any mail client.
//
// Writes are atomic (a temporary file in the same directory, synced, then
// renamed), so a crash never leaves a half-written .eml, and a second Send of
// the same ID replaces the file with identical content. Temporary files start
// with "." and end in ".tmp"; one may survive a crash and is safe to delete.
// The directory itself is not synced after the rename, so a power loss right
// after Send may still lose the message: this mailer is not meant for
// production delivery.
type FileMailer struct {
	dir string
}

var _ Preparer = (*FileMailer)(nil)

// NewFileMailer creates dir (mode 0o755) if it does not exist yet, so the
// mailer works on a fresh checkout without setup.
func NewFileMailer(dir string) (*FileMailer, error) {
	if dir == "" {
		return nil, errors.New("mail: file mailer: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mail: file mailer: %w", err)
	}
	return &FileMailer{dir: filepath.Clean(dir)}, nil
}

// Path tells tests and tools where the message with this ID is (or would be)
// stored. It is always directly inside the mailer's directory, whatever the
// ID contains.
func (f *FileMailer) Path(id string) string {
	return filepath.Join(f.dir, fileName(id)+".eml")
}

// Send writes m atomically to [FileMailer.Path](m.ID). It is safe for
// concurrent use; concurrent Sends of the same ID leave one complete file.
func (f *FileMailer) Send(ctx context.Context, m Message) error {
	p, err := f.Prepare(ctx, m)
	if err != nil {
		return err
	}
	return p.Commit(ctx)
}

// Prepare writes m to a temporary file beside [FileMailer.Path](m.ID); the
// returned Prepared's Commit renames it into place (the delivery, atomic) and
// Abort removes it. A temporary file left by a crash is never delivered.
func (f *FileMailer) Prepare(ctx context.Context, m Message) (Prepared, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mail: file send %s: %w", m.ID, err)
	}
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	path := f.Path(m.ID)
	tmp, err := writeTemp(path, data)
	if err != nil {
		return nil, fmt.Errorf("mail: file send %s: %w", m.ID, err)
	}
	return &filePrepared{id: m.ID, tmp: tmp, path: path}, nil
}

// filePrepared is a message written to its temporary file.
type filePrepared struct {
	id, tmp, path string
}

// Commit renames the temporary file into place. It ignores ctx: a rename is
// not worth interrupting, and once begun it is the delivery.
func (p *filePrepared) Commit(context.Context) error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		_ = os.Remove(p.tmp) // nothing delivered: the temporary file is garbage
		return fmt.Errorf("mail: file send %s: %w", p.id, err)
	}
	return nil
}

// Abort removes the temporary file.
func (p *filePrepared) Abort() { _ = os.Remove(p.tmp) }

// writeTemp writes data to a new temporary file beside path and returns its
// name, so that a rename delivers it whole: a reader or a crash never sees half
// a message. The file is not fsynced: this is the development mailer, and a
// process crash loses nothing written; only an operating-system crash could
// lose the latest emails.
func writeTemp(path string, data []byte) (name string, err error) {
	dir, base := filepath.Split(path)
	name = filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", base, rand.Uint64()))
	tmp, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			// The write already failed; the temp file is garbage either way.
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return name, nil
}

// maxFileName keeps names well below the common 255-byte limit, leaving room
// for ".eml".
const maxFileName = 200

// fileName maps a Message-ID to a single path element injectively: letters,
// digits and "@._+-=" are kept, everything else (path separators, "%", a
// leading dot) is percent-encoded, so distinct IDs never share a file and no
// ID can name "..", a hidden file or another directory. IDs whose encoding is
// too long are replaced by their SHA-256, which cannot clash with a kept ID
// because it has no "@".
func fileName(id string) string {
	var b strings.Builder
	for i := range len(id) {
		c := id[i]
		if isFileSafe(c) && (i > 0 || c != '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if b.Len() > maxFileName {
		sum := sha256.Sum256([]byte(id))
		return "sha256-" + hex.EncodeToString(sum[:])
	}
	return b.String()
}

func isFileSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("@._+-=", c) >= 0
}
