package recovery

import "time"

// AuditQueryReadTx is the part of ReadTx that searches the audit chain and counts tickets for the
// console's audit log, account lookup, approvals inbox and dashboard. Every list is bounded by a
// limit the domain sets, and pages by seq (keyset), never by OFFSET.
type AuditQueryReadTx interface {
	// AuditQuery lists events matching f: newest (highest seq) first, or in seq order when
	// f.Ascending; at most f.Limit of them.
	AuditQuery(f AuditFilter) ([]Event, error)
	// AccountAudit lists, newest first, up to limit events with seq < beforeSeq (0: no bound)
	// about the account: those whose target is the account and those of its tickets.
	AccountAudit(accountID string, beforeSeq int64, limit int) ([]Event, error)
	// TicketStateCounts counts tickets per state.
	TicketStateCounts() (map[TicketState]int, error)
	// TicketsOldestFirst lists up to limit tickets in state, least recently progressed first.
	TicketsOldestFirst(state TicketState, limit int) ([]Ticket, error)
	// ClosedTicketSpans lists the creation and closing times of tickets closed with outcome
	// whose ClosedAt is at or after since.
	ClosedTicketSpans(outcome string, since time.Time) ([]TicketSpan, error)
	// AuditActionTimes returns the times of the events with one of actions at or after since, in
	// seq order.
	AuditActionTimes(actions []string, since time.Time) ([]time.Time, error)
}

// TicketSpan is when a ticket was opened and when it closed.
type TicketSpan struct {
	TicketID  string
	CreatedAt time.Time
	ClosedAt  time.Time
}
