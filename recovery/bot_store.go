package recovery

import "time"

// BotChat is the persisted conversation state of one private Telegram chat, so that a restart
// (or another replica) continues where the user was.
type BotChat struct {
	ChatID    string
	State     string // a BotState* constant
	TicketID  string // the ticket the chat talks to while State is BotStateInTicket
	UpdatedAt time.Time
}

// TelegramLinkToken is a single-use /start token that links a chat to an account (stored
// hashed; the token itself is shown once to the logged-in user).
type TelegramLinkToken struct {
	Hash      string
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// BotReadTx is the part of ReadTx that reads the Telegram bot's state.
type BotReadTx interface {
	// BotChat returns a chat's conversation state (ErrNotFound for a chat never seen).
	BotChat(chatID string) (BotChat, error)
	// TelegramOffset returns the next update_id to ask getUpdates for (0 when none stored).
	TelegramOffset() (int64, error)
	// TelegramLinkToken returns the link token with this storage hash (ErrNotFound if none).
	TelegramLinkToken(hash string) (TelegramLinkToken, error)
}

// BotTx is the part of Tx that writes the Telegram bot's state.
type BotTx interface {
	// MarkTelegramUpdate records updateID as processed, in one conditional INSERT, and reports
	// whether it was new: of two transactions marking the same id only one gets true.
	MarkTelegramUpdate(updateID int64, at time.Time) (bool, error)
	// AdvanceTelegramOffset stores offset unless the stored one is larger (it never goes back).
	AdvanceTelegramOffset(offset int64) error
	// PruneTelegramUpdates forgets processed update ids recorded before before.
	PruneTelegramUpdates(before time.Time) error
	// PutBotChat inserts or replaces a chat's conversation state.
	PutBotChat(c BotChat) error
	PutTelegramLinkToken(t TelegramLinkToken) error
	// UseTelegramLinkToken marks an unused token used and reports whether it was unused.
	UseTelegramLinkToken(hash string, at time.Time) (bool, error)
}
