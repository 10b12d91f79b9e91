-- Emails are queued in the handler's transaction and sent after it commits (an outbox for
-- email): the handler does no I/O, and the window in which a crash can send an email twice
-- shrinks to the moment between the mail server's acceptance and the one-row update recording
-- it. The table is rebuilt because SQLite cannot drop a NOT NULL in place.
CREATE TABLE notifications_v2 (
    message_id     TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    account_id     TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    msg_date       BIGINT  NOT NULL, -- unix seconds, the Date header
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    queued_at      BIGINT  NOT NULL, -- unix milliseconds
    sent_at        BIGINT,           -- unix milliseconds
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   BIGINT  NOT NULL DEFAULT 0, -- unix milliseconds
    last_error     TEXT,
    UNIQUE (kind, user_id)
);
INSERT INTO notifications_v2 (message_id, kind, user_id, account_id, recipient, subject, body, msg_date,
        event_id, event_type, correlation_id, status, queued_at, sent_at)
    SELECT message_id, kind, user_id, account_id, recipient, subject, '', sent_at / 1000,
        event_id, event_type, correlation_id, 'sent', sent_at, sent_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_v2 RENAME TO notifications;
CREATE INDEX notifications_account ON notifications (account_id, queued_at);
CREATE INDEX notifications_pending ON notifications (status, next_attempt);
