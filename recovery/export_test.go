package recovery

import (
	"context"
	"time"
)

// Hooks for the external tests until the recovery workflow issues reset tokens itself.

// ResetForTest puts an account's factor in the reset state, as an executed recovery does, and
// returns a re-enrollment token valid for ttl.
func ResetForTest(ctx context.Context, s *Service, accountID string, ttl time.Duration) (string, error) {
	now := s.now()
	var tok string
	err := s.store.Update(ctx, func(tx Tx) error {
		f, err := loadFactor(tx, accountID)
		if err != nil {
			return err
		}
		f.State, f.SecretSealed, f.UpdatedAt = StateReset, "", now
		if err := tx.PutFactor(f); err != nil {
			return err
		}
		tok, err = issueReenrollToken(tx, accountID, "T-test", now, ttl)
		return err
	})
	return tok, err
}

// AppendTestEvent appends one event in its own transaction.
func AppendTestEvent(ctx context.Context, s *Service, actor Actor, n int) error {
	return s.store.Update(ctx, func(tx Tx) error {
		return newAuditLog(tx, s.now(), actor).add("test.event", "test", "t", map[string]any{"n": n})
	})
}

var Backoff = backoff

// Base32 encodes a raw secret as enrollment does.
func Base32(raw []byte) string { return b32.EncodeToString(raw) }

// ProvisioningURI is the otpauth:// URI enrollment hands out.
func ProvisioningURI(issuer, account, secret string) (string, error) {
	uri, _, err := provisioning(issuer, account, secret)
	return uri, err
}

var IPKey = ipKey

var AppendCanonicalString = appendString

// MatchStep is matchStep, for the tests that hold it to CodeAt and the RFC vectors.
var MatchStep = matchStep
