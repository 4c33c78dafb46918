package recovery

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Adapters map them to status codes once (console) or replies (bot).
var (
	ErrNotFound         = errors.New("not found")
	ErrInvalidInput     = errors.New("invalid request")
	ErrEmailTaken       = errors.New("email already belongs to another account")
	ErrAlreadyEnrolled  = errors.New("two-factor authentication is already active")
	ErrRecoveryRequired = errors.New("two-factor authentication must be recovered through support")
	ErrNotEnrolled      = errors.New("two-factor authentication is not enrolled")
	ErrExpired          = errors.New("the pending enrollment has expired")
	ErrInvalidCode      = errors.New("invalid code")
	ErrTooManyAttempts  = errors.New("too many attempts")
	ErrSuspended        = errors.New("two-factor authentication is suspended after too many failed codes")
	// ErrRecoveryCodesSuspended is ErrSuspended for the recovery codes' own counter.
	ErrRecoveryCodesSuspended = fmt.Errorf("recovery codes are suspended after too many failed codes: %w", ErrSuspended)
	ErrUnauthorized           = errors.New("unauthorized")
	ErrConflict               = errors.New("conflicting change")
	// ErrMissingKey means stored values are sealed under a key the configuration lacks.
	ErrMissingKey = errors.New("a sealing key is missing")
	// ErrSchemaTooNew is returned by stores opened on a database migrated by a newer binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// invalidf wraps ErrInvalidInput with a message safe to show to the caller.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// ThrottledError is returned (wrapping ErrTooManyAttempts) while a backoff or an IP block holds.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %d s", RetryAfterSeconds(e.RetryAfter))
}

func (e *ThrottledError) Unwrap() error { return ErrTooManyAttempts }

// RetryAfterSeconds rounds a wait up to whole seconds (at least 1).
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// RetryAfter reports the wait carried by a throttling error.
func RetryAfter(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.RetryAfter, true
	}
	return 0, false
}
