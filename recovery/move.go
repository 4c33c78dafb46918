package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Self-service on the end-user pages: move 2FA to a new phone and turn it off. Both are audited
// and told to the owner at the e-mail of record, so that a thief's use does not go unseen.

// proofCode normalizes a code that may be a 6-digit TOTP code or a recovery code.
func proofCode(code string) (totp, rc string, isTOTP bool, err error) {
	totp, totpErr := NormalizeTOTPCode(code)
	rc, rcErr := NormalizeRecoveryCode(code)
	if totpErr != nil && rcErr != nil {
		return "", "", false, invalidf("code must be 6 digits or a recovery code")
	}
	return totp, rc, totpErr == nil, nil
}

// BeginMove starts moving the account's 2FA to a new phone: proven by a current code of the old
// phone or a recovery code, it stores a pending enrollment with a new secret beside the active
// one. The old secret keeps working until ConfirmMove; a pending move that is never confirmed
// just expires (PendingTTL). A recovery code also lifts a TOTP suspension, as at sign-in.
func (s *Service) BeginMove(ctx context.Context, actor Actor, accountID, code string) (Enrollment, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Enrollment{}, err
	}
	totpCode, rcCode, isTOTP, err := proofCode(code)
	if err != nil {
		return Enrollment{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return Enrollment{}, err
	}
	now := s.now()
	var en Enrollment
	var name string
	err = s.update(ctx, func(tx Tx) (error, error) {
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if !isTOTP && errors.Is(refusal, ErrSuspended) {
			refusal = nil
		}
		if refusal != nil || err != nil {
			return refusal, err
		}
		al := newAuditLog(tx, now, actor)
		method := "totp"
		if isTOTP {
			_, refusal, err = s.attemptTOTP(tx, al, &f, f.SecretSealed, totpCode, now, actor.IP, "move")
		} else {
			method = "recovery_code"
			_, refusal, err = s.attemptRecoveryCode(tx, al, &f, rcCode, now, actor.IP, "move")
		}
		if refusal != nil || err != nil {
			return refusal, err
		}
		if f.PendingSealed, err = s.keys.Seal([]byte(secret), accountID, PurposeTOTPSecret); err != nil {
			return nil, err
		}
		f.PendingExpiresAt, f.UpdatedAt = now.Add(PendingTTL), now
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		a, err := tx.Account(accountID)
		if err != nil {
			return nil, err
		}
		if name = a.Email; name == "" {
			name = a.ID
		}
		en = Enrollment{Secret: secret, ManualCode: ManualCode(secret), ExpiresAt: f.PendingExpiresAt}
		return nil, al.add("factor.move_started", "account", accountID, map[string]any{
			"method": method, "expires_at": f.PendingExpiresAt.UTC().Format(time.RFC3339),
		})
	})
	if err != nil {
		factor := FactorTOTP
		if !isTOTP {
			factor = FactorRecoveryCode
		}
		return Enrollment{}, s.refused(factor, "move", err)
	}
	en.URI, en.QRPNG, err = provisioning(s.issuer, name, secret) // outside the transaction
	return en, err
}

// ConfirmMove swaps in the pending secret of BeginMove, proven by a code of the new phone, and
// issues a new set of recovery codes (shown once). Failures count on the account's counter like
// any confirmation. The step is shared with the old secret: a code of the new phone from the
// same 30-second step as the code that began the move is refused as a replay.
func (s *Service) ConfirmMove(ctx context.Context, actor Actor, accountID, code string) (Confirmed, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Confirmed{}, err
	}
	norm, err := NormalizeTOTPCode(code)
	if err != nil {
		return Confirmed{}, err
	}
	codes, hashes, err := newRecoveryCodeSet(accountID)
	if err != nil {
		return Confirmed{}, err
	}
	now := s.now()
	var out Confirmed
	err = s.update(ctx, func(tx Tx) (error, error) {
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		switch {
		case f.PendingSealed == "":
			return ErrNotEnrolled, nil
		case !now.Before(f.PendingExpiresAt):
			return ErrExpired, nil
		}
		al := newAuditLog(tx, now, actor)
		drift, refusal, err := s.attemptTOTP(tx, al, &f, f.PendingSealed, norm, now, actor.IP, "move_confirm")
		if refusal != nil || err != nil {
			return refusal, err
		}
		f.SecretSealed, f.EnrolledAt = f.PendingSealed, now
		f.PendingSealed, f.PendingExpiresAt = "", time.Time{}
		f.CodeFailures, f.CodeBlockedUntil, f.UpdatedAt = 0, time.Time{}, now
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		if err := tx.ReplaceRecoveryCodes(accountID, recoveryCodeRows(accountID, hashes, now)); err != nil {
			return nil, err
		}
		if err := al.add("factor.moved", "account", accountID, map[string]any{"drift_seconds": drift, "recovery_codes": len(codes)}); err != nil {
			return nil, err
		}
		if err := s.hostFactorEvent(tx, al, "factor.enrolled", accountID, map[string]any{"after_reset": false, "moved": true}); err != nil {
			return nil, err
		}
		out = Confirmed{RecoveryCodes: codes, DriftSeconds: drift}
		return nil, s.noticeOwner(tx, al, accountID, "factor_moved", "Two-factor authentication moved to a new phone",
			fmt.Sprintf("Two-factor authentication on your account was moved to a new phone at %s. The old phone's codes no longer work, and a new set of recovery codes replaced the old one.\n\n"+
				"If this was not you, contact support right away.\n", now.UTC().Format("2006-01-02 15:04 UTC")))
	})
	return out, s.refused(FactorTOTP, "move_confirm", err)
}

// TurnOff is the owner turning 2FA off on the end-user pages: the account password (with the
// sign-in throttle) and then a current code or a recovery code (Disable's rules), audited and
// told to the e-mail of record in the same transaction as the change.
func (s *Service) TurnOff(ctx context.Context, actor Actor, accountID, password, code string) error {
	if err := CheckAccountID(accountID); err != nil {
		return err
	}
	if _, _, _, err := proofCode(code); err != nil {
		return err
	}
	if err := s.AccountReauth(ctx, actor, accountID, password); err != nil {
		return err
	}
	return s.disable(ctx, actor, accountID, code, func(tx Tx, al *auditLog) error {
		return s.noticeOwner(tx, al, accountID, "factor_disabled", "Two-factor authentication turned off",
			fmt.Sprintf("Two-factor authentication on your account was turned off at %s. Signing in now needs only your password.\n\n"+
				"If this was not you, contact support right away.\n", al.now.UTC().Format("2006-01-02 15:04 UTC")))
	})
}

// noticeOwner queues an e-mail to the account's e-mail of record (none when it has none).
func (s *Service) noticeOwner(tx Tx, al *auditLog, accountID, kind, subject, body string) error {
	if strings.HasPrefix(accountID, agentAccountPrefix) {
		return nil
	}
	a, err := tx.Account(accountID)
	if err != nil || a.Email == "" {
		return err
	}
	return s.queueNotice(tx, al, Notice{Channel: NoticeEmail, To: a.Email, Kind: kind, AccountID: accountID, Subject: subject, Body: body})
}
