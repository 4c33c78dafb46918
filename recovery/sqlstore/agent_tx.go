package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Agents.

// agentCols select an Agent; PasswordSet is derived from the hash, which itself is only read
// by AgentCredentials.
const agentCols = "id, email, email_key, name, role, disabled, epoch, password_hash <> '', created_at, updated_at"

func scanAgent(r *sql.Rows) (recovery.Agent, error) {
	var a recovery.Agent
	var created, updated sql.NullInt64
	err := r.Scan(&a.ID, &a.Email, &a.EmailKey, &a.Name, &a.Role, &a.Disabled, &a.Epoch, &a.PasswordSet, &created, &updated)
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	return a, err
}

func (t *sqlTx) agent(q string, arg any) (a recovery.Agent, err error) {
	err = t.one("agent", q, func(r *sql.Rows) (err error) {
		a, err = scanAgent(r)
		return err
	}, arg)
	return a, err
}

func (t *sqlTx) Agent(id string) (recovery.Agent, error) {
	return t.agent("SELECT "+agentCols+" FROM agents WHERE id = ?", id)
}

func (t *sqlTx) AgentByEmail(emailKey string) (recovery.Agent, error) {
	return t.agent("SELECT "+agentCols+" FROM agents WHERE email_key = ?", emailKey)
}

// LockAgent reads the agent with a row lock on PostgreSQL; on SQLite the writer's BEGIN
// IMMEDIATE already holds the database's write lock.
func (t *sqlTx) LockAgent(id string) (recovery.Agent, error) {
	q := "SELECT " + agentCols + " FROM agents WHERE id = ?"
	if t.dialect == DialectPostgres {
		q += " FOR UPDATE"
	}
	return t.agent(q, id)
}

// Agents lists the agents oldest first.
func (t *sqlTx) Agents() ([]recovery.Agent, error) {
	return all(t, "agents", "SELECT "+agentCols+" FROM agents ORDER BY created_at, id", scanAgent)
}

// PutAgent inserts or updates the profile; password_hash and the throttle are left alone (a
// new row starts without a password). On PostgreSQL the statement runs in a savepoint so that a
// duplicate e-mail leaves the transaction usable, as PutAccount does.
func (t *sqlTx) PutAgent(a recovery.Agent) error {
	var b binder
	args := []any{a.ID, a.Email, a.EmailKey, a.Name, a.Role, a.Disabled, a.Epoch, b.time(a.CreatedAt), b.time(a.UpdatedAt)}
	if b.err != nil {
		return b.err
	}
	const q = "INSERT INTO agents (id, email, email_key, name, role, disabled, epoch, created_at, updated_at) " +
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_key = excluded.email_key, name = excluded.name, " +
		"role = excluded.role, disabled = excluded.disabled, epoch = excluded.epoch, " +
		"created_at = excluded.created_at, updated_at = excluded.updated_at"
	pg := t.dialect == DialectPostgres
	if pg {
		if _, err := t.exec("SAVEPOINT put_agent"); err != nil {
			return fmt.Errorf("sqlstore: write agent: %w", err)
		}
	}
	if _, err := t.exec(q, args...); err != nil {
		if pg {
			if _, rerr := t.exec("ROLLBACK TO SAVEPOINT put_agent"); rerr != nil {
				return fmt.Errorf("sqlstore: write agent: %w", errors.Join(err, rerr))
			}
		}
		if agentEmailTaken(err) {
			return fmt.Errorf("sqlstore: write agent: %w", recovery.ErrEmailTaken)
		}
		return fmt.Errorf("sqlstore: write agent: %w", err)
	}
	if pg {
		if _, err := t.exec("RELEASE SAVEPOINT put_agent"); err != nil {
			return fmt.Errorf("sqlstore: write agent: %w", err)
		}
	}
	return nil
}

// agentEmailTaken reports a unique violation of agents.email_key.
func agentEmailTaken(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique && strings.Contains(se.Error(), "agents.email_key")
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == "agents_email_key_uq"
	}
	return false
}

func (t *sqlTx) AgentCredentials(agentID string) (c recovery.AgentCredentials, err error) {
	err = t.one("agent credentials", "SELECT id, password_hash, failures, blocked_until FROM agents WHERE id = ?",
		func(r *sql.Rows) error {
			var blocked sql.NullInt64
			err := r.Scan(&c.AgentID, &c.PasswordHash, &c.Failures, &blocked)
			c.BlockedUntil = fromNanos(blocked)
			return err
		}, agentID)
	return c, err
}

func (t *sqlTx) PutAgentCredentials(c recovery.AgentCredentials) error {
	var b binder
	blocked := b.time(c.BlockedUntil)
	if b.err != nil {
		return b.err
	}
	n, err := t.exec("UPDATE agents SET password_hash = ?, failures = ?, blocked_until = ? WHERE id = ?",
		c.PasswordHash, c.Failures, blocked, c.AgentID)
	if err != nil {
		return fmt.Errorf("sqlstore: write agent credentials: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("sqlstore: agent credentials: %w", recovery.ErrNotFound)
	}
	return nil
}

// Agent setup tokens.

func (t *sqlTx) AgentSetupToken(hash string) (st recovery.AgentSetupToken, err error) {
	err = t.one("agent setup token", "SELECT hash, agent_id, purpose, created_at, expires_at, used_at FROM agent_setup_tokens WHERE hash = ?",
		func(r *sql.Rows) error {
			var agent sql.NullString
			var created, expires, used sql.NullInt64
			err := r.Scan(&st.Hash, &agent, &st.Purpose, &created, &expires, &used)
			st.AgentID = agent.String
			st.CreatedAt, st.ExpiresAt, st.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
			return err
		}, hash)
	return st, err
}

// PutAgentSetupToken inserts the token; AgentID "" is stored as NULL (the first-admin link).
func (t *sqlTx) PutAgentSetupToken(st recovery.AgentSetupToken) error {
	var b binder
	created, expires, used := b.time(st.CreatedAt), b.time(st.ExpiresAt), b.time(st.UsedAt)
	if b.err != nil {
		return b.err
	}
	var agent any
	if st.AgentID != "" {
		agent = st.AgentID
	}
	if _, err := t.exec("INSERT INTO agent_setup_tokens (hash, agent_id, purpose, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)",
		st.Hash, agent, st.Purpose, created, expires, used); err != nil {
		return fmt.Errorf("sqlstore: write agent setup token: %w", err)
	}
	return nil
}

// UseAgentSetupToken is one conditional UPDATE: of two transactions using the same link only
// one sees a row affected.
func (t *sqlTx) UseAgentSetupToken(hash string, at time.Time) (bool, error) {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("UPDATE agent_setup_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL", used, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: use agent setup token: %w", err)
	}
	return n == 1, nil
}

func (t *sqlTx) UseAgentSetupTokens(agentID string, at time.Time) error {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return b.err
	}
	q, args := "UPDATE agent_setup_tokens SET used_at = ? WHERE agent_id = ? AND used_at IS NULL", []any{used, agentID}
	if agentID == "" {
		q, args = "UPDATE agent_setup_tokens SET used_at = ? WHERE agent_id IS NULL AND used_at IS NULL", []any{used}
	}
	if _, err := t.exec(q, args...); err != nil {
		return fmt.Errorf("sqlstore: use agent setup tokens: %w", err)
	}
	return nil
}
