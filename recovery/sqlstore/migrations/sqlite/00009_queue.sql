-- The console's default queue lists the active tickets newest first. A partial index on the
-- active states keeps that list in order, so a page reads its 25 rows instead of sorting every
-- active ticket (sqlstore.activeStatesSQL repeats the predicate word for word, which is how SQLite
-- and PostgreSQL know the index applies).

-- +goose Up
CREATE INDEX tickets_active_created_idx ON tickets (created_at, id) WHERE state IN ('open', 'verifying', 'pending_approval', 'cooling_off', 'ready', 'executed', 'frozen');

-- +goose Down
DROP INDEX tickets_active_created_idx;
