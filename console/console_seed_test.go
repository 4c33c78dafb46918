package console_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// The benchmark's fast seeding path. It writes a desk of n tickets straight into a migrated
// SQLite file over its own database/sql connection (prepared statements, one transaction per
// batch, synchronous=OFF while seeding), bypassing the domain: the domain's one-transaction-per-
// change path with synchronous=FULL would take hours for a million events. The data has the
// shape the console reads:
//
//   - one customer account (with an active or reset factor) per ticket;
//   - tickets opened 10 minutes apart, ending at benchNow; states mixed in fixed proportions
//     over the whole history (16 % active: open, verifying, pending approval, cooling-off,
//     ready, executed, frozen; the rest closed, rejected, expired or withdrawn), so that the
//     active queue's rows are spread thinly among closed ones — the hard case for its index;
//     channels, assignees and high risk mixed too;
//   - one user message and, past "open", two checklist results per ticket;
//   - benchEventsPerTicket audit events per ticket (so 1,000,000 at 100,000 tickets), in time
//     order, each with its ticket id.
//
// The audit events form a VALID chain (each hash computed with recovery.Event.ComputeHash over
// the previous one), so `audit verify` and the audit page's chain status hold, and the events
// the domain appends afterwards continue the chain.

// benchNow is the benchmark's fixed server clock: just after the last seeded ticket.
var benchNow = time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)

const (
	benchEventsPerTicket = 10
	benchTicketGap       = 10 * time.Minute
	benchBatch           = 20000 // tickets per transaction
)

// benchAgents act in the seeded events and hold the seeded assignments.
var benchAgents = []string{"agt_00000000000000a1", "agt_00000000000000a2", "agt_00000000000000a3"}

// benchTicketID is the deterministic id of the i-th seeded ticket, in the domain's format
// ("RD-" and 10 base32 characters) and, like real ids, unrelated to the opening order.
func benchTicketID(i int) string {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	h := sha256.Sum256(n[:])
	return "RD-" + base32.StdEncoding.EncodeToString(h[:7])[:10]
}

func benchAccountID(i int) string { return fmt.Sprintf("cust-%07d", i) }

// benchState is the i-th ticket's state and outcome.
func benchState(i int) (recovery.TicketState, string) {
	switch r := (i * 7919) % 100; {
	case r < 69:
		return recovery.TicketClosed, recovery.OutcomeReenrolled
	case r < 70:
		return recovery.TicketClosed, recovery.OutcomeSelfService
	case r < 78:
		return recovery.TicketRejected, ""
	case r < 81:
		return recovery.TicketExpired, ""
	case r < 84:
		return recovery.TicketWithdrawn, ""
	case r < 87:
		return recovery.TicketOpen, ""
	case r < 90:
		return recovery.TicketVerifying, ""
	case r < 93:
		return recovery.TicketPendingApproval, ""
	case r < 95:
		return recovery.TicketCoolingOff, ""
	case r < 96:
		return recovery.TicketReady, ""
	case r < 98:
		return recovery.TicketExecuted, ""
	default:
		return recovery.TicketFrozen, ""
	}
}

// benchOpenedAt is when the i-th of n tickets was opened.
func benchOpenedAt(i, n int) time.Time {
	return benchNow.Add(-time.Duration(n-i) * benchTicketGap)
}

// benchEventActions are the seeded events of one ticket, in order.
var benchEventActions = [benchEventsPerTicket]string{"ticket.opened", "ticket.message", "ticket.assigned", "ticket.verifying",
	"ticket.email_code_sent", "notice.queued", "notice.sent", "ticket.checklist_item", "ticket.checklist_item", "ticket.requested"}

// seedBench migrates a new SQLite database at path and seeds n tickets into it. It returns how
// long the seeding took.
func seedBench(tb testing.TB, path string, n int) time.Duration {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, path, sqlstore.Options{Migrate: true})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=OFF&_foreign_keys=off&_busy_timeout=5000")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	prev, seq := recovery.ZeroHash, int64(0)
	for lo := 0; lo < n; lo += benchBatch {
		if err := seedBatch(db, lo, min(lo+benchBatch, n), n, &seq, &prev); err != nil {
			tb.Fatalf("seed tickets %d…: %v", lo, err)
		}
	}
	// No ANALYZE: the store never runs it, so the planner works without statistics, as it
	// does on a real desk.
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

func seedBatch(db *sql.DB, lo, hi, n int, seq *int64, prev *string) (err error) {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = tx.Prepare(q)
		return st
	}
	insAccount := prep(`INSERT INTO accounts (id, email, email_key, display_name, phone, staff, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`)
	insFactor := prep(`INSERT INTO factors (account_id, state, enrolled_at, last_step, updated_at) VALUES (?, ?, ?, 0, ?)`)
	insTicket := prep(`INSERT INTO tickets (id, account_id, claimed, channel, state, outcome, assignee_id, policy_version, risk, high_risk,
		requested_by, requested_at, approved_by, approved_at, cooling_until, executed_by, executed_at, hold_until, link_expires_at, closed_at,
		version, created_at, updated_at, progress_at, user_message_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	insMessage := prep(`INSERT INTO ticket_messages (ticket_id, direction, author_type, author_id, body, created_at) VALUES (?, 'inbound', ?, '', ?, ?)`)
	insResult := prep(`INSERT INTO checklist_results (ticket_id, item_key, kind, passed, method, agent_id, created_at) VALUES (?, ?, ?, 1, ?, ?, ?)`)
	insEvent := prep(`INSERT INTO audit_events (seq, "time", actor_type, actor_id, action, target_type, target_id, ticket_id, reason, details,
		request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	ns := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UnixNano()
	}
	channels := []string{recovery.ChannelTelegram, recovery.ChannelConsole, recovery.ChannelAPI, recovery.ChannelTelegram}
	for i := lo; i < hi; i++ {
		id, acc := benchTicketID(i), benchAccountID(i)
		opened := benchOpenedAt(i, n)
		state, outcome := benchState(i)
		email := acc + "@example.com"
		if _, err = insAccount.Exec(acc, email, email, fmt.Sprintf("Customer %d", i), "+49 151 "+fmt.Sprintf("%07d", i),
			opened.Add(-400*24*time.Hour).UnixNano(), opened.Add(-400*24*time.Hour).UnixNano()); err != nil {
			return err
		}
		factor := string(recovery.StateActive)
		if state == recovery.TicketExecuted {
			factor = string(recovery.StateReset)
		}
		if _, err = insFactor.Exec(acc, factor, opened.Add(-300*24*time.Hour).UnixNano(), opened.UnixNano()); err != nil {
			return err
		}
		agent := benchAgents[i%len(benchAgents)]
		assignee := agent
		if i%5 == 0 {
			assignee = ""
		}
		risk, high := "", false
		if i%23 == 0 {
			risk, high = "email_changed,repeat_tickets", true
		} else if i%7 == 0 {
			risk = "repeat_tickets"
		}
		var requestedBy, approvedBy, executedBy string
		var requested, approved, cooling, executed, hold, linkExp, closed time.Time
		past := func(s ...recovery.TicketState) bool {
			for _, x := range s {
				if state == x {
					return true
				}
			}
			return false
		}
		if past(recovery.TicketPendingApproval, recovery.TicketCoolingOff, recovery.TicketReady, recovery.TicketExecuted,
			recovery.TicketFrozen, recovery.TicketClosed) {
			requestedBy, requested = agent, opened.Add(9*time.Minute)
		}
		if past(recovery.TicketCoolingOff, recovery.TicketReady, recovery.TicketExecuted, recovery.TicketFrozen, recovery.TicketClosed) {
			approvedBy, approved = benchAgents[(i+1)%len(benchAgents)], opened.Add(20*time.Minute)
			cooling = approved.Add(recovery.CoolingOff)
		}
		if past(recovery.TicketExecuted, recovery.TicketClosed) {
			executedBy, executed = approvedBy, cooling.Add(time.Hour)
			hold, linkExp = executed.Add(recovery.HoldAfterReset), executed.Add(recovery.ReenrollLinkTTL)
		}
		if !state.Active() {
			closed = opened.Add(30 * time.Hour)
		}
		progress := opened.Add(9 * time.Minute)
		if _, err = insTicket.Exec(id, acc, email, channels[i%len(channels)], string(state), outcome, assignee, "2026-11-1", risk, high,
			requestedBy, ns(requested), approvedBy, ns(approved), ns(cooling), executedBy, ns(executed), ns(hold), ns(linkExp), ns(closed),
			12, opened.UnixNano(), progress.UnixNano(), progress.UnixNano(), opened.UnixNano()); err != nil {
			return err
		}
		if _, err = insMessage.Exec(id, recovery.ActorEndUser, "I lost my phone and cannot sign in.", opened.UnixNano()); err != nil {
			return err
		}
		if state != recovery.TicketOpen {
			if _, err = insResult.Exec(id, "email_code", "email_code", "code", agent, opened.Add(7*time.Minute).UnixNano()); err != nil {
				return err
			}
			if _, err = insResult.Exec(id, "knowledge_last_deposit", "knowledge", "system_compare", agent, opened.Add(8*time.Minute).UnixNano()); err != nil {
				return err
			}
		}
		for k, action := range benchEventActions {
			*seq++
			e := recovery.Event{Seq: *seq, Time: opened.Add(time.Duration(k) * 50 * time.Second), ActorType: recovery.ActorAgent,
				ActorID: agent, Action: action, TargetType: "ticket", TargetID: id, TicketID: id, RequestID: fmt.Sprintf("%032x", *seq),
				PrevHash: *prev}
			switch action {
			case "ticket.opened", "ticket.message":
				e.ActorType, e.ActorID = recovery.ActorTelegramUser, fmt.Sprintf("%d", 100000000+i)
			case "notice.queued", "notice.sent":
				e.TargetType, e.TargetID = "notice", fmt.Sprint(*seq)
				if action == "notice.sent" {
					e.ActorType, e.ActorID = recovery.ActorSystem, "outbox"
				}
			case "ticket.requested":
				e.Reason = "e-mail code and one account fact verified"
			}
			var d []byte
			if d, err = json.Marshal(map[string]any{"state": string(state), "step": k}); err != nil {
				return err
			}
			e.Details = d
			if e.Hash, err = e.ComputeHash(); err != nil {
				return err
			}
			if _, err = insEvent.Exec(e.Seq, e.Time.UnixNano(), e.ActorType, e.ActorID, e.Action, e.TargetType, e.TargetID, e.TicketID,
				e.Reason, string(e.Details), e.RequestID, e.PrevHash, e.Hash); err != nil {
				return err
			}
			*prev = e.Hash
		}
	}
	return tx.Commit()
}

// explainQueue returns SQLite's plans (through the driver the store uses) for the queue's query
// (the active filter, as sqlstore.Tickets builds it) on the first page and behind a keyset
// cursor, for the same with the state index ruled out, and for the ticket timeline's and the
// audit page's queries.
func explainQueue(tb testing.TB, path string) string {
	tb.Helper()
	db, err := sql.Open("sqlite3", path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	states := make([]string, len(recovery.ActiveTicketStates))
	for i, s := range recovery.ActiveTicketStates {
		states[i] = "'" + string(s) + "'"
	}
	base := "SELECT * FROM tickets WHERE 1 = 1 AND state IN (" + strings.Join(states, ", ") + ")"
	var out strings.Builder
	for _, q := range []string{
		base + " ORDER BY created_at DESC, id DESC LIMIT 26",
		base + " AND (created_at < 1 OR (created_at = 1 AND id < 'x')) ORDER BY created_at DESC, id DESC LIMIT 26",
		// The same with the state index ruled out (unary +): the walk the queue needs.
		strings.Replace(base, "AND state IN", "AND +state IN", 1) + " ORDER BY created_at DESC, id DESC LIMIT 26",
		`SELECT * FROM audit_events WHERE ticket_id = 'x' ORDER BY seq DESC LIMIT 201`,
		`SELECT * FROM audit_events ORDER BY seq DESC LIMIT 51`,
	} {
		fmt.Fprintf(&out, "%s\n", q)
		rows, err := db.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			tb.Fatal(err)
		}
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				tb.Fatal(err)
			}
			fmt.Fprintf(&out, "  %s\n", detail)
		}
		rows.Close()
	}
	return out.String()
}
