package sqlstore

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Tickets.

const ticketCols = "id, account_id, claimed, channel, chat_id, chat_linked_before, state, outcome, assignee_id, " +
	"policy_version, risk, staff, high_risk, requested_by, requested_at, approved_by, approved_at, cooling_until, " +
	"frozen_from, executed_by, executed_at, hold_until, link_expires_at, closed_at, version, created_at, updated_at, " +
	"progress_at, user_message_at"

func scanTicket(r *sql.Rows) (recovery.Ticket, error) {
	var t recovery.Ticket
	var state, risk, frozenFrom string
	var requested, approved, cooling, executed, hold, linkExp, closed, created, updated, progress, userMsg sql.NullInt64
	err := r.Scan(&t.ID, &t.AccountID, &t.Claimed, &t.Channel, &t.ChatID, &t.ChatLinkedBefore, &state, &t.Outcome,
		&t.AssigneeID, &t.PolicyVersion, &risk, &t.Staff, &t.HighRisk, &t.RequestedBy, &requested, &t.ApprovedBy,
		&approved, &cooling, &frozenFrom, &t.ExecutedBy, &executed, &hold, &linkExp, &closed, &t.Version, &created,
		&updated, &progress, &userMsg)
	t.State, t.FrozenFrom = recovery.TicketState(state), recovery.TicketState(frozenFrom)
	if risk != "" {
		for _, s := range strings.Split(risk, ",") {
			t.Risk = append(t.Risk, recovery.RiskSignal(s))
		}
	}
	t.RequestedAt, t.ApprovedAt, t.CoolingUntil = fromNanos(requested), fromNanos(approved), fromNanos(cooling)
	t.ExecutedAt, t.HoldUntil, t.LinkExpiresAt, t.ClosedAt = fromNanos(executed), fromNanos(hold), fromNanos(linkExp), fromNanos(closed)
	t.CreatedAt, t.UpdatedAt, t.ProgressAt, t.UserMessageAt = fromNanos(created), fromNanos(updated), fromNanos(progress), fromNanos(userMsg)
	return t, err
}

func ticketArgs(t recovery.Ticket) ([]any, error) {
	var b binder
	risk := make([]string, len(t.Risk))
	for i, r := range t.Risk {
		risk[i] = string(r)
	}
	args := []any{t.ID, t.AccountID, t.Claimed, t.Channel, t.ChatID, t.ChatLinkedBefore, string(t.State), t.Outcome,
		t.AssigneeID, t.PolicyVersion, strings.Join(risk, ","), t.Staff, t.HighRisk, t.RequestedBy, b.time(t.RequestedAt),
		t.ApprovedBy, b.time(t.ApprovedAt), b.time(t.CoolingUntil), string(t.FrozenFrom), t.ExecutedBy,
		b.time(t.ExecutedAt), b.time(t.HoldUntil), b.time(t.LinkExpiresAt), b.time(t.ClosedAt), t.Version,
		b.time(t.CreatedAt), b.time(t.UpdatedAt), b.time(t.ProgressAt), b.time(t.UserMessageAt)}
	return args, b.err
}

func (t *sqlTx) ticket(id string, lock bool) (tk recovery.Ticket, err error) {
	q := "SELECT " + ticketCols + " FROM tickets WHERE id = ?"
	if lock && t.dialect == DialectPostgres {
		q += " FOR UPDATE"
	}
	err = t.one("ticket", q, func(r *sql.Rows) (err error) {
		tk, err = scanTicket(r)
		return err
	}, id)
	return tk, err
}

func (t *sqlTx) Ticket(id string) (recovery.Ticket, error) { return t.ticket(id, false) }

// LockTicket reads with SELECT ... FOR UPDATE on PostgreSQL; on SQLite the writer's immediate
// transaction already excludes every other writer.
func (t *sqlTx) LockTicket(id string) (recovery.Ticket, error) { return t.ticket(id, true) }

func statePlaceholders(states []recovery.TicketState) (string, []any) {
	ph := make([]string, len(states))
	args := make([]any, len(states))
	for i, s := range states {
		ph[i], args[i] = "?", string(s)
	}
	return strings.Join(ph, ", "), args
}

func (t *sqlTx) ActiveTicket(accountID string) (tk recovery.Ticket, err error) {
	ph, args := statePlaceholders(recovery.ActiveTicketStates)
	err = t.one("active ticket", "SELECT "+ticketCols+" FROM tickets WHERE account_id = ? AND state IN ("+ph+") ORDER BY created_at DESC LIMIT 1",
		func(r *sql.Rows) (err error) {
			tk, err = scanTicket(r)
			return err
		}, append([]any{accountID}, args...)...)
	return tk, err
}

func (t *sqlTx) CountTickets(accountID string, since time.Time) (n int, err error) {
	var b binder
	s := b.time(since)
	if b.err != nil {
		return 0, b.err
	}
	err = t.one("ticket count", "SELECT COUNT(*) FROM tickets WHERE account_id = ? AND created_at >= ?",
		func(r *sql.Rows) error { return r.Scan(&n) }, accountID, s)
	return n, err
}

// activeStatesSQL is the predicate of tickets_active_created_idx (migration 00009), word for word:
// the active states of recovery.ActiveTicketStates.
const activeStatesSQL = "state IN ('open', 'verifying', 'pending_approval', 'cooling_off', 'ready', 'executed', 'frozen')"

// sameStates reports whether a and b hold the same states, in any order.
func sameStates(a, b []recovery.TicketState) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func (t *sqlTx) Tickets(f recovery.TicketFilter) ([]recovery.Ticket, error) {
	from := " FROM tickets"
	var args []any
	var where string
	switch {
	case len(f.States) == 0:
	case sameStates(f.States, recovery.ActiveTicketStates):
		where += " AND " + activeStatesSQL // tickets_active_created_idx, already in page order
		if t.dialect == DialectSQLite && f.Search == "" && f.AccountID == "" {
			// Without statistics SQLite's planner prefers the state index and sorts every
			// active ticket; the partial index reads just the page.
			from += " INDEXED BY tickets_active_created_idx"
		}
	case len(f.States) == 1:
		where += " AND state = ?" // tickets_state_created_idx, already in page order
		args = append(args, string(f.States[0]))
	default:
		// Several states that no index orders together: walk tickets_created_idx in page order
		// and filter (on SQLite, '+' keeps the planner from picking the state index and sorting
		// every match; PostgreSQL has no unary plus on text and plans by its statistics).
		ph, sa := statePlaceholders(f.States)
		col := "+state"
		if t.dialect == DialectPostgres {
			col = "state"
		}
		where += " AND " + col + " IN (" + ph + ")"
		args = append(args, sa...)
	}
	if f.AccountID != "" {
		where += " AND account_id = ?"
		args = append(args, f.AccountID)
	}
	if f.Channel != "" {
		where += " AND channel = ?"
		args = append(args, f.Channel)
	}
	switch f.AssigneeID {
	case "":
	case recovery.TicketUnassigned:
		where += " AND assignee_id = ''"
	default:
		where += " AND assignee_id = ?"
		args = append(args, f.AssigneeID)
	}
	if f.HighRisk {
		where += " AND high_risk = ?"
		args = append(args, true)
	}
	if f.Search != "" {
		where += " AND (id = ? OR account_id = ? OR claimed = ?)"
		args = append(args, f.Search, f.Search, f.Search)
	}
	var b binder
	if !f.OpenedBefore.IsZero() {
		where += " AND created_at < ?"
		args = append(args, b.time(f.OpenedBefore))
	}
	// Keyset pagination (never OFFSET): the row-value comparison walks the
	// tickets_created_idx index (created_at, id) from the cursor on.
	if f.After != nil {
		at := b.time(f.After.CreatedAt)
		where += " AND (created_at, id) < (?, ?)"
		args = append(args, at, f.After.ID)
	}
	if b.err != nil {
		return nil, b.err
	}
	q := "SELECT " + ticketCols + from + " WHERE 1 = 1" + where + " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return all(t, "tickets", q, scanTicket, args...)
}

func (t *sqlTx) StaleTickets(states []recovery.TicketState, before time.Time, limit int) ([]recovery.Ticket, error) {
	var b binder
	bt := b.time(before)
	if b.err != nil {
		return nil, b.err
	}
	ph, args := statePlaceholders(states)
	col := "progress_at"
	return all(t, "stale tickets", "SELECT "+ticketCols+" FROM tickets WHERE state IN ("+ph+") AND "+col+" < ? ORDER BY "+col+fmt.Sprintf(" LIMIT %d", limit),
		scanTicket, append(args, bt)...)
}

func (t *sqlTx) InsertTicket(tk recovery.Ticket) error {
	args, err := ticketArgs(tk)
	if err != nil {
		return err
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	if _, err := t.exec("INSERT INTO tickets ("+ticketCols+") VALUES ("+ph+")", args...); err != nil {
		return fmt.Errorf("sqlstore: insert ticket: %w", err)
	}
	return nil
}

// UpdateTicket writes every column but the id, only over the version before tk.Version.
func (t *sqlTx) UpdateTicket(tk recovery.Ticket) error {
	args, err := ticketArgs(tk)
	if err != nil {
		return err
	}
	cols := strings.Split(ticketCols, ", ")[1:]
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = ?"
	}
	n, err := t.exec("UPDATE tickets SET "+strings.Join(set, ", ")+" WHERE id = ? AND version = ?",
		append(args[1:], tk.ID, tk.Version-1)...)
	if err != nil {
		return fmt.Errorf("sqlstore: update ticket: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("sqlstore: update ticket %s: %w", tk.ID, recovery.ErrConflict)
	}
	return nil
}

func (t *sqlTx) TouchTicket(id string, progressAt, userMessageAt time.Time) error {
	var b binder
	p, u := b.time(progressAt), b.time(userMessageAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("UPDATE tickets SET progress_at = ?, user_message_at = ? WHERE id = ?", p, u, id); err != nil {
		return fmt.Errorf("sqlstore: touch ticket: %w", err)
	}
	return nil
}

// Ticket messages and checklist results.

const messageCols = "id, ticket_id, direction, author_type, author_id, body, evidence_ref, evidence_sha256, created_at"

func (t *sqlTx) TicketMessages(ticketID string) ([]recovery.TicketMessage, error) {
	return all(t, "ticket messages", "SELECT "+messageCols+" FROM ticket_messages WHERE ticket_id = ? ORDER BY id",
		func(r *sql.Rows) (m recovery.TicketMessage, err error) {
			var created sql.NullInt64
			err = r.Scan(&m.ID, &m.TicketID, &m.Direction, &m.AuthorType, &m.AuthorID, &m.Body, &m.EvidenceRef, &m.EvidenceSHA256, &created)
			m.CreatedAt = fromNanos(created)
			return m, err
		}, ticketID)
}

// insertReturningID inserts a row and reads its generated id (RETURNING works on both dialects).
func (t *sqlTx) insertReturningID(what, q string, args ...any) (id int64, err error) {
	err = t.one(what, q+" RETURNING id", func(r *sql.Rows) error { return r.Scan(&id) }, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: insert %s: %w", what, err)
	}
	return id, nil
}

func (t *sqlTx) AddTicketMessage(m recovery.TicketMessage) (int64, error) {
	var b binder
	created := b.time(m.CreatedAt)
	if b.err != nil {
		return 0, b.err
	}
	return t.insertReturningID("ticket message", "INSERT INTO ticket_messages (ticket_id, direction, author_type, author_id, body, evidence_ref, evidence_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		m.TicketID, m.Direction, m.AuthorType, m.AuthorID, m.Body, m.EvidenceRef, m.EvidenceSHA256, created)
}

const resultCols = "id, ticket_id, item_key, kind, passed, method, agent_id, note, evidence_sha256, created_at"

func (t *sqlTx) ChecklistResults(ticketID string) ([]recovery.ChecklistResult, error) {
	return all(t, "checklist results", "SELECT "+resultCols+" FROM checklist_results WHERE ticket_id = ? ORDER BY id",
		func(r *sql.Rows) (c recovery.ChecklistResult, err error) {
			var created sql.NullInt64
			err = r.Scan(&c.ID, &c.TicketID, &c.ItemKey, &c.Kind, &c.Passed, &c.Method, &c.AgentID, &c.Note, &c.EvidenceSHA256, &created)
			c.CreatedAt = fromNanos(created)
			return c, err
		}, ticketID)
}

func (t *sqlTx) AddChecklistResult(c recovery.ChecklistResult) error {
	var b binder
	created := b.time(c.CreatedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO checklist_results (ticket_id, item_key, kind, passed, method, agent_id, note, evidence_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.TicketID, c.ItemKey, c.Kind, c.Passed, c.Method, c.AgentID, c.Note, c.EvidenceSHA256, created); err != nil {
		return fmt.Errorf("sqlstore: insert checklist result: %w", err)
	}
	return nil
}

// E-mail codes and veto tokens.

func (t *sqlTx) EmailCode(ticketID string) (c recovery.EmailCode, err error) {
	err = t.one("e-mail code", "SELECT ticket_id, hash, attempts, created_at, expires_at, used_at FROM email_codes WHERE ticket_id = ?",
		func(r *sql.Rows) error {
			var created, expires, used sql.NullInt64
			err := r.Scan(&c.TicketID, &c.Hash, &c.Attempts, &created, &expires, &used)
			c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
			return err
		}, ticketID)
	return c, err
}

func (t *sqlTx) PutEmailCode(c recovery.EmailCode) error {
	var b binder
	created, expires, used := b.time(c.CreatedAt), b.time(c.ExpiresAt), b.time(c.UsedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO email_codes (ticket_id, hash, attempts, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (ticket_id) DO UPDATE SET hash = excluded.hash, attempts = excluded.attempts, created_at = excluded.created_at, "+
		"expires_at = excluded.expires_at, used_at = excluded.used_at",
		c.TicketID, c.Hash, c.Attempts, created, expires, used); err != nil {
		return fmt.Errorf("sqlstore: write e-mail code: %w", err)
	}
	return nil
}

func (t *sqlTx) VetoToken(hash string) (v recovery.VetoToken, err error) {
	err = t.one("veto token", "SELECT hash, ticket_id, channel, created_at, used_at FROM veto_tokens WHERE hash = ?",
		func(r *sql.Rows) error {
			var created, used sql.NullInt64
			err := r.Scan(&v.Hash, &v.TicketID, &v.Channel, &created, &used)
			v.CreatedAt, v.UsedAt = fromNanos(created), fromNanos(used)
			return err
		}, hash)
	return v, err
}

func (t *sqlTx) PutVetoToken(v recovery.VetoToken) error {
	var b binder
	created, used := b.time(v.CreatedAt), b.time(v.UsedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO veto_tokens (hash, ticket_id, channel, created_at, used_at) VALUES (?, ?, ?, ?, ?)",
		v.Hash, v.TicketID, v.Channel, created, used); err != nil {
		return fmt.Errorf("sqlstore: insert veto token: %w", err)
	}
	return nil
}

func (t *sqlTx) UseVetoToken(hash string, at time.Time) (bool, error) {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("UPDATE veto_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL", used, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: use veto token: %w", err)
	}
	return n == 1, nil
}

// Telegram links and end-user sessions.

func (t *sqlTx) telegramLink(where string, arg string) (l recovery.TelegramLink, err error) {
	err = t.one("telegram link", "SELECT chat_id, account_id, linked_at FROM telegram_links WHERE "+where+" = ?",
		func(r *sql.Rows) error {
			var linked sql.NullInt64
			err := r.Scan(&l.ChatID, &l.AccountID, &linked)
			l.LinkedAt = fromNanos(linked)
			return err
		}, arg)
	return l, err
}

func (t *sqlTx) TelegramLinkByChat(chatID string) (recovery.TelegramLink, error) {
	return t.telegramLink("chat_id", chatID)
}

func (t *sqlTx) TelegramLinkByAccount(accountID string) (recovery.TelegramLink, error) {
	return t.telegramLink("account_id", accountID)
}

func (t *sqlTx) PutTelegramLink(l recovery.TelegramLink) error {
	var b binder
	linked := b.time(l.LinkedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("DELETE FROM telegram_links WHERE account_id = ?", l.AccountID); err != nil {
		return fmt.Errorf("sqlstore: write telegram link: %w", err)
	}
	if _, err := t.exec("INSERT INTO telegram_links (chat_id, account_id, linked_at) VALUES (?, ?, ?)", l.ChatID, l.AccountID, linked); err != nil {
		return fmt.Errorf("sqlstore: write telegram link: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteTelegramLink(chatID string) error {
	if _, err := t.exec("DELETE FROM telegram_links WHERE chat_id = ?", chatID); err != nil {
		return fmt.Errorf("sqlstore: delete telegram link: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteUserSessions(accountID string) (int, error) {
	n, err := t.exec("DELETE FROM user_sessions WHERE account_id = ?", accountID)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: end sessions: %w", err)
	}
	return int(n), nil
}
