-- The notifications outbox: notices written in the same transaction as the change that causes
-- them, delivered afterwards by dispatchers. Times are INTEGER Unix nanoseconds, NULL for never.
--
-- body_sealed is the sealed payload (text and the secrets in it); masked is the text with the
-- secrets replaced, the only form shown to agents. claimed_until is a dispatcher's lease: a
-- notice claimed until a later time is being sent by someone. recipient is '' for the host
-- webhook. The partial indexes serve the dispatchers' query (due notices of a channel, and
-- whether an earlier notice to the same recipient still waits).

-- +goose Up
CREATE TABLE notices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL,
    account_id      TEXT NOT NULL DEFAULT '',
    ticket_id       TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL DEFAULT '',
    body_sealed     TEXT NOT NULL,
    masked          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX notices_due_idx ON notices (channel, next_attempt_at) WHERE state = 'queued';
CREATE INDEX notices_recipient_idx ON notices (channel, recipient, id) WHERE state = 'queued';
CREATE INDEX notices_ticket_idx ON notices (ticket_id, id);
CREATE INDEX notices_account_idx ON notices (account_id, id);

-- +goose Down
DROP TABLE notices;
