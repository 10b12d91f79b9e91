-- inbox: the events a consumer group has applied; written in the same transaction as the
-- handler's effects, so a redelivered event is recognised and acknowledged without effect.
CREATE TABLE inbox (
    consumer     TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    event_type   TEXT   NOT NULL,
    processed_at BIGINT NOT NULL, -- unix milliseconds
    PRIMARY KEY (consumer, event_id)
);

-- outbox: records to publish, written in the same transaction as the state change that causes
-- them; the relay publishes them in seq order and deletes them once acknowledged.
CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    topic      TEXT   NOT NULL,
    key        BYTEA,
    value      BYTEA,
    headers    BYTEA  NOT NULL,
    created_at BIGINT NOT NULL -- unix milliseconds
);
