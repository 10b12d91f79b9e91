-- One row per email sent. The unique (kind, user_id) is the business idempotency key: one
-- welcome and one farewell per user, whatever events arrive.
CREATE TABLE notifications (
    message_id TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    correlation_id TEXT NOT NULL,
    sent_at    BIGINT NOT NULL, -- unix milliseconds
    UNIQUE (kind, user_id)
);
CREATE INDEX notifications_account ON notifications (account_id, sent_at);
