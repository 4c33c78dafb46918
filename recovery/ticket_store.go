package recovery

import "time"

// TicketReadTx is the part of ReadTx that reads tickets and what hangs off them.
type TicketReadTx interface {
	Ticket(id string) (Ticket, error)
	// ActiveTicket returns the account's newest ticket in an active state (ErrNotFound if none).
	ActiveTicket(accountID string) (Ticket, error)
	// CountTickets counts the account's tickets created at or after since.
	CountTickets(accountID string, since time.Time) (int, error)
	// Tickets lists tickets matching f, newest first.
	Tickets(f TicketFilter) ([]Ticket, error)
	// StaleTickets lists up to limit tickets in one of states whose ProgressAt is before before.
	StaleTickets(states []TicketState, before time.Time, limit int) ([]Ticket, error)
	TicketMessages(ticketID string) ([]TicketMessage, error)
	ChecklistResults(ticketID string) ([]ChecklistResult, error)
	EmailCode(ticketID string) (EmailCode, error)
	VetoToken(hash string) (VetoToken, error)
	TelegramLinkByChat(chatID string) (TelegramLink, error)
	TelegramLinkByAccount(accountID string) (TelegramLink, error)
}

// TicketTx is the part of Tx that writes tickets.
type TicketTx interface {
	// LockTicket reads the ticket and holds a row lock on it until the transaction ends.
	LockTicket(id string) (Ticket, error)
	// InsertTicket adds a new ticket; an id already taken is an error.
	InsertTicket(t Ticket) error
	// UpdateTicket writes t only if the stored version is t.Version-1 (optimistic concurrency),
	// else ErrConflict.
	UpdateTicket(t Ticket) error
	// TouchTicket sets the ticket's activity times without changing its version, so that a
	// message from the user does not make an agent's edit conflict.
	TouchTicket(id string, progressAt, userMessageAt time.Time) error
	AddTicketMessage(m TicketMessage) (int64, error)
	AddChecklistResult(r ChecklistResult) error
	PutEmailCode(c EmailCode) error
	PutVetoToken(v VetoToken) error
	// UseVetoToken marks an unused token used and reports whether it was unused.
	UseVetoToken(hash string, at time.Time) (bool, error)
	// PutTelegramLink links a chat to an account, replacing the account's previous link.
	PutTelegramLink(l TelegramLink) error
	DeleteTelegramLink(chatID string) error
	// DeleteUserSessions ends every end-user session of the account and reports how many.
	DeleteUserSessions(accountID string) (int, error)
}
