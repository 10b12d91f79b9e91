package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Schema returns the schema a DATABASE_URL's tables live in: its search_path, folded as the
// server folds it, or "public".
func Schema(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil || cfg.RuntimeParams["search_path"] == "" {
		return "public"
	}
	return strings.ToLower(cfg.RuntimeParams["search_path"])
}

// RelayLock returns an outbox.Locker that lets one relay at a time publish the outbox of the
// schema: replicas of a service share its database, and two relays publishing at once could
// interleave one key's records. It takes a session advisory lock on a connection of its own
// and releases it after each drain.
func RelayLock(db *sql.DB, schema string) func(ctx context.Context) (unlock func(), ok bool, err error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("choreo-outbox-relay/" + schema))
	key := int64(h.Sum64() >> 1)
	return func(ctx context.Context) (func(), bool, error) {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("postgres: relay lock: %w", err)
		}
		var ok bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
			conn.Close()
			if err != nil {
				return nil, false, fmt.Errorf("postgres: relay lock: %w", err)
			}
			return nil, false, nil
		}
		return func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
			conn.Close()
		}, true, nil
	}
}
