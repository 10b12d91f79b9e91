CREATE TABLE accounts (
    id         TEXT    PRIMARY KEY,
    username   TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('active', 'deleted')),
    created_at BIGINT NOT NULL, -- unix milliseconds
    deleted_at BIGINT
);
