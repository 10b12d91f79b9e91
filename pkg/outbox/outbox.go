// Package outbox makes publishing an event part of the database transaction that decides it
// (the transactional outbox): records are written to the outbox table with the state change,
// and a Relay publishes them to Kafka afterwards, in order, and deletes what the broker
// acknowledged. A crash between commit and publish re-publishes the same record (same ce_id),
// never a different one and never none.
package outbox

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrCorrupt is returned when a stored record's headers cannot be read back.
var ErrCorrupt = errors.New("outbox: corrupt stored headers")

// Execer is the part of *sql.Tx (and *sql.DB) that Add needs.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Add writes rec to the outbox within tx. Only Topic, Key, Value and Headers are kept.
func Add(ctx context.Context, tx Execer, rec *kgo.Record) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO outbox (topic, key, value, headers, created_at) VALUES ($1, $2, $3, $4, $5)`,
		rec.Topic, rec.Key, rec.Value, encodeHeaders(rec.Headers), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("outbox: add record for %s: %w", rec.Topic, err)
	}
	return nil
}

// encodeHeaders packs headers as repeated (uvarint length, key, uvarint length, value).
func encodeHeaders(hs []kgo.RecordHeader) []byte {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

func decodeHeaders(b []byte) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	next := func() ([]byte, error) {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, ErrCorrupt
		}
		v := b[w : w+int(n)]
		b = b[w+int(n):]
		return v, nil
	}
	for len(b) > 0 {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
	}
	return hs, nil
}
