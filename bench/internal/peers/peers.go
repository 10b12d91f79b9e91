// Package peers holds the chains choreo is compared with: the same two hops (AccountCreated on
// the accounts topic -> UserCreated on the users topic -> a welcome email over SMTP) written
// directly on bare franz-go and on Watermill's router over watermill-kafka (Sarama). They read
// and write choreo's records (Avro in the Confluent wire format, CloudEvents headers) but keep
// no state: no inbox, no outbox, no store, so a crash between a hop's effect and its commit
// repeats the effect, and nothing deduplicates a redelivered record.
package peers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/smtp"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/choreo-dev/choreo/pkg/event"
)

// Config is what both peers need.
type Config struct {
	Brokers []string
	// Accounts and Users are the two topics of the chain.
	Accounts, Users string
	// Group prefixes the consumer groups of the two hops.
	Group string
	// SMTPAddr is where the welcome emails go.
	SMTPAddr string
	// UserSchemaID is the registry ID written in front of every UserCreated (Confluent wire format).
	UserSchemaID int
}

// errFraming is returned for a value that is not in the Confluent wire format.
var errFraming = errors.New("value is not in the Confluent wire format (magic byte 0 and a schema ID)")

// codec encodes and decodes the two events with fixed schemas, as a hand-written consumer does.
type codec struct {
	account, user avro.Schema
	userPrefix    [5]byte
}

func newCodec(userSchemaID int) codec {
	c := codec{account: new(event.AccountCreated).Schema(), user: new(event.UserCreated).Schema()}
	binary.BigEndian.PutUint32(c.userPrefix[1:], uint32(userSchemaID))
	return c
}

func (c codec) accountCreated(v []byte) (event.AccountCreated, error) {
	var ev event.AccountCreated
	if len(v) < 5 || v[0] != 0 {
		return ev, errFraming
	}
	err := avro.Unmarshal(c.account, v[5:], &ev)
	return ev, err
}

func (c codec) userCreated(v []byte) (event.UserCreated, error) {
	var ev event.UserCreated
	if len(v) < 5 || v[0] != 0 {
		return ev, errFraming
	}
	err := avro.Unmarshal(c.user, v[5:], &ev)
	return ev, err
}

// userOf is hop 1's work: the UserCreated of an account, framed.
func (c codec) userOf(a event.AccountCreated) ([]byte, error) {
	b, err := avro.Marshal(c.user, &event.UserCreated{
		UserID: a.AccountID, AccountID: a.AccountID, Username: a.Username, Email: a.Email,
		CreatedAt: a.CreatedAt, Locale: a.Locale,
	})
	if err != nil {
		return nil, err
	}
	return append(c.userPrefix[:], b...), nil
}

// sendWelcome is hop 2's work: one SMTP conversation per email, as choreo's SMTPMailer has.
func sendWelcome(addr string, u event.UserCreated) error {
	msg := strings.Join([]string{
		"From: welcome@choreo.example",
		"To: " + u.Email,
		"Subject: Welcome, " + u.Username,
		"Message-ID: <" + u.UserID + "@peer.example>",
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"Content-Type: text/plain; charset=utf-8",
		"",
		"Hello " + u.Username + ", welcome aboard.",
		"",
	}, "\r\n")
	if err := smtp.SendMail(addr, nil, "welcome@choreo.example", []string{u.Email}, []byte(msg)); err != nil {
		return fmt.Errorf("send welcome to %s: %w", u.Email, err)
	}
	return nil
}

// sendRetrying sends until the server accepts or ctx ends, reporting each failure.
func sendRetrying(ctx context.Context, addr string, u event.UserCreated, report func(error)) {
	for ctx.Err() == nil {
		err := sendWelcome(addr, u)
		if err == nil {
			return
		}
		report(err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
