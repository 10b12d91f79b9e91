-- Accounts can be rejected by the User Service (username taken): a new status and its reason.
-- The table is rebuilt because SQLite cannot alter a CHECK constraint in place.
CREATE TABLE accounts_v2 (
    id              TEXT   PRIMARY KEY,
    username        TEXT   NOT NULL,
    email           TEXT   NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('active', 'deleted', 'rejected')),
    created_at      BIGINT NOT NULL, -- unix milliseconds
    deleted_at      BIGINT,
    rejected_reason TEXT
);
INSERT INTO accounts_v2 (id, username, email, status, created_at, deleted_at)
    SELECT id, username, email, status, created_at, deleted_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v2 RENAME TO accounts;
