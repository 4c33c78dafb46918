package recovery

import "time"

// UserSessionReadTx is the part of ReadTx that reads end-user sessions and sign-in.
type UserSessionReadTx interface {
	// UserSession reads a session by the hash of its id (ErrNotFound when there is none).
	UserSession(idHash string) (UserSession, error)
	// AccountSignInThrottle reads the account's password counter; an account that never failed
	// has a zero one (AccountID set, no error).
	AccountSignInThrottle(accountID string) (AccountSignInThrottle, error)
}

// UserSessionTx is the part of Tx that writes end-user sessions and sign-in.
type UserSessionTx interface {
	// LockAccountSignInThrottle reads the account's password counter (creating a zero one when
	// missing) and holds a row lock on it until the transaction ends, so that concurrent
	// failures lose no count across replicas.
	LockAccountSignInThrottle(accountID string) (AccountSignInThrottle, error)
	PutAccountSignInThrottle(t AccountSignInThrottle) error
	// InsertUserSession adds a new session; an id hash already taken is an error.
	InsertUserSession(u UserSession) error
	// TouchUserSession moves the session's LastSeenAt.
	TouchUserSession(idHash string, at time.Time) error
	// DeleteUserSession ends one session and reports whether it existed.
	DeleteUserSession(idHash string) (bool, error)
}

// AccountSignInThrottle counts an account's consecutive failed passwords on the end-user pages.
type AccountSignInThrottle struct {
	AccountID    string
	Failures     int
	BlockedUntil time.Time
}
