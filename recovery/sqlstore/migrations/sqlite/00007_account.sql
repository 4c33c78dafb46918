-- End-user pages: the stage of a session (a password-only session waits for its 6-digit code
-- and opens nothing else) and the per-account counter of failed passwords, kept apart from the
-- accounts row that the host's upserts rewrite. Times are Unix nanoseconds, NULL for never.

-- +goose Up
ALTER TABLE user_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';

CREATE TABLE account_sign_in (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (id),
    failures      INTEGER NOT NULL DEFAULT 0,
    blocked_until INTEGER
) STRICT;

-- +goose Down
DROP TABLE account_sign_in;
ALTER TABLE user_sessions DROP COLUMN stage;
