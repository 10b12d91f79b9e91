// Package store holds all SQL of the Notification Service: the notifications table, in which
// handlers queue emails in their transaction and the sender records what became of them.
package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/choreo-dev/choreo/pkg/consumer"
	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the notification tables' migrations.
func Migrations() migrate.Migrations {
	return migrate.Dir("notification-service", migrations, "migrations")
}

// Statuses of an email.
const (
	StatusPending = "pending" // queued, not yet accepted by the mail server
	StatusSent    = "sent"
	StatusFailed  = "failed" // given up
)

// Execer is what Queue needs: a *sql.Tx, or the consumer's unit of work (see Inserter).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Inserter is the consumer's unit of work as Queue uses it (consumer.UnitOfWork.Insert): in a
// batch of events it may hold the row back and write it at commit with the batch's other
// emails, one statement for many instead of one each.
type Inserter interface {
	Insert(ctx context.Context, ins consumer.Insert, args ...any) error
}

// Querier is what the reads need: a *sql.DB or a *sql.Tx.
type Querier interface {
	Execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Email is an email to queue.
type Email struct {
	MessageID, Kind, UserID, AccountID, To, Subject, Body string
	// Date is the email's Date header (kept to the second).
	Date                              time.Time
	EventID, EventType, CorrelationID string
	QueuedAt                          time.Time
	Traceparent, Tracestate           string // of the handler that queued it; "" without tracing
	ChainStart                        time.Time
}

// queueInto is the statement Queue writes a row with, up to VALUES (see consumer.Insert). ON
// CONFLICT DO NOTHING holds within one multi-row statement too: of two rows of the same key in
// one batch, the first is written.
const queueInto = `INSERT INTO notifications (message_id, kind, user_id, account_id, recipient, subject, body, msg_date,
	event_id, event_type, correlation_id, status, queued_at, traceparent, tracestate, chain_time)`

// Queue queues e as pending within tx. One email per (kind, user) and per message ID: queueing
// it again changes nothing. When tx is an Inserter (a handler's unit of work), the row may be
// written only when the transaction commits: nothing in the transaction reads it back before.
func Queue(ctx context.Context, tx Execer, e Email) error {
	var traceparent, tracestate any // NULL when tracing is off
	if e.Traceparent != "" {
		traceparent, tracestate = e.Traceparent, e.Tracestate
	}
	args := []any{e.MessageID, e.Kind, e.UserID, e.AccountID, e.To, e.Subject, e.Body, e.Date.Unix(),
		e.EventID, e.EventType, e.CorrelationID, StatusPending, e.QueuedAt.UnixMilli(), traceparent, tracestate, e.ChainStart.UnixMilli()}
	row := consumer.Insert{Into: queueInto, Columns: len(args), Then: `ON CONFLICT DO NOTHING`}
	var err error
	if in, ok := tx.(Inserter); ok {
		err = in.Insert(ctx, row, args...)
	} else {
		_, err = tx.ExecContext(ctx, row.Query(), args...)
	}
	if err != nil {
		return fmt.Errorf("queue %s email to user %s: %w", e.Kind, e.UserID, err)
	}
	return nil
}

// Pending is a queued email due to be sent.
type Pending struct {
	MessageID, Kind, To, Subject, Body string
	Date                               time.Time
	EventID, CorrelationID             string
	// Attempts made so far.
	Attempts                int
	Traceparent, Tracestate string
	ChainStart              time.Time // zero if unknown
	QueuedAt                time.Time
}

// pendingColumns are the columns scanPending reads, in its order.
const pendingColumns = `message_id, recipient, subject, body, msg_date, event_id, correlation_id, attempts,
	kind, traceparent, tracestate, chain_time, queued_at`

// Due returns up to limit pending emails due at now, for a sender that has the database to
// itself (see Claim for one shared by replicas): first-time sends oldest first, then retries by
// the time they fell due (the order of the index notifications_pending, so a backlog costs
// nothing per take).
func Due(ctx context.Context, q Querier, now time.Time, limit int) ([]Pending, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+pendingColumns+` FROM notifications
		WHERE status = 'pending' AND next_attempt <= $1 ORDER BY next_attempt, queued_at LIMIT $2`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read queued emails: %w", err)
	}
	return scanPending(rows, limit)
}

// Claim takes up to limit pending emails due at now, in Due's order, for the caller alone until
// lease: in one statement, rows another replica is claiming are skipped (FOR UPDATE SKIP
// LOCKED) and the claimed ones fall due again only at lease, so no other replica takes them
// before. An email whose send outlasts the lease can be taken by another replica: the lease must
// exceed the time its batch takes. One that a dead replica claimed is sent again after the lease.
// PostgreSQL only.
func Claim(ctx context.Context, q Querier, now, lease time.Time, limit int) ([]Pending, error) {
	rows, err := q.QueryContext(ctx, `UPDATE notifications SET next_attempt = $1 WHERE message_id IN (
		SELECT message_id FROM notifications WHERE status = 'pending' AND next_attempt <= $2
		ORDER BY next_attempt, queued_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING `+pendingColumns,
		lease.UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim queued emails: %w", err)
	}
	ps, err := scanPending(rows, limit)
	// RETURNING follows no order: within the batch, oldest first.
	slices.SortStableFunc(ps, func(a, b Pending) int { return a.QueuedAt.Compare(b.QueuedAt) })
	return ps, err
}

func scanPending(rows *sql.Rows, limit int) ([]Pending, error) {
	defer rows.Close()
	out := make([]Pending, 0, min(limit, 256))
	for rows.Next() {
		var (
			p                       Pending
			date, queued            int64
			traceparent, tracestate sql.NullString
			chain                   sql.NullInt64
		)
		if err := rows.Scan(&p.MessageID, &p.To, &p.Subject, &p.Body, &date, &p.EventID, &p.CorrelationID, &p.Attempts,
			&p.Kind, &traceparent, &tracestate, &chain, &queued); err != nil {
			return nil, fmt.Errorf("read queued emails: %w", err)
		}
		p.Date = time.Unix(date, 0).UTC()
		p.QueuedAt = time.UnixMilli(queued)
		p.Traceparent, p.Tracestate = traceparent.String, tracestate.String
		if chain.Valid {
			p.ChainStart = time.UnixMilli(chain.Int64)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read queued emails: %w", err)
	}
	return out, nil
}

// NextDue returns when the earliest pending email that is not yet due at after falls due (one
// waiting for a retry); ok is false when there is none.
func NextDue(ctx context.Context, q Querier, after time.Time) (at time.Time, ok bool, err error) {
	var next sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(next_attempt) FROM notifications WHERE status = 'pending' AND next_attempt > $1`,
		after.UnixMilli()).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("read next due email: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(next.Int64), true, nil
}

// Sent is an email the mail server accepted, and when.
type Sent struct {
	MessageID string
	At        time.Time
}

// sentChunk bounds the rows of one RecordSent statement (two parameters a row).
const sentChunk = 256

// RecordSent records that the mail server accepted the emails sent, each at its own time, in
// as few statements as it can. Emails no longer pending are left as they are, so recording an
// email again (a log of sends folded twice after a crash) changes nothing.
func RecordSent(ctx context.Context, tx Execer, sent []Sent) error {
	args := make([]any, 0, 2*min(sentChunk, len(sent)))
	var b strings.Builder
	for len(sent) > 0 {
		n := min(sentChunk, len(sent))
		args = args[:0]
		b.Reset()
		// CAST: PostgreSQL types an untyped parameter in VALUES as text.
		b.WriteString(`UPDATE notifications SET status = 'sent', sent_at = v.column2, attempts = attempts + 1, last_error = NULL
			FROM (VALUES `)
		for i, s := range sent[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "($%d, CAST($%d AS BIGINT))", 2*i+1, 2*i+2)
			args = append(args, s.MessageID, s.At.UnixMilli())
		}
		b.WriteString(`) AS v WHERE notifications.message_id = v.column1 AND notifications.status = 'pending'`)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record %d sent emails: %w", n, err)
		}
		sent = sent[n:]
	}
	return nil
}

// MarkRetry records a failed attempt at email id that is to be retried at next.
func MarkRetry(ctx context.Context, tx Execer, id, lastErr string, next time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE notifications SET attempts = attempts + 1, last_error = $2, next_attempt = $3
		WHERE message_id = $1`, id, lastErr, next.UnixMilli()); err != nil {
		return fmt.Errorf("record email %s for retry: %w", id, err)
	}
	return nil
}

// MarkFailed records that email id is given up after a failed attempt.
func MarkFailed(ctx context.Context, tx Execer, id, lastErr string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = $2
		WHERE message_id = $1`, id, lastErr); err != nil {
		return fmt.Errorf("record email %s as failed: %w", id, err)
	}
	return nil
}

// Backlog returns how many emails are pending and how many were given up. Both are counted on
// the index that begins with status, so the cost follows those rows, not the table: sent emails,
// which only grow, are not counted (a scrape that counted them scanned the whole table).
func Backlog(ctx context.Context, q Querier) (pending, failed int64, err error) {
	if err := q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM notifications WHERE status = 'pending'),
		(SELECT count(*) FROM notifications WHERE status = 'failed')`).Scan(&pending, &failed); err != nil {
		return 0, 0, fmt.Errorf("count pending and failed emails: %w", err)
	}
	return pending, failed, nil
}

// Counts returns how many emails have each status (pending, sent, failed; zero ones included).
// It reads the whole table: for tests and one-off checks, not for anything run repeatedly.
func Counts(ctx context.Context, q Querier) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT status, count(*) FROM notifications GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count emails: %w", err)
	}
	defer rows.Close()
	counts := map[string]int64{StatusPending: 0, StatusSent: 0, StatusFailed: 0}
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count emails: %w", err)
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count emails: %w", err)
	}
	return counts, nil
}

// Notification is an email as the API lists it.
type Notification struct {
	MessageID     string     `json:"messageId"`
	Kind          string     `json:"kind"`
	UserID        string     `json:"userId"`
	AccountID     string     `json:"accountId"`
	To            string     `json:"to"`
	Subject       string     `json:"subject"`
	EventID       string     `json:"eventId"`
	EventType     string     `json:"eventType"`
	CorrelationID string     `json:"correlationId"`
	Status        string     `json:"status"` // pending, sent or failed
	QueuedAt      time.Time  `json:"queuedAt"`
	SentAt        *time.Time `json:"sentAt,omitempty"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"lastError,omitempty"`
}

// ByAccount returns the emails sent or queued for an account, oldest first.
func ByAccount(ctx context.Context, q Querier, accountID string) ([]Notification, error) {
	return list(ctx, q, `account_id = $1`, accountID)
}

// ByCorrelation returns the emails that the operation correlationID caused, oldest first.
func ByCorrelation(ctx context.Context, q Querier, correlationID string) ([]Notification, error) {
	return list(ctx, q, `correlation_id = $1`, correlationID)
}

func list(ctx context.Context, q Querier, where, arg string) ([]Notification, error) {
	rows, err := q.QueryContext(ctx, `SELECT message_id, kind, user_id, account_id, recipient, subject,
		event_id, event_type, correlation_id, status, queued_at, sent_at, attempts, last_error
		FROM notifications WHERE `+where+` ORDER BY queued_at, kind`, arg)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var (
			n       Notification
			queued  int64
			sent    sql.NullInt64
			lastErr sql.NullString
		)
		if err := rows.Scan(&n.MessageID, &n.Kind, &n.UserID, &n.AccountID, &n.To, &n.Subject,
			&n.EventID, &n.EventType, &n.CorrelationID, &n.Status, &queued, &sent, &n.Attempts, &lastErr); err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		n.QueuedAt = time.UnixMilli(queued).UTC()
		if sent.Valid {
			t := time.UnixMilli(sent.Int64).UTC()
			n.SentAt = &t
		}
		n.LastError = lastErr.String
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}
