package sqlstore

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The console's audit search and ticket figures (recovery.AuditQueryReadTx). The indexes of
// migration 00008 serve each filter together with the seq order, so a page reads only its rows.

func (t *sqlTx) AuditQuery(f recovery.AuditFilter) ([]recovery.Event, error) {
	var b binder
	var where []string
	var args []any
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			// A prefix as a range ('.' + 1 is '/'), which an index on action serves.
			add("action >= ? AND action < ?", f.Action, strings.TrimSuffix(f.Action, ".")+"/")
		} else {
			add("action = ?", f.Action)
		}
	}
	if f.ActorType != "" {
		add("actor_type = ?", f.ActorType)
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if f.TicketID != "" {
		add("ticket_id = ?", f.TicketID)
	}
	if f.TargetType != "" {
		add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		add("target_id = ?", f.TargetID)
	}
	if !f.From.IsZero() {
		add(`"time" >= ?`, b.time(f.From))
	}
	if !f.Until.IsZero() {
		add(`"time" < ?`, b.time(f.Until))
	}
	if b.err != nil {
		return nil, b.err
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	// A filter on a column the partial indexes cover uses them, so the code checks leave the
	// result, unless the filter asks for code checks by action: then the query reads in seq
	// order. No filter at all reads everything in seq order (the primary key).
	filtered := f.Action != "" || f.ActorID != "" || f.TicketID != "" || f.TargetID != "" || !f.From.IsZero() || !f.Until.IsZero()
	if filtered && !codeCheckFilter(f.Action) {
		where = append(where, auditIndexed)
	}
	q := "SELECT " + auditCols + " FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Ascending {
		q += " ORDER BY seq"
	} else {
		q += " ORDER BY seq DESC"
	}
	q += fmt.Sprintf(" LIMIT %d", max(f.Limit, 1))
	return all(t, "audit events", q, scanEvent, args...)
}

// auditIndexed is the predicate of the partial audit indexes (migration 00008): every event but
// the code checks. A query must carry it, word for word, for SQLite and PostgreSQL to use them.
const auditIndexed = "action NOT IN ('totp.verified', 'totp.failed')"

// codeCheckFilter reports whether an action filter (an action, or a prefix ending in '.') can
// match a code check, which the partial indexes leave out: such a query reads in seq order.
func codeCheckFilter(action string) bool {
	for _, a := range []string{"totp.verified", "totp.failed"} {
		if action == a || (strings.HasSuffix(action, ".") && strings.HasPrefix(a, action)) {
			return true
		}
	}
	return false
}

// AccountAudit unions the account's own events (code checks left out: one per login, they
// would bury the rest) with those of its tickets; each half uses its index and is limited
// before the merge.
func (t *sqlTx) AccountAudit(accountID string, beforeSeq int64, limit int) ([]recovery.Event, error) {
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	lim := fmt.Sprintf(" ORDER BY seq DESC LIMIT %d", max(limit, 1))
	q := "SELECT " + auditCols + " FROM (" +
		"SELECT * FROM (SELECT " + auditCols + " FROM audit_events WHERE target_type = 'account' AND target_id = ? AND seq < ? AND " + auditIndexed + lim + ") a" +
		" UNION " +
		"SELECT * FROM (SELECT " + auditCols + " FROM audit_events WHERE ticket_id IS NOT NULL AND ticket_id IN (SELECT id FROM tickets WHERE account_id = ?) AND seq < ?" + lim + ") b" +
		") u" + lim
	return all(t, "account audit", q, scanEvent, accountID, beforeSeq, accountID, beforeSeq)
}

func (t *sqlTx) TicketStateCounts() (map[recovery.TicketState]int, error) {
	type row struct {
		state string
		n     int
	}
	rows, err := all(t, "ticket counts", "SELECT state, COUNT(*) FROM tickets GROUP BY state", func(r *sql.Rows) (row, error) {
		var v row
		return v, r.Scan(&v.state, &v.n)
	})
	if err != nil {
		return nil, err
	}
	out := map[recovery.TicketState]int{}
	for _, r := range rows {
		out[recovery.TicketState(r.state)] = r.n
	}
	return out, nil
}

func (t *sqlTx) TicketsOldestFirst(state recovery.TicketState, limit int) ([]recovery.Ticket, error) {
	return all(t, "tickets", "SELECT "+ticketCols+" FROM tickets WHERE state = ? ORDER BY progress_at, id"+
		fmt.Sprintf(" LIMIT %d", max(limit, 1)), scanTicket, string(state))
}

func (t *sqlTx) ClosedTicketSpans(outcome string, since time.Time) ([]recovery.TicketSpan, error) {
	var b binder
	s := b.time(since)
	if b.err != nil {
		return nil, b.err
	}
	return all(t, "closed tickets", "SELECT id, created_at, closed_at FROM tickets WHERE state = ? AND outcome = ? AND closed_at >= ? ORDER BY closed_at",
		func(r *sql.Rows) (recovery.TicketSpan, error) {
			var sp recovery.TicketSpan
			var created, closed sql.NullInt64
			err := r.Scan(&sp.TicketID, &created, &closed)
			sp.CreatedAt, sp.ClosedAt = fromNanos(created), fromNanos(closed)
			return sp, err
		}, string(recovery.TicketClosed), outcome, s)
}

func (t *sqlTx) AuditActionTimes(actions []string, since time.Time) ([]time.Time, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	var b binder
	s := b.time(since)
	if b.err != nil {
		return nil, b.err
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(actions)), ", ")
	args := []any{}
	for _, a := range actions {
		args = append(args, a)
	}
	return all(t, "audit times", `SELECT "time" FROM audit_events WHERE action IN (`+ph+`) AND "time" >= ? ORDER BY seq`,
		func(r *sql.Rows) (time.Time, error) {
			var at sql.NullInt64
			err := r.Scan(&at)
			return fromNanos(at), err
		}, append(args, s)...)
}
