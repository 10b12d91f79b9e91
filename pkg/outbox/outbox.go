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
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"modernc.org/sqlite"

	"github.com/choreo-dev/choreo/pkg/telemetry"
)

// ErrCorrupt is returned when a stored record's headers cannot be read back.
var ErrCorrupt = errors.New("outbox: corrupt stored headers")

// Execer is the part of *sql.Tx (and *sql.DB) that Add needs.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Insert is the statement Add runs, for callers that prepare it once (see AddPrepared).
const Insert = `INSERT INTO outbox (topic, key, value, headers, created_at, traceparent, tracestate) VALUES ($1, $2, $3, $4, $5, $6, $7)`

// Add writes rec to the outbox within tx. Only Topic, Key, Value and Headers are kept, with the
// trace context of ctx's span (if any), which becomes the parent of the record's producer span.
func Add(ctx context.Context, tx Execer, rec *kgo.Record) error {
	_, err := tx.ExecContext(ctx, Insert, args(ctx, rec)...)
	if err != nil {
		return fmt.Errorf("outbox: add record for %s: %w", rec.Topic, err)
	}
	return nil
}

// AddPrepared is Add with stmt, Insert prepared and bound to the transaction.
func AddPrepared(ctx context.Context, stmt *sql.Stmt, rec *kgo.Record) error {
	if _, err := stmt.ExecContext(ctx, args(ctx, rec)...); err != nil {
		return fmt.Errorf("outbox: add record for %s: %w", rec.Topic, err)
	}
	return nil
}

// Entry is a record as Add writes it, taken when the record is emitted (with the trace context
// of that moment), for AddAll to write later with others.
type Entry struct {
	topic string
	args  []any
}

// NewEntry returns rec as Add would write it within ctx.
func NewEntry(ctx context.Context, rec *kgo.Record) Entry {
	return Entry{topic: rec.Topic, args: args(ctx, rec)}
}

// maxRows bounds the rows of one multi-row statement: 7 parameters a row stay far below
// SQLite's and PostgreSQL's limits on parameters per statement.
const maxRows = 256

// NextRows returns how many of n rows (n > 0) the next multi-row statement takes: the largest
// power of two up to n and 256. pgx prepares and caches each statement text per connection, and
// the server keeps each prepared; powers of two bound that to 9 shapes a statement instead of
// one per batch size, for at most 9 statements where one would do.
func NextRows(n int) int {
	k := 1
	for k*2 <= min(n, maxRows) {
		k *= 2
	}
	return k
}

// Params writes the placeholders of multi-row statements in the form their database binds
// fastest.
type Params struct{ positional bool }

// ParamsOf returns the Params of db: ? for SQLite (modernc.org/sqlite), whose $N parameters
// are looked up by name, which costs time quadratic in a statement's parameters (a 256-row
// insert spent most of its time there); $1, $2, ... (PostgreSQL's form) for any other driver.
func ParamsOf(db *sql.DB) Params {
	_, ok := db.Driver().(*sqlite.Driver)
	return Params{positional: ok}
}

// Rows appends rows of cols placeholders each, "(p1,p2),(p3,p4)", to b, numbered from 1.
func (p Params) Rows(b *strings.Builder, rows, cols int) {
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			if p.positional {
				b.WriteByte('?')
				continue
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i*cols + j + 1))
		}
		b.WriteByte(')')
	}
}

// AddAll writes entries within tx, in their order (their seqs ascend with it), with a few
// multi-row statements (see NextRows) instead of one per entry: on PostgreSQL every statement is
// a round trip. p is the database's ParamsOf. one, when not nil, is Insert prepared and bound to
// tx; a lone entry goes through it.
func AddAll(ctx context.Context, tx Execer, p Params, one *sql.Stmt, entries []Entry) error {
	if len(entries) == 1 && one != nil {
		if _, err := one.ExecContext(ctx, entries[0].args...); err != nil {
			return fmt.Errorf("outbox: add record for %s: %w", entries[0].topic, err)
		}
		return nil
	}
	for len(entries) > 0 {
		n := NextRows(len(entries))
		args := make([]any, 0, n*7)
		for _, e := range entries[:n] {
			args = append(args, e.args...)
		}
		if _, err := tx.ExecContext(ctx, insertRows(p, n), args...); err != nil {
			return fmt.Errorf("outbox: add %d records: %w", n, err)
		}
		entries = entries[n:]
	}
	return nil
}

// insertRows is Insert with n rows of values.
func insertRows(p Params, n int) string {
	var b strings.Builder
	b.Grow(len(Insert) + n*40)
	b.WriteString(`INSERT INTO outbox (topic, key, value, headers, created_at, traceparent, tracestate) VALUES `)
	p.Rows(&b, n, 7)
	return b.String()
}

func args(ctx context.Context, rec *kgo.Record) []any {
	var parent, state any // NULL without a span
	if tp, ts := telemetry.Traceparent(ctx); tp != "" {
		parent, state = tp, ts
	}
	return []any{rec.Topic, rec.Key, rec.Value, encodeHeaders(rec.Headers), time.Now().UnixMilli(), parent, state}
}

// encodeHeaders packs headers as repeated (uvarint length, key, uvarint length+1, value): a
// value length of 0 stands for a null value, which Kafka tells apart from an empty one.
func encodeHeaders(hs []kgo.RecordHeader) []byte {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 2*binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(h.Value))+1)
		b = append(b, h.Value...)
	}
	return b
}

func decodeHeaders(b []byte) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	next := func(nullable bool) ([]byte, error) {
		n, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, ErrCorrupt
		}
		b = b[w:]
		if nullable {
			if n == 0 {
				return nil, nil
			}
			n--
		}
		if uint64(len(b)) < n {
			return nil, ErrCorrupt
		}
		v := b[:n:n]
		b = b[n:]
		if v == nil {
			v = []byte{}
		}
		return v, nil
	}
	for len(b) > 0 {
		k, err := next(false)
		if err != nil {
			return nil, err
		}
		v, err := next(true)
		if err != nil {
			return nil, err
		}
		hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
	}
	return hs, nil
}
