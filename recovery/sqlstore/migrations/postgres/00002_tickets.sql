-- Recovery tickets, their thread and checklist, e-mail check codes, veto tokens, Telegram links
-- and end-user sessions (ended by a reset). Times are BIGINT Unix nanoseconds, NULL for never.

-- +goose Up
CREATE TABLE tickets (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL DEFAULT '', -- '' when the claimed account does not exist
    claimed            TEXT NOT NULL,
    channel            TEXT NOT NULL,
    chat_id            TEXT NOT NULL DEFAULT '',
    chat_linked_before BOOLEAN NOT NULL DEFAULT FALSE,
    state              TEXT NOT NULL,
    outcome            TEXT NOT NULL DEFAULT '',
    assignee_id        TEXT NOT NULL DEFAULT '',
    policy_version     TEXT NOT NULL,
    risk               TEXT NOT NULL DEFAULT '',
    staff              BOOLEAN NOT NULL DEFAULT FALSE,
    high_risk          BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by       TEXT NOT NULL DEFAULT '',
    requested_at       BIGINT,
    approved_by        TEXT NOT NULL DEFAULT '',
    approved_at        BIGINT,
    cooling_until      BIGINT,
    frozen_from        TEXT NOT NULL DEFAULT '',
    executed_by        TEXT NOT NULL DEFAULT '',
    executed_at        BIGINT,
    hold_until         BIGINT,
    link_expires_at    BIGINT,
    closed_at          BIGINT,
    version            INTEGER NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    progress_at        BIGINT NOT NULL,
    user_message_at    BIGINT
);

CREATE INDEX tickets_account_idx ON tickets (account_id, created_at);
CREATE INDEX tickets_state_idx ON tickets (state, progress_at);

CREATE TABLE ticket_messages (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       TEXT NOT NULL REFERENCES tickets (id),
    direction       TEXT NOT NULL,
    author_type     TEXT NOT NULL,
    author_id       TEXT NOT NULL,
    body            TEXT NOT NULL,
    evidence_ref    TEXT NOT NULL DEFAULT '',
    evidence_sha256 TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);

CREATE INDEX ticket_messages_ticket_idx ON ticket_messages (ticket_id, id);

CREATE TABLE checklist_results (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       TEXT NOT NULL REFERENCES tickets (id),
    item_key        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    passed          BOOLEAN NOT NULL,
    method          TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    evidence_sha256 TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);

CREATE INDEX checklist_results_ticket_idx ON checklist_results (ticket_id, id);

CREATE TABLE email_codes (
    ticket_id  TEXT PRIMARY KEY REFERENCES tickets (id),
    hash       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE veto_tokens (
    hash       TEXT PRIMARY KEY,
    ticket_id  TEXT NOT NULL REFERENCES tickets (id),
    channel    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX veto_tokens_ticket_idx ON veto_tokens (ticket_id);

CREATE TABLE telegram_links (
    chat_id    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    linked_at  BIGINT NOT NULL
);

CREATE UNIQUE INDEX telegram_links_account_uq ON telegram_links (account_id);

CREATE TABLE user_sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX user_sessions_account_idx ON user_sessions (account_id);

-- +goose Down
DROP TABLE user_sessions;
DROP TABLE telegram_links;
DROP TABLE veto_tokens;
DROP TABLE email_codes;
DROP TABLE checklist_results;
DROP TABLE ticket_messages;
DROP TABLE tickets;
