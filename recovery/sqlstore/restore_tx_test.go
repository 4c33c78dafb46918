package sqlstore_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// restoreSetAside are the tables a restore leaves as the backup had them, each with the reason.
// A table of single-use tokens or sessions does not belong here: add it to the restore.
var restoreSetAside = map[string]string{
	"goose_db_version":  "schema bookkeeping",
	"accounts":          "data of record",
	"factors":           "advanced by AdvanceLastSteps (the replay guard), otherwise data of record",
	"recovery_codes":    "long-lived codes the users hold: nothing in a backup says which were used since",
	"api_keys":          "long-lived credentials, revoked by hand",
	"ip_throttles":      "counters, not credentials",
	"audit_events":      "the chain: the restore appends to it",
	"tickets":           "data of record",
	"ticket_messages":   "data of record",
	"checklist_results": "data of record",
	"telegram_links":    "links of record, not tokens",
	"agents":            "data of record",
	"notices":           "the outbox: notices are delivered at least once",
	"telegram_updates":  "processed update ids",
	"telegram_offset":   "the poller's offset",
	"bot_chats":         "conversation steps",
	"account_sign_in":   "counters, not credentials",
	"agent_sessions":    "ended by EndAllSessions",
	"user_sessions":     "ended by EndAllSessions",
}

// tables lists the tables of the migrated database behind dsn.
func tables(t *testing.T, dsn string) []string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if sqlstore.IsPostgres(dsn) {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	rows, err := rawDB(t, dsn).QueryContext(bg, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestRestoreCoversEveryTable fails when a migration adds a table that the restore neither
// handles nor sets aside with a reason: a new kind of single-use token or session must not
// survive a restore by being forgotten. Every kind the domain names has a table with used_at.
func TestRestoreCoversEveryTable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, _ *sqlstore.Store, dsn string) {
		tokenTables := map[string]bool{}
		for _, kind := range recovery.RestoreTokenKinds() {
			table, ok := sqlstore.RestoreTokenTables[kind]
			if !ok {
				t.Errorf("token kind %q has no table", kind)
				continue
			}
			tokenTables[table] = true
			q := "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = 'used_at'"
			if sqlstore.IsPostgres(dsn) {
				q = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = 'used_at'"
			}
			if count(t, dsn, q, table) != 1 {
				t.Errorf("token table %s has no used_at column", table)
			}
		}
		if len(sqlstore.RestoreTokenTables) != len(recovery.RestoreTokenKinds()) {
			t.Errorf("the store voids %d kinds of token, the domain names %d", len(sqlstore.RestoreTokenTables), len(recovery.RestoreTokenKinds()))
		}
		got := tables(t, dsn)
		for _, table := range got {
			if !tokenTables[table] && restoreSetAside[table] == "" {
				t.Errorf("table %s is new to the restore: if it holds single-use tokens or sessions, the restore must void "+
					"or end them (sqlstore/restore_tx.go); otherwise set it aside with a reason in restoreSetAside", table)
			}
		}
		for table := range restoreSetAside {
			if !slices.Contains(got, table) {
				t.Errorf("restoreSetAside names %s, which the schema lacks", table)
			}
		}
	})
}

// TestRestoreTx: the three statements of the last step, on both dialects. Used tokens keep
// their time of use; unused ones of every table are voided; every session ends; only factors
// below the step move.
func TestRestoreTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		putFactor(t, s, "low", 100)
		putFactor(t, s, "high", 900)
		putAccount(t, s, "a")
		for _, q := range []string{
			"INSERT INTO tickets (id, account_id, claimed, channel, state, policy_version, version, created_at, updated_at, progress_at) VALUES ('T1', 'a', 'a', 'console', 'open', 'p', 1, 1, 1, 1)",
			"INSERT INTO tickets (id, account_id, claimed, channel, state, policy_version, version, created_at, updated_at, progress_at) VALUES ('T2', 'a', 'a', 'console', 'open', 'p', 1, 1, 1, 1)",
			"INSERT INTO agents (id, email, email_key, name, role, created_at, updated_at) VALUES ('g1', 'g@x', 'g@x', 'G', 'agent', 1, 1)",
			"INSERT INTO reenroll_tokens (hash, account_id, ticket_id, created_at, expires_at, used_at) VALUES ('r1', 'a', 'T1', 1, 9, NULL), ('r2', 'a', 'T1', 1, 9, 5)",
			"INSERT INTO veto_tokens (hash, ticket_id, channel, created_at, used_at) VALUES ('v1', 'T1', 'email', 1, NULL), ('v2', 'T1', 'email', 1, 5)",
			"INSERT INTO agent_setup_tokens (hash, agent_id, purpose, created_at, expires_at, used_at) VALUES ('s1', 'g1', 'setup', 1, 9, NULL), ('s2', NULL, 'first_admin', 1, 9, 5)",
			"INSERT INTO telegram_link_tokens (hash, account_id, created_at, expires_at, used_at) VALUES ('l1', 'a', 1, 9, NULL), ('l2', 'a', 1, 9, 5)",
			"INSERT INTO email_codes (ticket_id, hash, created_at, expires_at, used_at) VALUES ('T1', 'e1', 1, 9, NULL), ('T2', 'e2', 1, 9, 5)",
			"INSERT INTO agent_sessions (id_hash, agent_id, epoch, created_at, last_seen_at) VALUES ('as1', 'g1', 0, 1, 1), ('as2', 'g1', 0, 1, 1)",
			"INSERT INTO user_sessions (id_hash, account_id, created_at, last_seen_at, expires_at) VALUES ('us1', 'a', 1, 1, 9)",
		} {
			storetest.Exec(t, dsn, q)
		}
		var steps, agentEnded, userEnded int64
		var voided map[string]int64
		update(t, s, func(tx recovery.Tx) (err error) {
			if steps, err = tx.AdvanceLastSteps(500, t0); err != nil {
				return err
			}
			if agentEnded, userEnded, err = tx.EndAllSessions(); err != nil {
				return err
			}
			voided, err = tx.VoidUnusedTokens(t0)
			return err
		})
		if steps != 1 || agentEnded != 2 || userEnded != 1 {
			t.Errorf("advanced %d factors, ended %d agent and %d user sessions; want 1, 2, 1", steps, agentEnded, userEnded)
		}
		view(t, s, func(tx recovery.ReadTx) error {
			for id, want := range map[string]int64{"low": 500, "high": 900} {
				if f := must(tx.Factor(id)); f.LastStep != want {
					t.Errorf("factor %s at step %d, want %d", id, f.LastStep, want)
				}
			}
			return nil
		})
		for _, kind := range recovery.RestoreTokenKinds() {
			table := sqlstore.RestoreTokenTables[kind]
			if voided[kind] != 1 {
				t.Errorf("%s: %d voided, want 1", kind, voided[kind])
			}
			if n := count(t, dsn, "SELECT COUNT(*) FROM "+table+" WHERE used_at IS NULL"); n != 0 {
				t.Errorf("%s: %d tokens still unused", table, n)
			}
			if n := count(t, dsn, "SELECT COUNT(*) FROM "+table+" WHERE used_at = ?", t0.UnixNano()); n != 1 {
				t.Errorf("%s: %d tokens voided at the restore's time, want 1", table, n)
			}
			if n := count(t, dsn, "SELECT COUNT(*) FROM "+table+" WHERE used_at = 5"); n != 1 {
				t.Errorf("%s: the token used before lost its time of use", table)
			}
		}
		for _, table := range []string{"agent_sessions", "user_sessions"} {
			if n := count(t, dsn, "SELECT COUNT(*) FROM "+table); n != 0 {
				t.Errorf("%s: %d rows left", table, n)
			}
		}
	})
}
