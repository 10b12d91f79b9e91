-- The Account Service's effects outside Kafka (an account rejected), one row per causing event,
-- written in the handler's transaction with the change itself; GET /effects serves them.
CREATE TABLE effects (
    event_id       TEXT   PRIMARY KEY,
    correlation_id TEXT   NOT NULL,
    effect         TEXT   NOT NULL,
    account_id     TEXT   NOT NULL,
    at             BIGINT NOT NULL -- unix milliseconds
);
CREATE INDEX effects_correlation ON effects (correlation_id);
