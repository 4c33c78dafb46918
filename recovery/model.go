package recovery

import "time"

// Account is an end user of the host platform, keyed by the host's own id.
// Zero times mean "never".
type Account struct {
	ID             string
	Email          string
	EmailKey       string // lower-cased e-mail; unique
	DisplayName    string
	Phone          string
	Staff          bool
	PasswordHash   string // Argon2id PHC string, "" when none
	FactsSealed    string // sealed JSON object of account facts, "" when none
	EmailChangedAt time.Time
	PhoneChangedAt time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// FactorState is the stored state of an account's TOTP factor.
type FactorState string

const (
	StateDisabled  FactorState = "disabled"
	StatePending   FactorState = "pending" // reported only: disabled or reset with a live pending enrollment
	StateActive    FactorState = "active"
	StateSuspended FactorState = "suspended"
	StateReset     FactorState = "reset"
)

// Factor is an account's TOTP factor with its replay and throttle state. One per account; an
// account with no row has a disabled factor.
type Factor struct {
	AccountID        string
	State            FactorState
	SecretSealed     string // active secret, "" unless active or suspended
	EnrolledAt       time.Time
	LastStep         int64 // highest time step ever accepted; only larger steps are accepted
	PendingSealed    string
	PendingExpiresAt time.Time
	Failures         int // consecutive failed TOTP codes (confirmations included)
	BlockedUntil     time.Time
	CodeFailures     int // consecutive failed recovery codes
	CodeBlockedUntil time.Time
	HoldUntil        time.Time
	UpdatedAt        time.Time
}

// RecoveryCode is one single-use recovery code, stored as a hash.
type RecoveryCode struct {
	ID        int64
	AccountID string
	Hash      string // hex SHA-256, see hashRecoveryCode
	CreatedAt time.Time
	UsedAt    time.Time
}

// APIKey authenticates the host platform. The plaintext is shown once; only its hash is kept.
type APIKey struct {
	ID        string // public part of the key, also its handle on the command line
	Name      string
	Hash      string // hex SHA-256 of the secret part
	CreatedAt time.Time
	RevokedAt time.Time
}

// IPThrottle counts failed codes from one client address in 10-second buckets covering the last
// minute.
type IPThrottle struct {
	IP           string
	BucketStart  time.Time // start of the newest bucket
	Buckets      []int     // failures per bucket, newest first; at most seven
	BlockedUntil time.Time
}

// ReenrollToken is the single-use link a reset issues (created by the recovery workflow).
type ReenrollToken struct {
	Hash      string // hex SHA-256 of the token
	AccountID string
	TicketID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}
