package sqlstore

import (
	"fmt"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The last step of a restore (recovery.RestoreTx). The statements are the same on both dialects.

// restoreTokenTables maps every kind of single-use token the domain names
// (recovery.RestoreTokenKinds) to the table that holds it. Each table has used_at, NULL while the
// token is unused. A test lists every table of the migrated schema and fails on one that is
// neither here nor explicitly set aside, so a new token table cannot be forgotten.
var restoreTokenTables = map[string]string{
	recovery.TokenReenrollLink: "reenroll_tokens",
	recovery.TokenVetoLink:     "veto_tokens",
	recovery.TokenAgentSetup:   "agent_setup_tokens",
	recovery.TokenTelegramLink: "telegram_link_tokens",
	recovery.TokenEmailCheck:   "email_codes",
}

func (t *sqlTx) AdvanceLastSteps(step int64, at time.Time) (int64, error) {
	var b binder
	updated := b.time(at)
	if b.err != nil {
		return 0, b.err
	}
	n, err := t.exec("UPDATE factors SET last_step = ?, updated_at = ? WHERE last_step < ?", step, updated, step)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: advance replay steps: %w", err)
	}
	return n, nil
}

func (t *sqlTx) EndAllSessions() (agent, user int64, err error) {
	if agent, err = t.exec("DELETE FROM agent_sessions"); err != nil {
		return 0, 0, fmt.Errorf("sqlstore: end agent sessions: %w", err)
	}
	if user, err = t.exec("DELETE FROM user_sessions"); err != nil {
		return 0, 0, fmt.Errorf("sqlstore: end user sessions: %w", err)
	}
	return agent, user, nil
}

func (t *sqlTx) VoidUnusedTokens(at time.Time) (map[string]int64, error) {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return nil, b.err
	}
	out := map[string]int64{}
	for _, kind := range recovery.RestoreTokenKinds() {
		table, ok := restoreTokenTables[kind]
		if !ok {
			return nil, fmt.Errorf("sqlstore: no table for single-use tokens of kind %q", kind)
		}
		n, err := t.exec("UPDATE "+table+" SET used_at = ? WHERE used_at IS NULL", used)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: void %s: %w", table, err)
		}
		out[kind] = n
	}
	return out, nil
}
