-- Indexes for the console's audit log filters, account timeline and dashboard. Each audit index
-- ends in seq, so a filtered page is read newest first straight from the index (keyset paging by
-- seq, never OFFSET). The table is append-only; these are the only extra writes per event.
--
-- Code checks (totp.verified, totp.failed) are most of the chain — one per login — and are left
-- out of every index (partial indexes), so that the verify path still writes its event and no
-- index entry. Queries that want an index repeat the predicate (sqlstore.auditIndexed); a filter
-- on those two actions reads the chain in seq order instead, where they are dense.

-- +goose Up
CREATE INDEX audit_events_action_idx ON audit_events (action, seq) WHERE action NOT IN ('totp.verified', 'totp.failed');
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq) WHERE action NOT IN ('totp.verified', 'totp.failed');
CREATE INDEX audit_events_ticket_idx ON audit_events (ticket_id, seq) WHERE ticket_id IS NOT NULL;
CREATE INDEX audit_events_target_idx ON audit_events (target_id, target_type, seq) WHERE action NOT IN ('totp.verified', 'totp.failed');
CREATE INDEX audit_events_time_idx ON audit_events ("time") WHERE action NOT IN ('totp.verified', 'totp.failed');
CREATE INDEX tickets_closed_idx ON tickets (closed_at) WHERE state = 'closed';

-- +goose Down
DROP INDEX tickets_closed_idx;
DROP INDEX audit_events_time_idx;
DROP INDEX audit_events_target_idx;
DROP INDEX audit_events_ticket_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_action_idx;
