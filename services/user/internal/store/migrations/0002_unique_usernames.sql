-- Usernames are unique among live users (a deleted user's name is free again). The User Service
-- is the authority: a registration whose username is taken is rejected, and the rejection is
-- recorded once per account so that a repeated AccountCreated rejects nothing twice.
CREATE UNIQUE INDEX users_username_live ON users (username) WHERE deleted_at IS NULL;

CREATE TABLE rejections (
    account_id  TEXT   PRIMARY KEY,
    username    TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    rejected_at BIGINT NOT NULL -- unix milliseconds
);
