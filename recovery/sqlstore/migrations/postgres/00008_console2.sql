-- Indexes for the console's audit log filters, account timeline and dashboard. Each audit index
-- ends in seq, so a filtered page is read newest first straight from the index (keyset paging by
-- seq, never OFFSET). The table is append-only; these are the only extra writes per event.

-- +goose Up
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq);
CREATE INDEX audit_events_ticket_idx ON audit_events (ticket_id, seq);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, target_type, seq);
CREATE INDEX audit_events_time_idx ON audit_events ("time");
CREATE INDEX tickets_closed_idx ON tickets (closed_at) WHERE state = 'closed';

-- +goose Down
DROP INDEX tickets_closed_idx;
DROP INDEX audit_events_time_idx;
DROP INDEX audit_events_target_idx;
DROP INDEX audit_events_ticket_idx;
DROP INDEX audit_events_actor_idx;
DROP INDEX audit_events_action_idx;
