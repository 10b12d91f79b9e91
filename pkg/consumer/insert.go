package consumer

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/choreo-dev/choreo/pkg/outbox"
)

// Insert is an INSERT statement whose rows handlers add with UnitOfWork.Insert. A batch applied
// without savepoints (the common case) writes the rows of all its records with a few multi-row
// statements at commit, instead of one statement (on PostgreSQL one round trip) per record.
type Insert struct {
	// Into is the statement up to VALUES: "INSERT INTO notifications (message_id, kind)".
	Into string
	// Columns is the number of values of a row, the columns named in Into.
	Columns int
	// Then follows the rows, e.g. "ON CONFLICT DO NOTHING"; it may be empty. It must not return
	// rows: nobody reads them.
	Then string
}

// maxParams bounds the parameters of one multi-row statement: SQLite's default
// SQLITE_MAX_VARIABLE_NUMBER (PostgreSQL allows 65535).
const maxParams = 32766

// Query returns the statement that inserts one row, with parameters $1 to $Columns: what
// UnitOfWork.Insert runs at once in a guarded batch, and what a caller outside a handler (an
// HTTP handler, a test, with a *sql.Tx) runs to write a row at once.
func (ins Insert) Query() string {
	var b strings.Builder
	b.Grow(len(ins.Into) + len(ins.Then) + 10 + 4*ins.Columns)
	b.WriteString(ins.Into)
	b.WriteString(" VALUES (")
	for i := range ins.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i + 1))
	}
	b.WriteByte(')')
	if ins.Then != "" {
		b.WriteByte(' ')
		b.WriteString(ins.Then)
	}
	return b.String()
}

// check reports a row that cannot be written: a programmer's error, which no retry fixes.
func (ins Insert) check(args []any) error {
	switch {
	case ins.Columns < 1 || ins.Columns > maxParams:
		return Permanent(fmt.Errorf("%s: %d columns, want 1 to %d", ins.Into, ins.Columns, maxParams))
	case len(args) != ins.Columns:
		return Permanent(fmt.Errorf("%s: %d values, want %d", ins.Into, len(args), ins.Columns))
	}
	return nil
}

// rowsOf is the rows of one Insert that an unguarded transaction holds back until commit.
type rowsOf struct {
	ins  Insert
	args []any // Columns values a row, rows in the order added
}

// errDeferredInsert reports that the rows held back for commit could not be written. It blames
// no record (one of the rows, but a multi-row statement does not say which), and it is no
// database outage either: a row's data may be bad. The batch is applied again guarded, where
// each row is written in its handler's savepoint and a bad one fails its own handler.
type errDeferredInsert struct{ err error }

func (e *errDeferredInsert) Error() string { return e.err.Error() }
func (e *errDeferredInsert) Unwrap() error { return e.err }

// insert writes a row at once in a guarded transaction, in the handler's savepoint, and holds it
// back for commit in an unguarded one.
func (t *batchTx) insert(ctx context.Context, uow *UnitOfWork, ins Insert, args []any) error {
	if err := ins.check(args); err != nil {
		return err
	}
	if t.guarded {
		_, err := uow.ExecContext(ctx, ins.Query(), args...)
		return err
	}
	for i := range t.inserts {
		if t.inserts[i].ins == ins {
			t.inserts[i].args = append(t.inserts[i].args, args...)
			return nil
		}
	}
	t.inserts = append(t.inserts, rowsOf{ins: ins, args: append(make([]any, 0, 8*len(args)), args...)})
	return nil
}

// writeInserts writes the rows held back, each Insert's in the order added (Inserts in the order
// first used, so that a row added after another it refers to comes after it), with as few
// multi-row statements as outbox.NextRows and the databases' parameter limits allow.
func (t *batchTx) writeInserts(ctx context.Context) error {
	var q strings.Builder
	for _, g := range t.inserts {
		for args := g.args; len(args) > 0; {
			n := outbox.NextRows(min(len(args)/g.ins.Columns, maxParams/g.ins.Columns))
			q.Reset()
			q.WriteString(g.ins.Into)
			q.WriteString(" VALUES ")
			t.inbox.params.Rows(&q, n, g.ins.Columns)
			if g.ins.Then != "" {
				q.WriteByte(' ')
				q.WriteString(g.ins.Then)
			}
			if _, err := t.sql.ExecContext(ctx, q.String(), args[:n*g.ins.Columns]...); err != nil {
				return &errDeferredInsert{fmt.Errorf("%s: %d rows: %w", g.ins.Into, n, err)}
			}
			args = args[n*g.ins.Columns:]
		}
	}
	return nil
}
