package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/choreo-dev/choreo/pkg/event"
)

// dbtx is what the user record functions need of a handler's *consumer.Tx or an API's *sql.Tx,
// so that the event handlers and the synchronous API apply one set of rules.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// addOutcome is what adding a user did.
type addOutcome int

const (
	userCreated   addOutcome = iota // a new live user
	userExisted                     // the account has its user already: nothing changed
	usernameTaken                   // another live user holds the username: nothing changed
)

// addUser stores u, once per account: a second add of the same account changes nothing and
// reports userExisted, whatever it carries.
func addUser(ctx context.Context, db dbtx, u event.UserCreated) (addOutcome, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO users (id, account_id, username, email, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, u.UserID, u.AccountID, u.Username, u.Email, u.CreatedAt.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("insert user of account %s: %w", u.AccountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert user of account %s: %w", u.AccountID, err)
	}
	if n == 1 {
		return userCreated, nil
	}
	// A conflict: either the account has its user already, or another live user holds the username.
	var has int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE account_id = $1`, u.AccountID).Scan(&has); err != nil {
		return 0, fmt.Errorf("look up user of account %s: %w", u.AccountID, err)
	}
	if has > 0 {
		return userExisted, nil
	}
	return usernameTaken, nil
}

// markDeleted marks the live user of accountID deleted at at and returns its username and
// email; deleted is false when there is no live user (deleted before, or never created).
func markDeleted(ctx context.Context, db dbtx, accountID string, at time.Time) (username, email string, deleted bool, err error) {
	err = db.QueryRowContext(ctx, `UPDATE users SET deleted_at = $2 WHERE account_id = $1 AND deleted_at IS NULL
		RETURNING username, email`, accountID, at.UnixMilli()).Scan(&username, &email)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("delete user of account %s: %w", accountID, err)
	}
	return username, email, true, nil
}
