package notify

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/choreo-dev/choreo/pkg/telemetry"
	"github.com/choreo-dev/choreo/services/notification/internal/mail"
)

// Sender delivers queued emails: at least once, with the Message-ID as idempotency key. An
// email is sent twice only if the process dies after the mail server accepted it and before the
// single-row update that records it commits; the resend carries the same Message-ID.
type Sender struct {
	DB     *sql.DB
	Mailer mail.Mailer
	Log    *slog.Logger
	Now    func() time.Time
	// MaxAttempts bounds the tries of an email a server keeps refusing temporarily. Default 10.
	MaxAttempts int
	// Tracer traces each delivery in a span whose parent is the handler that queued the email.
	// Default nil: no spans.
	Tracer *telemetry.Tracer
	// Transport names how mail leaves (smtp, file), for the delivery span. Default "".
	Transport string
	// Delivered, when set, is called for every email sent, with its kind and when its chain
	// began (zero if unknown), for the chain latency metric.
	Delivered func(kind string, chainStart time.Time)

	wake chan struct{}
}

// NewSender returns a Sender.
func NewSender(db *sql.DB, m mail.Mailer, log *slog.Logger) *Sender {
	return &Sender{DB: db, Mailer: m, Log: log, Now: time.Now, MaxAttempts: 10, wake: make(chan struct{}, 1)}
}

// Wake tells the sender that emails may have been queued. It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends queued emails until ctx is done, woken by Wake and every second.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := s.SendPending(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("sending queued emails failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

type queued struct {
	mail.Message
	kind                    string
	attempts                int
	traceparent, tracestate sql.NullString
	chainTime               sql.NullInt64
}

// SendPending sends every email that is due and records the outcome of each.
func (s *Sender) SendPending(ctx context.Context) error {
	for {
		batch, err := s.due(ctx)
		if err != nil || len(batch) == 0 {
			return err
		}
		for _, q := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.sendOne(ctx, q); err != nil {
				return err
			}
		}
		if len(batch) < 100 {
			return nil
		}
	}
}

func (s *Sender) due(ctx context.Context) ([]queued, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT message_id, recipient, subject, body, msg_date, event_id, correlation_id, attempts,
		kind, traceparent, tracestate, chain_time FROM notifications WHERE status = 'pending' AND next_attempt <= $1 ORDER BY queued_at LIMIT 100`, s.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read queued emails: %w", err)
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var (
			q               queued
			date            int64
			eventID, corrID string
		)
		if err := rows.Scan(&q.ID, &q.To, &q.Subject, &q.Text, &date, &eventID, &corrID, &q.attempts,
			&q.kind, &q.traceparent, &q.tracestate, &q.chainTime); err != nil {
			return nil, fmt.Errorf("read queued emails: %w", err)
		}
		q.From = From
		q.Date = time.Unix(date, 0).UTC()
		q.Headers = map[string]string{"X-Choreo-Event-Id": eventID, "X-Choreo-Correlation-Id": corrID}
		out = append(out, q)
	}
	return out, rows.Err()
}

func (s *Sender) sendOne(ctx context.Context, q queued) error {
	sctx, span := ctx, trace.Span(nil)
	if s.Tracer != nil && q.traceparent.String != "" {
		sctx, span = s.Tracer.Start(telemetry.WithTraceparent(ctx, q.traceparent.String, q.tracestate.String),
			"send "+q.kind+" email", trace.SpanKindClient, telemetry.AttrEmailKind.String(q.kind),
			telemetry.AttrEmailMessageID.String(q.ID), telemetry.AttrEmailTransport.String(s.Transport))
	}
	// A send once begun is not cancelled with ctx (a stop would otherwise cut it off after the
	// server accepted the message and leave it unrecorded, to be sent again at the next start);
	// the mailer's own timeout bounds it.
	err := s.Mailer.Send(context.WithoutCancel(sctx), q.Message)
	if span != nil {
		telemetry.End(span, err)
	}
	now := s.Now()
	// The recording runs even when ctx ends now: the email left, and the record keeps it from
	// leaving again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	sent := err == nil
	switch {
	case err == nil:
		_, err = s.DB.ExecContext(rctx, `UPDATE notifications SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
			WHERE message_id = $1`, q.ID, now.UnixMilli())
	case mail.IsTemporary(err) && q.attempts+1 < s.MaxAttempts:
		wait := time.Duration(1<<min(q.attempts, 8)) * time.Second
		s.Log.WarnContext(sctx, "email not sent; will retry", "message", q.ID, "attempt", q.attempts+1, "in", wait, "err", err)
		_, err = s.DB.ExecContext(rctx, `UPDATE notifications SET attempts = attempts + 1, last_error = $2, next_attempt = $3
			WHERE message_id = $1`, q.ID, err.Error(), now.Add(wait).UnixMilli())
	default:
		s.Log.ErrorContext(sctx, "email cannot be sent; giving up", "message", q.ID, "attempts", q.attempts+1, "err", err)
		_, err = s.DB.ExecContext(rctx, `UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = $2
			WHERE message_id = $1`, q.ID, err.Error())
	}
	if err != nil {
		return fmt.Errorf("record email %s: %w", q.ID, err)
	}
	if sent && s.Delivered != nil {
		var chainStart time.Time
		if q.chainTime.Valid {
			chainStart = time.UnixMilli(q.chainTime.Int64)
		}
		s.Delivered(q.kind, chainStart)
	}
	return nil
}
