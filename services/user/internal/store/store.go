// Package store keeps the User Service's users and the registrations it rejected: all of the
// service's SQL, its migrations included. Every function takes the database or transaction it
// runs in, so a handler's writes share the transaction of its inbox and outbox records.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/choreo-dev/choreo/pkg/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the user tables' migrations.
func Migrations() migrate.Migrations { return migrate.Dir("user-service", migrations, "migrations") }

// ErrNotFound is returned for a user that does not exist.
var ErrNotFound = errors.New("user not found")

// User is a user record.
type User struct {
	ID        string     `json:"userId"`
	AccountID string     `json:"accountId"`
	Username  string     `json:"username"`
	Email     string     `json:"email"`
	CreatedAt time.Time  `json:"createdAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// DBTX is what the store needs of *sql.DB, *sql.Tx or a handler's transaction.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Insert stores a new live user and reports whether it did. It does not when the account has a
// user already or another live user holds the username (HasUser tells which).
func Insert(ctx context.Context, db DBTX, u User) (bool, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO users (id, account_id, username, email, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, u.ID, u.AccountID, u.Username, u.Email, u.CreatedAt.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("insert user of account %s: %w", u.AccountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert user of account %s: %w", u.AccountID, err)
	}
	return n == 1, nil
}

// HasUser reports whether the account has a user, live or deleted.
func HasUser(ctx context.Context, db DBTX, accountID string) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return false, fmt.Errorf("look up user of account %s: %w", accountID, err)
	}
	return n > 0, nil
}

// InsertRejection records that the registration of an account was rejected, and reports whether
// it did: an account is rejected once, a repeated rejection records nothing.
func InsertRejection(ctx context.Context, db DBTX, accountID, username, reason string, at time.Time) (bool, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO rejections (account_id, username, reason, rejected_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, accountID, username, reason, at.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("record rejection of account %s: %w", accountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record rejection of account %s: %w", accountID, err)
	}
	return n == 1, nil
}

// MarkDeleted marks the live user of an account deleted at at and returns it. An account
// without a live user (deleted before, or never created) gives ErrNotFound.
func MarkDeleted(ctx context.Context, db DBTX, accountID string, at time.Time) (User, error) {
	u := User{AccountID: accountID}
	var created int64
	err := db.QueryRowContext(ctx, `UPDATE users SET deleted_at = $2 WHERE account_id = $1 AND deleted_at IS NULL
		RETURNING id, username, email, created_at`, accountID, at.UnixMilli()).Scan(&u.ID, &u.Username, &u.Email, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("live user of account %s: %w", accountID, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("delete user of account %s: %w", accountID, err)
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	deleted := at.UTC()
	u.DeletedAt = &deleted
	return u, nil
}

// Get returns the user id, live or deleted.
func Get(ctx context.Context, db DBTX, id string) (User, error) {
	return get(ctx, db, `SELECT id, account_id, username, email, created_at, deleted_at FROM users WHERE id = $1`, "user "+id, id)
}

// ByAccount returns the user of an account, live or deleted.
func ByAccount(ctx context.Context, db DBTX, accountID string) (User, error) {
	return get(ctx, db, `SELECT id, account_id, username, email, created_at, deleted_at FROM users WHERE account_id = $1`,
		"user of account "+accountID, accountID)
}

func get(ctx context.Context, db DBTX, query, what, arg string) (User, error) {
	var (
		u       User
		created int64
		deleted sql.NullInt64
	)
	err := db.QueryRowContext(ctx, query, arg).Scan(&u.ID, &u.AccountID, &u.Username, &u.Email, &created, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("get %s: %w", what, err)
	}
	u.CreatedAt = time.UnixMilli(created).UTC()
	if deleted.Valid {
		t := time.UnixMilli(deleted.Int64).UTC()
		u.DeletedAt = &t
	}
	return u, nil
}
