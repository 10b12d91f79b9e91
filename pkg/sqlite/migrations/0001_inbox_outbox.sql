-- inbox: the events a consumer group has applied; written in the same transaction as the
-- handler's effects, so a redelivered event is recognised and acknowledged without effect.
CREATE TABLE inbox (
    consumer     TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;

-- outbox: records to publish, written in the same transaction as the state change that causes
-- them; the relay publishes them in seq order and deletes them once acknowledged.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT    NOT NULL,
    key        BLOB,
    value      BLOB,
    headers    BLOB    NOT NULL,
    created_at INTEGER NOT NULL -- unix milliseconds
);
