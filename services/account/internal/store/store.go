// Package store keeps the Account Service's accounts.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/choreo-dev/choreo/pkg/migrate"
	"github.com/choreo-dev/choreo/pkg/trace"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the account tables' migrations.
func Migrations() migrate.Migrations { return migrate.Dir("account-service", migrations, "migrations") }

// ErrNotFound is returned for an account that does not exist.
var ErrNotFound = errors.New("account not found")

// Account is a registered account.
type Account struct {
	ID        string     `json:"accountId"`
	Username  string     `json:"username"`
	Email     string     `json:"email"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"createdAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
	// RejectedReason says why the User Service rejected the registration (status "rejected").
	RejectedReason string `json:"rejectedReason,omitempty"`
}

// DBTX is what the store needs of *sql.DB or *sql.Tx.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Insert stores a new active account.
func Insert(ctx context.Context, db DBTX, a Account) error {
	_, err := db.ExecContext(ctx, `INSERT INTO accounts (id, username, email, status, created_at) VALUES ($1, $2, $3, 'active', $4)`,
		a.ID, a.Username, a.Email, a.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert account %s: %w", a.ID, err)
	}
	return nil
}

// Get returns the account id.
func Get(ctx context.Context, db DBTX, id string) (Account, error) {
	var (
		a       Account
		created int64
		deleted sql.NullInt64
		reason  sql.NullString
	)
	err := db.QueryRowContext(ctx, `SELECT id, username, email, status, created_at, deleted_at, rejected_reason FROM accounts WHERE id = $1`, id).
		Scan(&a.ID, &a.Username, &a.Email, &a.Status, &created, &deleted, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", id, err)
	}
	a.CreatedAt = time.UnixMilli(created).UTC()
	a.RejectedReason = reason.String
	if deleted.Valid {
		t := time.UnixMilli(deleted.Int64).UTC()
		a.DeletedAt = &t
	}
	return a, nil
}

// MarkDeleted marks an active account deleted and reports whether it was active.
func MarkDeleted(ctx context.Context, db DBTX, id string, at time.Time) (bool, error) {
	res, err := db.ExecContext(ctx, `UPDATE accounts SET status = 'deleted', deleted_at = $2 WHERE id = $1 AND status = 'active'`, id, at.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("delete account %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MarkRejected marks an active account rejected, with the reason, and reports whether it was
// active (a repeated rejection changes nothing).
func MarkRejected(ctx context.Context, db DBTX, id, reason string) (bool, error) {
	res, err := db.ExecContext(ctx, `UPDATE accounts SET status = 'rejected', rejected_reason = $2 WHERE id = $1 AND status = 'active'`, id, reason)
	if err != nil {
		return false, fmt.Errorf("reject account %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordEffect records that the event eventID of operation correlationID caused effect on an
// account at at; a repeated event records nothing more.
func RecordEffect(ctx context.Context, db DBTX, eventID, correlationID, effect, accountID string, at time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO effects (event_id, correlation_id, effect, account_id, at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, eventID, correlationID, effect, accountID, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("record effect %s of event %s: %w", effect, eventID, err)
	}
	return nil
}

// Effects returns the effects operation correlationID caused, oldest first. They are recorded
// with the change they are, so each is done.
func Effects(ctx context.Context, db *sql.DB, service, correlationID string) ([]trace.Effect, error) {
	rows, err := db.QueryContext(ctx, `SELECT event_id, correlation_id, effect, at FROM effects
		WHERE correlation_id = $1 ORDER BY at, event_id`, correlationID)
	if err != nil {
		return nil, fmt.Errorf("effects of %s: %w", correlationID, err)
	}
	defer rows.Close()
	out := []trace.Effect{}
	for rows.Next() {
		e := trace.Effect{Service: service, Status: trace.EffectDone}
		var at int64
		if err := rows.Scan(&e.EventID, &e.CorrelationID, &e.Effect, &at); err != nil {
			return nil, fmt.Errorf("effects of %s: %w", correlationID, err)
		}
		e.At = time.UnixMilli(at).UTC()
		e.DoneAt = &e.At
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("effects of %s: %w", correlationID, err)
	}
	return out, nil
}
