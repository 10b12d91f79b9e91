package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/choreo-dev/choreo/pkg/sqlite"
)

// TestUsernamesUniqueAmongLiveUsers: the schema, not only the handler, keeps a username to one
// live user; a deleted user's name is free again.
func TestUsernamesUniqueAmongLiveUsers(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	insert := func(id, acc string) error {
		_, err := db.Exec(`INSERT INTO users (id, account_id, username, email, created_at) VALUES ($1, $2, 'same', 'x@mail.com', 1)`, id, acc)
		return err
	}
	if err := insert("u1", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := insert("u2", "a2"); err == nil {
		t.Fatal("a second live user with the same username was stored")
	}
	if _, err := db.Exec(`UPDATE users SET deleted_at = 2 WHERE id = 'u1'`); err != nil {
		t.Fatal(err)
	}
	if err := insert("u2", "a2"); err != nil {
		t.Errorf("username of a deleted user not free again: %v", err)
	}
	if err := insert("u3", "a2"); err == nil {
		t.Error("a second user of one account was stored")
	}
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "users.db"), Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLifecycle: a user is stored once per account, found by ID and by account, deleted once;
// a rejection is recorded once.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := User{ID: "u1", AccountID: "a1", Username: "jane", Email: "jane@mail.com", CreatedAt: created}
	if ok, err := Insert(ctx, db, u); err != nil || !ok {
		t.Fatalf("Insert = %v, %v, want stored", ok, err)
	}
	if ok, err := Insert(ctx, db, u); err != nil || ok {
		t.Fatalf("Insert again = %v, %v, want not stored", ok, err)
	}
	for _, acc := range []string{"a1", "a2"} {
		has, err := HasUser(ctx, db, acc)
		if err != nil || has != (acc == "a1") {
			t.Errorf("HasUser(%s) = %v, %v", acc, has, err)
		}
	}
	if got, err := Get(ctx, db, "u1"); err != nil || got.AccountID != "a1" || !got.CreatedAt.Equal(created) || got.DeletedAt != nil {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, err := ByAccount(ctx, db, "a2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByAccount(a2) = %v, want ErrNotFound", err)
	}
	deleted := created.Add(time.Hour)
	if got, err := MarkDeleted(ctx, db, "a1", deleted); err != nil || got.Username != "jane" || got.Email != "jane@mail.com" {
		t.Errorf("MarkDeleted = %+v, %v", got, err)
	}
	if _, err := MarkDeleted(ctx, db, "a1", deleted); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkDeleted again = %v, want ErrNotFound", err)
	}
	if got, err := ByAccount(ctx, db, "a1"); err != nil || got.DeletedAt == nil || !got.DeletedAt.Equal(deleted) {
		t.Errorf("ByAccount after delete = %+v, %v", got, err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := InsertRejection(ctx, db, "a2", "jane", "taken", created); err != nil || ok != want {
			t.Errorf("InsertRejection #%d = %v, %v, want %v", i+1, ok, err, want)
		}
	}
}
