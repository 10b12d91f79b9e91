// Package mail delivers the Notification Service's emails.
//
// A [Message] carries its own idempotency key (the RFC 5322 Message-ID), and
// [Message.Bytes] is deterministic, so delivering the same event twice yields
// the same bytes. Two [Mailer] implementations exist: [FileMailer] writes .eml
// files so development and tests need no mail server, and [SMTPMailer] talks
// to a real SMTP server (for example Mailpit).
//
// Errors are classified for the consumer's retry-or-park decision:
// [ErrInvalidMessage] and SMTP 5xx replies are permanent, while network
// failures, timeouts and SMTP 4xx replies are reported by [IsTemporary].
package mail

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
)

// Mailer delivers messages.
//
// Send must be safe for concurrent use. Sending the same Message.ID twice must
// not create two distinct messages where the backend allows it; where it does
// not (SMTP), the repeated Message-ID lets the receiving side recognise the
// duplicate. A nil error means the backend accepted the message. A non-nil
// error wraps [ErrInvalidMessage] when the message itself is at fault; use
// [IsTemporary] to decide whether a retry can succeed.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Preparer is a Mailer that sends in two steps, so that a caller can do the
// slow part of many sends at once and still let them pass the point of no
// return one at a time, recording each outcome before the next (as package
// sender does: a crash then leaves at most one message delivered and
// unrecorded).
//
// Prepare does all of a send but the delivery: the backend holds the message
// without having accepted it, and discards it when the [Prepared] is aborted
// or the process dies. Prepare must be safe for concurrent use; its errors
// are Send's. A nil error hands the caller a Prepared, on which it must call
// exactly one of Commit and Abort.
type Preparer interface {
	Mailer
	Prepare(ctx context.Context, m Message) (Prepared, error)
}

// Prepared is a message a [Preparer] holds ready for delivery.
type Prepared interface {
	// Commit delivers the message: nil means the backend accepted it. Once
	// Commit has begun, a cancelled ctx can leave the outcome unknown (the
	// backend may have accepted the message), so callers that record outcomes
	// pass a context that outlives their own stop. Errors are Send's.
	Commit(ctx context.Context) error
	// Abort abandons the message: the backend discards it.
	Abort()
}

// ErrInvalidMessage marks a message that can never be delivered as it stands,
// so the caller should park it instead of retrying.
var ErrInvalidMessage = errors.New("mail: invalid message")

// IsTemporary reports whether a Send error may go away on retry, which lets a
// consumer choose between retrying with backoff and dead-lettering.
//
// It is true for network errors, timeouts, a cancelled or expired context, a
// connection closed mid-conversation and SMTP 4xx replies. It is false for
// nil, [ErrInvalidMessage], SMTP 5xx replies and any error it does not
// recognise.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, ErrInvalidMessage) {
		return false
	}
	// The SMTP reply code is the server's own verdict, so it wins over
	// anything else in the chain.
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code >= 400 && reply.Code < 500
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}
