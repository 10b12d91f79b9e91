package mail

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one email.
type Message struct {
	// ID is the idempotency key: the RFC 5322 Message-ID without angle
	// brackets (e.g. "3f2a...@choreo.local"). The caller derives it from the
	// event ID, so a resend of the same message carries the same Message-ID.
	ID string
	// From is one RFC 5322 address, e.g. "choreo <welcome@choreo.local>".
	From string
	// To is one RFC 5322 address; it is also the only SMTP recipient.
	To string
	// Subject is UTF-8 text; it is RFC 2047 encoded when it is not ASCII.
	Subject string
	// Text is the plain-text body, UTF-8.
	Text string
	// Date is required rather than defaulted to now, so that encoding the
	// same message twice gives the same bytes. It is written in UTC.
	Date time.Time
	// Headers are extra header fields, e.g. X-Choreo-Event-Id and
	// X-Choreo-Correlation-Id. They cannot replace the fields Bytes writes
	// itself (Message-ID, Date, From, To, Subject, MIME-Version,
	// Content-Type, Content-Transfer-Encoding), compared case-insensitively.
	Headers map[string]string
}

// Validate catches, before any delivery attempt, what would make a message
// undeliverable or let a field smuggle in extra headers. Every error wraps
// [ErrInvalidMessage].
func (m Message) Validate() error {
	_, _, err := m.addresses()
	return err
}

// addresses validates m and returns its parsed From and To, which Bytes and
// the SMTP envelope need.
func (m Message) addresses() (from, to *mail.Address, err error) {
	if err := validateID(m.ID); err != nil {
		return nil, nil, err
	}
	if from, err = parseAddress("From", m.From); err != nil {
		return nil, nil, err
	}
	if to, err = parseAddress("To", m.To); err != nil {
		return nil, nil, err
	}
	if m.Subject == "" {
		return nil, nil, invalid("empty Subject")
	}
	if err := validateValue("Subject", m.Subject); err != nil {
		return nil, nil, err
	}
	if !utf8.ValidString(m.Text) {
		return nil, nil, invalid("Text is not valid UTF-8")
	}
	if m.Date.IsZero() {
		return nil, nil, invalid("zero Date")
	}
	seen := make(map[string]bool, len(m.Headers))
	for name, value := range m.Headers {
		if err := validateName(name); err != nil {
			return nil, nil, err
		}
		folded := strings.ToLower(name)
		if seen[folded] {
			return nil, nil, invalid("header %q given twice with different case", name)
		}
		seen[folded] = true
		if err := validateValue(name, value); err != nil {
			return nil, nil, err
		}
	}
	return from, to, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
}

// validateID accepts what fits between the angle brackets of a Message-ID:
// printable ASCII without spaces or brackets, with an "@" separating two
// non-empty halves.
func validateID(id string) error {
	if id == "" {
		return invalid("empty ID")
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return invalid("ID %q: only printable ASCII without spaces or angle brackets is allowed", id)
		}
	}
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 {
		return invalid("ID %q: want left@right", id)
	}
	return nil
}

func parseAddress(field, value string) (*mail.Address, error) {
	if value == "" {
		return nil, invalid("empty %s", field)
	}
	// net/mail tolerates CR/LF inside some constructs, so check them first.
	if err := validateValue(field, value); err != nil {
		return nil, err
	}
	addr, err := mail.ParseAddress(value)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %w", ErrInvalidMessage, field, value, err)
	}
	return addr, nil
}

// validateName accepts an RFC 5322 field-name that Bytes does not write
// itself.
func validateName(name string) error {
	if name == "" {
		return invalid("empty header name")
	}
	for i := range len(name) {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return invalid("header name %q: only printable ASCII without ':' is allowed", name)
		}
	}
	// Bytes writes these itself; repeating them would make duplicates that
	// readers resolve differently.
	switch strings.ToLower(name) {
	case "message-id", "date", "from", "to", "subject",
		"mime-version", "content-type", "content-transfer-encoding":
		return invalid("header %q is written by Bytes and cannot be overridden", name)
	}
	return nil
}

// validateValue rejects control characters, above all CR and LF, which would
// otherwise end the header field and start one chosen by the caller.
func validateValue(field, value string) error {
	if !utf8.ValidString(value) {
		return invalid("%s is not valid UTF-8", field)
	}
	for _, r := range value {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return invalid("%s contains control character %U", field, r)
		}
	}
	return nil
}

// Bytes encodes m as an RFC 5322 message with CRLF line endings. The output
// depends only on m, so a resend produces identical bytes: fixed header order,
// extra headers sorted by name, Date in UTC.
//
// The body is quoted-printable and always ends with a line break; LF and CR
// line endings in Text become CRLF.
func (m Message) Bytes() ([]byte, error) {
	data, _, _, err := m.encode()
	return data, err
}

// encode is Bytes, also returning the parsed addresses the SMTP envelope
// needs.
func (m Message) encode() (data []byte, from, to *mail.Address, err error) {
	from, to, err = m.addresses()
	if err != nil {
		return nil, nil, nil, err
	}
	var b bytes.Buffer
	writeHeader(&b, "Message-ID", "<"+m.ID+">")
	writeHeader(&b, "Date", m.Date.UTC().Format(time.RFC1123Z))
	writeHeader(&b, "From", from.String())
	writeHeader(&b, "To", to.String())
	writeHeader(&b, "Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
	writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		writeHeader(&b, name, mime.QEncoding.Encode("utf-8", m.Headers[name]))
	}
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Text)); err != nil {
		return nil, nil, nil, fmt.Errorf("mail: encode body of %s: %w", m.ID, err)
	}
	if err := qp.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("mail: encode body of %s: %w", m.ID, err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), from, to, nil
}

// maxLineLen is RFC 5322's recommended line length, excluding CRLF.
const maxLineLen = 78

// writeHeader writes "name: value" followed by CRLF, folded at single spaces
// so lines stay near maxLineLen (long Q-encoded subjects are a series of
// space-separated encoded-words). Folding only where one space stands alone
// keeps the value intact for readers such as net/textproto that unfold by
// joining lines with one space.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ": " + value
	first := len(name) + 2 // never fold between the colon and the value
	start := 0             // start of the current output line within line
	for len(line)-start > maxLineLen {
		cut := -1
		for i := max(start+1, first); i < len(line)-1; i++ {
			if line[i] != ' ' || isWSP(line[i-1]) || isWSP(line[i+1]) {
				continue
			}
			if i-start > maxLineLen && cut >= 0 {
				break // keep the last fold point within the limit
			}
			cut = i
			if i-start > maxLineLen {
				break // no fold point within the limit: take the first one after
			}
		}
		if cut < 0 {
			break
		}
		b.WriteString(line[start:cut])
		b.WriteString("\r\n")
		start = cut // the continuation line starts with the space
	}
	b.WriteString(line[start:])
	b.WriteString("\r\n")
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }
