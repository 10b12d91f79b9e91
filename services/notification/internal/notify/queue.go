package notify

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// execer is what queue needs of a handler's *consumer.Tx or the API's *sql.DB.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// email is one email to queue, with what caused it.
type email struct {
	kind, userID, accountID, to, subject, text string
	date                                       time.Time // the Date header, whole seconds
	causeID, causeType, correlationID          string
	queuedAt, chainStart                       time.Time
}

// queue queues e for the Sender. One email per (kind, user): queuing the same email again,
// from an event or a call, changes nothing.
func queue(ctx context.Context, db execer, e email) error {
	var traceparent, tracestate any // NULL when tracing is off
	if tp, ts := telemetry.Traceparent(ctx); tp != "" {
		traceparent, tracestate = tp, ts
	}
	_, err := db.ExecContext(ctx, `INSERT INTO notifications
		(message_id, kind, user_id, account_id, recipient, subject, body, msg_date, event_id, event_type, correlation_id, status, queued_at,
		traceparent, tracestate, chain_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14, $15) ON CONFLICT DO NOTHING`,
		MessageID(e.kind, e.userID), e.kind, e.userID, e.accountID, e.to, e.subject, e.text, e.date.Unix(),
		e.causeID, e.causeType, e.correlationID, e.queuedAt.UnixMilli(), traceparent, tracestate, e.chainStart.UnixMilli())
	if err != nil {
		return fmt.Errorf("queue %s email to user %s: %w", e.kind, e.userID, err)
	}
	return nil
}
