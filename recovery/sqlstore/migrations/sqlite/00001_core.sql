-- Core schema of RecoveryDesk on SQLite.
--
-- Times are INTEGER Unix nanoseconds, NULL for "never" (the zero time.Time). Tables are STRICT so
-- that a value of the wrong type is refused instead of stored.
--
-- audit_events is append-only: the triggers audit_events_no_update and audit_events_no_delete
-- abort any UPDATE or DELETE. A tamper test (or an operator who means it) has to
-- DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; first, and the audit
-- chain then shows what was changed.

-- +goose Up
CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL DEFAULT '',
    email_key        TEXT NOT NULL,
    display_name     TEXT NOT NULL DEFAULT '',
    phone            TEXT NOT NULL DEFAULT '',
    staff            INTEGER NOT NULL DEFAULT 0,
    password_hash    TEXT NOT NULL DEFAULT '',
    facts_sealed     TEXT NOT NULL DEFAULT '',
    email_changed_at INTEGER,
    phone_changed_at INTEGER,
    created_at       INTEGER,
    updated_at       INTEGER
) STRICT;

CREATE UNIQUE INDEX accounts_email_key_uq ON accounts (email_key);

CREATE TABLE factors (
    account_id         TEXT PRIMARY KEY REFERENCES accounts (id),
    state              TEXT NOT NULL,
    secret_sealed      TEXT NOT NULL DEFAULT '',
    enrolled_at        INTEGER,
    last_step          INTEGER NOT NULL DEFAULT 0,
    pending_sealed     TEXT NOT NULL DEFAULT '',
    pending_expires_at INTEGER,
    failures           INTEGER NOT NULL DEFAULT 0,
    blocked_until      INTEGER,
    code_failures      INTEGER NOT NULL DEFAULT 0,
    code_blocked_until INTEGER,
    hold_until         INTEGER,
    updated_at         INTEGER
) STRICT;

CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    hash       TEXT NOT NULL,
    created_at INTEGER,
    used_at    INTEGER
) STRICT;

CREATE INDEX recovery_codes_account_idx ON recovery_codes (account_id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at INTEGER,
    revoked_at INTEGER
) STRICT;

CREATE TABLE ip_throttles (
    ip            TEXT PRIMARY KEY,
    bucket_start  INTEGER,
    buckets       TEXT NOT NULL DEFAULT '',
    blocked_until INTEGER
) STRICT;

CREATE TABLE reenroll_tokens (
    hash       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    ticket_id  TEXT NOT NULL DEFAULT '',
    created_at INTEGER,
    expires_at INTEGER,
    used_at    INTEGER
) STRICT;

CREATE INDEX reenroll_tokens_account_idx ON reenroll_tokens (account_id);

-- seq is assigned by the domain (head + 1 under the chain's append lock), not by the database:
-- a duplicate seq is a primary-key violation, never a silent fork of the chain.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    "time"      INTEGER NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    ticket_id   TEXT,
    reason      TEXT NOT NULL,
    details     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP TABLE audit_events;
DROP TABLE reenroll_tokens;
DROP TABLE ip_throttles;
DROP TABLE api_keys;
DROP TABLE recovery_codes;
DROP TABLE factors;
DROP TABLE accounts;
