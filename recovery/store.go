package recovery

import (
	"context"
	"time"
)

// Store is the storage port. Adapters keep no business rules: they load and save what the
// domain hands them, atomically per Update.
type Store interface {
	// Update runs fn in one write transaction and commits it durably before returning. If fn
	// returns an error nothing fn wrote remains. fn may be called again if the adapter retries
	// a serialization failure, so it must not have effects outside tx.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only, consistent snapshot.
	View(ctx context.Context, fn func(tx ReadTx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// ReadTx reads within a transaction. Missing rows give ErrNotFound.
type ReadTx interface {
	TicketReadTx
	AgentReadTx
	OutboxReadTx
	AgentSessionReadTx
	UserSessionReadTx
	BotReadTx
	AuditQueryReadTx
	MetricsReadTx
	Account(id string) (Account, error)
	AccountByEmail(emailKey string) (Account, error)
	Accounts() ([]Account, error)
	Factor(accountID string) (Factor, error)
	Factors() ([]Factor, error)
	// RecoveryCodes returns the account's unused codes.
	RecoveryCodes(accountID string) ([]RecoveryCode, error)
	APIKey(id string) (APIKey, error)
	APIKeys() ([]APIKey, error)
	IPThrottle(ip string) (IPThrottle, error)
	ReenrollToken(hash string) (ReenrollToken, error)
	// SealKeyIDs returns the distinct key ids (the part before the first ':') of every sealed
	// value that may still be opened: secrets, facts and the bodies of queued notices.
	SealKeyIDs() ([]string, error)
	// AuditEvents returns up to limit events with Seq > after, in order.
	AuditEvents(after int64, limit int) ([]Event, error)
}

// Tx reads and writes within a write transaction.
type Tx interface {
	ReadTx
	TicketTx
	AgentTx
	OutboxTx
	AgentSessionTx
	UserSessionTx
	BotTx
	RestoreTx
	// LockFactor reads the factor and holds a row lock on it until the transaction ends, so
	// that a read-decide-write on its counters cannot interleave with another replica.
	LockFactor(accountID string) (Factor, error)
	// PutAccount inserts or updates by ID; a duplicate EmailKey gives ErrEmailTaken.
	PutAccount(a Account) error
	PutFactor(f Factor) error
	// ConsumeStep advances LastStep to step only if it is larger than the stored one, in one
	// conditional UPDATE, and reports whether it did.
	ConsumeStep(accountID string, step int64, at time.Time) (bool, error)
	// ReplaceRecoveryCodes deletes every code of the account and inserts codes.
	ReplaceRecoveryCodes(accountID string, codes []RecoveryCode) error
	// UseRecoveryCode marks an unused code used and reports whether it was unused.
	UseRecoveryCode(id int64, at time.Time) (bool, error)
	PutIPThrottle(t IPThrottle) error
	PutAPIKey(k APIKey) error
	PutReenrollToken(t ReenrollToken) error
	// UseReenrollTokens marks every unused re-enrollment token of the account used.
	UseReenrollTokens(accountID string, at time.Time) error
	// AuditHead returns the last event's seq and hash (0 and 64 zeros when empty) and holds
	// the chain's append lock until the transaction ends.
	AuditHead() (seq int64, hash string, err error)
	AppendAudit(e Event) error
}
