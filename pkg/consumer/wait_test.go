package consumer_test

import (
	"database/sql"
	"testing"
	"time"
)

// eventually calls fn every 20ms until it returns nil, and fails t with fn's last error if it
// has not by the end of timeout. (The platform's tests keep their own helpers: a package under
// pkg/ never depends on the services built on it, not even in tests.)
func eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rowCount returns the integer query selects (a count(*)), failing t if the query fails.
func rowCount(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
