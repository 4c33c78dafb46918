package sqlstore

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Agent console sessions.

func (t *sqlTx) AgentSession(idHash string) (s recovery.AgentSession, err error) {
	err = t.one("agent session", "SELECT id_hash, agent_id, epoch, verified, created_at, last_seen_at, step_up_at FROM agent_sessions WHERE id_hash = ?",
		func(r *sql.Rows) error {
			var created, seen, stepUp sql.NullInt64
			err := r.Scan(&s.IDHash, &s.AgentID, &s.Epoch, &s.Verified, &created, &seen, &stepUp)
			s.CreatedAt, s.LastSeenAt, s.StepUpAt = fromNanos(created), fromNanos(seen), fromNanos(stepUp)
			return err
		}, idHash)
	return s, err
}

func (t *sqlTx) InsertAgentSession(s recovery.AgentSession) error {
	var b binder
	created, seen, stepUp := b.time(s.CreatedAt), b.time(s.LastSeenAt), b.time(s.StepUpAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO agent_sessions (id_hash, agent_id, epoch, verified, created_at, last_seen_at, step_up_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		s.IDHash, s.AgentID, s.Epoch, s.Verified, created, seen, stepUp); err != nil {
		return fmt.Errorf("sqlstore: write agent session: %w", err)
	}
	return nil
}

func (t *sqlTx) UpdateAgentSession(s recovery.AgentSession) error {
	var b binder
	seen, stepUp := b.time(s.LastSeenAt), b.time(s.StepUpAt)
	if b.err != nil {
		return b.err
	}
	n, err := t.exec("UPDATE agent_sessions SET last_seen_at = ?, step_up_at = ? WHERE id_hash = ?", seen, stepUp, s.IDHash)
	if err != nil {
		return fmt.Errorf("sqlstore: write agent session: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("sqlstore: agent session: %w", recovery.ErrNotFound)
	}
	return nil
}

func (t *sqlTx) DeleteAgentSession(idHash string) error {
	if _, err := t.exec("DELETE FROM agent_sessions WHERE id_hash = ?", idHash); err != nil {
		return fmt.Errorf("sqlstore: delete agent session: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteAgentSessions(agentID string) error {
	if _, err := t.exec("DELETE FROM agent_sessions WHERE agent_id = ?", agentID); err != nil {
		return fmt.Errorf("sqlstore: delete agent sessions: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteStaleAgentSessions(createdBefore, seenBefore time.Time) (int64, error) {
	var b binder
	c, s := b.time(createdBefore), b.time(seenBefore)
	if b.err != nil {
		return 0, b.err
	}
	n, err := t.exec("DELETE FROM agent_sessions WHERE created_at < ? OR last_seen_at < ?", c, s)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete stale agent sessions: %w", err)
	}
	return n, nil
}
