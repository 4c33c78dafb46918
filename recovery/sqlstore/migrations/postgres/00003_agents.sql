-- Support desk agents, their credentials and their one-time setup links. An agent's TOTP factor
-- is the factor of the internal account row "agent/<agent id>" (created with the agent), so it
-- lives in accounts and factors like every other. Times are BIGINT Unix nanoseconds, NULL for
-- never.

-- +goose Up
CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    epoch         BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL DEFAULT '',
    failures      INTEGER NOT NULL DEFAULT 0,
    blocked_until BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE UNIQUE INDEX agents_email_key_uq ON agents (email_key);

-- hash is hashToken("agent_setup", token); agent_id is NULL for the first-admin link.
CREATE TABLE agent_setup_tokens (
    hash       TEXT PRIMARY KEY,
    agent_id   TEXT REFERENCES agents (id),
    purpose    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX agent_setup_tokens_agent_idx ON agent_setup_tokens (agent_id);

-- +goose Down
DROP TABLE agent_setup_tokens;
DROP TABLE agents;
