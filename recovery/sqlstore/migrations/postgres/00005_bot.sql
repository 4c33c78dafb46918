-- The Telegram bot's state. Times are BIGINT Unix nanoseconds, NULL for never.
--
-- telegram_updates holds every processed update_id (inserted in the same transaction as the
-- update's effects and reply, so a redelivered update is recognised); rows older than Telegram's
-- own 24 h redelivery horizon are pruned. telegram_offset is the single row with the next
-- update_id the poller asks for. bot_chats is each private chat's conversation step.
-- telegram_link_tokens are the single-use /start tokens, stored as hashes.

-- +goose Up
CREATE TABLE telegram_updates (
    update_id    BIGINT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);
CREATE INDEX telegram_updates_processed_idx ON telegram_updates (processed_at);

CREATE TABLE telegram_offset (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    next_update_id BIGINT NOT NULL
);

CREATE TABLE bot_chats (
    chat_id    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    ticket_id  TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

CREATE TABLE telegram_link_tokens (
    hash       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX telegram_link_tokens_account_idx ON telegram_link_tokens (account_id);

-- +goose Down
DROP TABLE telegram_link_tokens;
DROP TABLE bot_chats;
DROP TABLE telegram_offset;
DROP TABLE telegram_updates;
