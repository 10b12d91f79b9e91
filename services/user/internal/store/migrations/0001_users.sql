-- One row per account, kept after deletion (deleted_at set) so that a late or repeated
-- AccountCreated of a deleted account cannot bring its user back.
CREATE TABLE users (
    id         TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL UNIQUE,
    username   TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    created_at BIGINT NOT NULL, -- unix milliseconds
    deleted_at BIGINT
);
