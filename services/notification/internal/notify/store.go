package notify

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Store reads the notifications table; the handlers and the Sender write it in their own
// transactions.
type Store struct {
	DB *sql.DB
}

// ByAccount returns the emails sent or queued for an account, oldest first.
func (s Store) ByAccount(ctx context.Context, accountID string) ([]Notification, error) {
	return s.list(ctx, `account_id = $1`, accountID)
}

// ByCorrelation returns the emails that the operation correlationID caused, oldest first.
func (s Store) ByCorrelation(ctx context.Context, correlationID string) ([]Notification, error) {
	return s.list(ctx, `correlation_id = $1`, correlationID)
}

func (s Store) list(ctx context.Context, where, arg string) ([]Notification, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT message_id, kind, user_id, account_id, recipient, subject,
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
