-- Agent console sessions (security.md "agent session"): the id is only in the agent's cookie;
-- id_hash is hashToken("agent_session", id). Times are INTEGER Unix nanoseconds, NULL for never.
-- Also the indexes of the console's queue (keyset pagination by opened_at, id).

-- +goose Up
CREATE TABLE agent_sessions (
    id_hash      TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents (id),
    epoch        INTEGER NOT NULL,
    verified     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    step_up_at   INTEGER
) STRICT;

CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent_id);
CREATE INDEX agent_sessions_seen_idx ON agent_sessions (last_seen_at);

-- The queue lists tickets newest first and pages by (created_at, id); the second index serves
-- the same order within one state (the default "active" views filter by state).
CREATE INDEX tickets_created_idx ON tickets (created_at, id);
CREATE INDEX tickets_state_created_idx ON tickets (state, created_at, id);
CREATE INDEX tickets_claimed_idx ON tickets (claimed);

-- +goose Down
DROP INDEX tickets_claimed_idx;
DROP INDEX tickets_state_created_idx;
DROP INDEX tickets_created_idx;
DROP TABLE agent_sessions;
