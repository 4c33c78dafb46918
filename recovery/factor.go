package recovery

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PendingTTL is how long an enrollment waits for its confirmation.
const PendingTTL = 10 * time.Minute

// Status is an account's 2FA state as the host reads it.
type Status struct {
	State             FactorState
	HoldUntil         time.Time // zero when no hold
	RecoveryCodesLeft int
}

// reported folds a live pending enrollment into the state the host sees.
func (f Factor) reported(now time.Time) FactorState {
	if (f.State == StateDisabled || f.State == StateReset) && f.PendingSealed != "" && now.Before(f.PendingExpiresAt) {
		return StatePending
	}
	return f.State
}

// loadFactor returns the account's factor (a disabled one when none is stored), or ErrNotFound
// when the account itself does not exist.
func loadFactor(tx Tx, accountID string) (Factor, error) {
	f, err := tx.LockFactor(accountID)
	if errors.Is(err, ErrNotFound) {
		if _, err := tx.Account(accountID); err != nil {
			return Factor{}, err
		}
		return Factor{AccountID: accountID, State: StateDisabled}, nil
	}
	return f, err
}

// TwoFactorStatus reads an account's 2FA state.
func (s *Service) TwoFactorStatus(ctx context.Context, accountID string) (Status, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Status{}, err
	}
	return s.twoFactorStatus(ctx, accountID)
}

// precheck is run first inside an enrollment or verify transaction by the callers that guard an
// internal account (an agent's): a refusal or error it returns ends the operation there. nil
// for host accounts.
type precheck func(tx Tx) (refusal, err error)

// The unexported variants below skip CheckAccountID, so that the agents' internal accounts
// ("agent/<id>", a '/' the check refuses) reach the same core: the host-facing methods check the
// id, and so can never reach those accounts.

func (s *Service) twoFactorStatus(ctx context.Context, accountID string) (Status, error) {
	now := s.now()
	var st Status
	err := s.store.View(ctx, func(tx ReadTx) error {
		if _, err := tx.Account(accountID); err != nil {
			return err
		}
		f, err := tx.Factor(accountID)
		if errors.Is(err, ErrNotFound) {
			st.State = StateDisabled
			return nil
		}
		if err != nil {
			return err
		}
		st.State, st.HoldUntil = f.reported(now), f.HoldUntil
		if !now.Before(st.HoldUntil) {
			st.HoldUntil = time.Time{}
		}
		if f.State == StateActive || f.State == StateSuspended {
			codes, err := tx.RecoveryCodes(accountID)
			if err != nil {
				return err
			}
			st.RecoveryCodesLeft = len(codes)
		}
		return nil
	})
	return st, err
}

// Enrollment is what a user needs to add the account to an authenticator app.
type Enrollment struct {
	Secret     string // base32, no padding
	ManualCode string // Secret in groups of four
	URI        string // otpauth://totp/...
	QRPNG      []byte
	ExpiresAt  time.Time
}

// BeginEnrollment creates a pending enrollment with a new secret, replacing any earlier pending
// one. After a reset it needs the re-enrollment token the reset issued.
func (s *Service) BeginEnrollment(ctx context.Context, actor Actor, accountID, reenrollToken string) (Enrollment, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Enrollment{}, err
	}
	return s.beginEnrollment(ctx, actor, accountID, reenrollToken, nil)
}

func (s *Service) beginEnrollment(ctx context.Context, actor Actor, accountID, reenrollToken string, pre precheck) (Enrollment, error) {
	secret, err := newSecret()
	if err != nil {
		return Enrollment{}, err
	}
	now := s.now()
	var en Enrollment
	var name string
	err = s.update(ctx, func(tx Tx) (error, error) {
		if pre != nil {
			if refusal, err := pre(tx); refusal != nil || err != nil {
				return refusal, err
			}
		}
		a, err := tx.Account(accountID)
		if err != nil {
			return nil, err
		}
		f, err := loadFactor(tx, accountID)
		if err != nil {
			return nil, err
		}
		switch f.State {
		case StateActive:
			return ErrAlreadyEnrolled, nil
		case StateSuspended:
			return ErrRecoveryRequired, nil
		case StateReset:
			if ok, err := validReenrollToken(tx, accountID, reenrollToken, now); err != nil || !ok {
				return ErrRecoveryRequired, err
			}
		}
		if f.PendingSealed, err = s.keys.Seal([]byte(secret), accountID, PurposeTOTPSecret); err != nil {
			return nil, err
		}
		f.PendingExpiresAt = now.Add(PendingTTL)
		f.UpdatedAt = now
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		name = a.Email
		if name == "" {
			name = a.ID
		}
		en = Enrollment{Secret: secret, ManualCode: ManualCode(secret), ExpiresAt: f.PendingExpiresAt}
		return nil, newAuditLog(tx, now, actor).add("enrollment.started", "account", accountID, map[string]any{
			"expires_at": f.PendingExpiresAt.UTC().Format(time.RFC3339), "after_reset": f.State == StateReset,
		})
	})
	if err != nil {
		return Enrollment{}, err
	}
	// The QR code takes milliseconds to draw: never inside the transaction (on SQLite the writer
	// is shared by every caller).
	en.URI, en.QRPNG, err = provisioning(s.issuer, name, secret)
	return en, err
}

func validReenrollToken(tx ReadTx, accountID, token string, now time.Time) (bool, error) {
	if token == "" || len(token) > 128 {
		return false, nil
	}
	t, err := tx.ReenrollToken(hashToken("reenroll", token))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ok := subtle.ConstantTimeCompare([]byte(t.AccountID), []byte(accountID)) == 1
	return ok && t.UsedAt.IsZero() && now.Before(t.ExpiresAt), nil
}

// Confirmed is the answer to a successful confirmation. RecoveryCodes are shown once.
type Confirmed struct {
	RecoveryCodes []string
	DriftSeconds  int
}

// ConfirmEnrollment activates the pending enrollment with a code from the app. The code's time
// step is consumed, so the same code cannot then log in; failures count on the account's counter.
func (s *Service) ConfirmEnrollment(ctx context.Context, actor Actor, accountID, code string) (Confirmed, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Confirmed{}, err
	}
	return s.confirmEnrollment(ctx, actor, accountID, code, true, nil)
}

// confirmEnrollment is ConfirmEnrollment; withCodes false issues no recovery codes (an agent who
// loses the device gets a new setup link from an admin instead).
func (s *Service) confirmEnrollment(ctx context.Context, actor Actor, accountID, code string, withCodes bool, pre precheck) (Confirmed, error) {
	norm, err := NormalizeTOTPCode(code)
	if err != nil {
		return Confirmed{}, err
	}
	var codes, hashes []string
	if withCodes {
		if codes, hashes, err = newRecoveryCodeSet(accountID); err != nil {
			return Confirmed{}, err
		}
	}
	now := s.now()
	var out Confirmed
	err = s.update(ctx, func(tx Tx) (error, error) {
		if pre != nil {
			if refusal, err := pre(tx); refusal != nil || err != nil {
				return refusal, err
			}
		}
		if refusal, err := ipBlocked(tx, actor.IP, now); refusal != nil || err != nil {
			return refusal, err
		}
		f, err := loadFactor(tx, accountID)
		if err != nil {
			return nil, err
		}
		switch {
		case f.State == StateActive:
			return ErrAlreadyEnrolled, nil
		case f.State == StateSuspended:
			return ErrRecoveryRequired, nil
		case f.PendingSealed == "":
			return ErrNotEnrolled, nil
		case !now.Before(f.PendingExpiresAt):
			return ErrExpired, nil
		}
		al := newAuditLog(tx, now, actor)
		drift, refusal, err := s.attemptTOTP(tx, al, &f, f.PendingSealed, norm, now, actor.IP, "confirm")
		if refusal != nil || err != nil {
			return refusal, err
		}
		wasReset := f.State == StateReset
		f.State, f.SecretSealed, f.EnrolledAt = StateActive, f.PendingSealed, now
		f.PendingSealed, f.PendingExpiresAt = "", time.Time{}
		f.CodeFailures, f.CodeBlockedUntil = 0, time.Time{}
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		if err := tx.ReplaceRecoveryCodes(accountID, recoveryCodeRows(accountID, hashes, now)); err != nil {
			return nil, err
		}
		if wasReset {
			if err := tx.UseReenrollTokens(accountID, now); err != nil {
				return nil, err
			}
			if err := s.reenrolled(tx, al, accountID, now); err != nil {
				return nil, err
			}
		}
		if err := s.hostFactorEvent(tx, al, "factor.enrolled", accountID, map[string]any{"after_reset": wasReset}); err != nil {
			return nil, err
		}
		out = Confirmed{RecoveryCodes: codes, DriftSeconds: drift}
		return nil, al.add("factor.enrolled", "account", accountID, map[string]any{
			"drift_seconds": drift, "recovery_codes": len(codes), "after_reset": wasReset,
		})
	})
	return out, s.refused(FactorTOTP, "confirm", err)
}

// attemptTOTP evaluates a normalized code against sealed inside tx: backoff, window, replay and
// counting. On success it consumes the matched step and resets the counter (f is updated but the
// caller writes it if it changes more); on failure it records the failure and returns the refusal.
func (s *Service) attemptTOTP(tx Tx, al *auditLog, f *Factor, sealed, code string, now time.Time, ip, purpose string) (drift int, refusal, err error) {
	if now.Before(f.BlockedUntil) {
		return 0, throttled(f.BlockedUntil, now), nil
	}
	secret, err := s.keys.Open(sealed, f.AccountID, PurposeTOTPSecret)
	if err != nil {
		return 0, nil, err // fail closed: a secret that does not open is an outage, not a wrong code
	}
	step, matched, err := matchStep(string(secret), code, now)
	if err != nil {
		return 0, nil, err
	}
	if matched && step > f.LastStep {
		consumed, err := tx.ConsumeStep(f.AccountID, step, now)
		if err != nil {
			return 0, nil, err
		}
		if consumed {
			drift = int(step-Step(now)) * totpPeriod
			dirty := f.Failures != 0 || !f.BlockedUntil.IsZero()
			f.LastStep, f.Failures, f.BlockedUntil = step, 0, time.Time{}
			if dirty && purpose != "confirm" { // ConsumeStep already wrote last_step
				if err := tx.PutFactor(*f); err != nil {
					return 0, nil, err
				}
			}
			if purpose != "confirm" {
				err = al.add("totp.verified", "account", f.AccountID, map[string]any{"purpose": purpose, "drift_seconds": drift})
			}
			return drift, nil, err
		}
	}
	reason := "wrong"
	if matched {
		reason = "replayed"
	}
	return 0, ErrInvalidCode, s.countFailure(tx, al, f, now, ip, purpose, reason)
}

// countFailure adds one consecutive TOTP failure: backoff from the 5th, suspension at the 20th
// (of an active factor; a pending enrollment is only slowed down).
func (s *Service) countFailure(tx Tx, al *auditLog, f *Factor, now time.Time, ip, purpose, reason string) error {
	f.Failures++
	if d := backoff(f.Failures); d > 0 {
		f.BlockedUntil = now.Add(d)
	}
	suspend := f.Failures >= suspendAfter && f.State == StateActive
	if suspend {
		f.State = StateSuspended
	}
	f.UpdatedAt = now
	if err := tx.PutFactor(*f); err != nil {
		return err
	}
	details := map[string]any{"purpose": purpose, "reason": reason, "failures": f.Failures}
	if !f.BlockedUntil.IsZero() && now.Before(f.BlockedUntil) {
		details["blocked_until"] = f.BlockedUntil.UTC().Format(time.RFC3339)
	}
	if ip != "" {
		details["ip"] = ip
	}
	if err := al.add("totp.failed", "account", f.AccountID, details); err != nil {
		return err
	}
	if suspend {
		if err := al.add("factor.suspended", "account", f.AccountID, map[string]any{"failures": f.Failures}); err != nil {
			return err
		}
		if err := s.hostFactorEvent(tx, al, "factor.suspended", f.AccountID, map[string]any{"failures": f.Failures}); err != nil {
			return err
		}
	}
	return countIPFailure(tx, al, ip, now)
}

// Verified is the answer to a good code.
type Verified struct {
	DriftSeconds int // (matched step − current step) × 30; positive: the phone runs ahead
}

// Verify checks a login code. Wrong and replayed codes are both ErrInvalidCode (the audit tells
// them apart); throttled attempts are ErrTooManyAttempts and are neither evaluated nor counted.
func (s *Service) Verify(ctx context.Context, actor Actor, accountID, code string) (Verified, error) {
	if err := CheckAccountID(accountID); err != nil {
		return Verified{}, err
	}
	return s.verify(ctx, actor, accountID, code, "verify", nil)
}

// verify is Verify with the purpose its audit events name ("verify", "step_up").
func (s *Service) verify(ctx context.Context, actor Actor, accountID, code, purpose string, pre precheck) (Verified, error) {
	norm, err := NormalizeTOTPCode(code)
	if err != nil {
		return Verified{}, err
	}
	now := s.now()
	var out Verified
	err = s.update(ctx, func(tx Tx) (error, error) {
		if pre != nil {
			if refusal, err := pre(tx); refusal != nil || err != nil {
				return refusal, err
			}
		}
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		drift, refusal, err := s.attemptTOTP(tx, newAuditLog(tx, now, actor), &f, f.SecretSealed, norm, now, actor.IP, purpose)
		out.DriftSeconds = drift
		return refusal, err
	})
	return out, s.refused(FactorTOTP, purpose, err)
}

// activeFactor loads a factor that can take a TOTP code, or the refusal that applies.
func activeFactor(tx Tx, accountID, ip string, now time.Time) (Factor, error, error) {
	if refusal, err := ipBlocked(tx, ip, now); refusal != nil || err != nil {
		return Factor{}, refusal, err
	}
	f, err := loadFactor(tx, accountID)
	if err != nil {
		return Factor{}, nil, err
	}
	switch f.State {
	case StateActive:
		return f, nil, nil
	case StateSuspended:
		return f, ErrSuspended, nil
	default:
		return f, ErrNotEnrolled, nil
	}
}

func newRecoveryCodeSet(accountID string) (codes, hashes []string, err error) {
	for range RecoveryCodeCount {
		c, err := newRecoveryCode()
		if err != nil {
			return nil, nil, err
		}
		n, _ := NormalizeRecoveryCode(c)
		codes, hashes = append(codes, c), append(hashes, hashRecoveryCode(accountID, n))
	}
	return codes, hashes, nil
}

func recoveryCodeRows(accountID string, hashes []string, now time.Time) []RecoveryCode {
	rows := make([]RecoveryCode, len(hashes))
	for i, h := range hashes {
		rows[i] = RecoveryCode{AccountID: accountID, Hash: h, CreatedAt: now}
	}
	return rows
}

// RecoveryCodeUsed is the answer to a good recovery code.
type RecoveryCodeUsed struct {
	Remaining        int
	LiftedSuspension bool
}

// UseRecoveryCode spends one recovery code. It has its own counter with the TOTP thresholds, works
// while TOTP is suspended and lifts that suspension.
func (s *Service) UseRecoveryCode(ctx context.Context, actor Actor, accountID, code string) (RecoveryCodeUsed, error) {
	if err := CheckAccountID(accountID); err != nil {
		return RecoveryCodeUsed{}, err
	}
	norm, err := NormalizeRecoveryCode(code)
	if err != nil {
		return RecoveryCodeUsed{}, err
	}
	now := s.now()
	var out RecoveryCodeUsed
	err = s.update(ctx, func(tx Tx) (error, error) {
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if errors.Is(refusal, ErrSuspended) {
			refusal = nil // a recovery code is the way out of a TOTP suspension
		}
		if refusal != nil || err != nil {
			return refusal, err
		}
		out, refusal, err = s.attemptRecoveryCode(tx, newAuditLog(tx, now, actor), &f, norm, now, actor.IP, "sign_in")
		return refusal, err
	})
	return out, s.refused(FactorRecoveryCode, "sign_in", err)
}

func (s *Service) attemptRecoveryCode(tx Tx, al *auditLog, f *Factor, norm string, now time.Time, ip, purpose string) (RecoveryCodeUsed, error, error) {
	if f.CodeFailures >= suspendAfter {
		return RecoveryCodeUsed{}, ErrRecoveryCodesSuspended, nil
	}
	if now.Before(f.CodeBlockedUntil) {
		return RecoveryCodeUsed{}, throttled(f.CodeBlockedUntil, now), nil
	}
	codes, err := tx.RecoveryCodes(f.AccountID)
	if err != nil {
		return RecoveryCodeUsed{}, nil, err
	}
	want := []byte(hashRecoveryCode(f.AccountID, norm))
	match := -1
	for i, c := range codes {
		if subtle.ConstantTimeCompare([]byte(c.Hash), want) == 1 {
			match = i
		}
	}
	if match >= 0 {
		used, err := tx.UseRecoveryCode(codes[match].ID, now)
		if err != nil {
			return RecoveryCodeUsed{}, nil, err
		}
		if used {
			out := RecoveryCodeUsed{Remaining: len(codes) - 1, LiftedSuspension: f.State == StateSuspended}
			f.CodeFailures, f.CodeBlockedUntil = 0, time.Time{}
			if out.LiftedSuspension {
				f.State, f.Failures, f.BlockedUntil = StateActive, 0, time.Time{}
			}
			f.UpdatedAt = now
			if err := tx.PutFactor(*f); err != nil {
				return RecoveryCodeUsed{}, nil, err
			}
			if err := al.add("recovery_code.used", "account", f.AccountID, map[string]any{
				"purpose": purpose, "remaining": out.Remaining, "lifted_suspension": out.LiftedSuspension,
			}); err != nil {
				return RecoveryCodeUsed{}, nil, err
			}
			return out, nil, s.noticeRecoveryCodeUsed(tx, al, f.AccountID, out, now)
		}
	}
	f.CodeFailures++
	if d := backoff(f.CodeFailures); d > 0 {
		f.CodeBlockedUntil = now.Add(d)
	}
	f.UpdatedAt = now
	if err := tx.PutFactor(*f); err != nil {
		return RecoveryCodeUsed{}, nil, err
	}
	details := map[string]any{"purpose": purpose, "failures": f.CodeFailures}
	if now.Before(f.CodeBlockedUntil) {
		details["blocked_until"] = f.CodeBlockedUntil.UTC().Format(time.RFC3339)
	}
	if ip != "" {
		details["ip"] = ip
	}
	if err := al.add("recovery_code.failed", "account", f.AccountID, details); err != nil {
		return RecoveryCodeUsed{}, nil, err
	}
	if f.CodeFailures == suspendAfter {
		if err := al.add("recovery_codes.suspended", "account", f.AccountID, map[string]any{"failures": f.CodeFailures}); err != nil {
			return RecoveryCodeUsed{}, nil, err
		}
	}
	return RecoveryCodeUsed{}, ErrInvalidCode, countIPFailure(tx, al, ip, now)
}

// RegenerateRecoveryCodes replaces the whole set after a current TOTP code (which it consumes).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, actor Actor, accountID, code string) ([]string, error) {
	if err := CheckAccountID(accountID); err != nil {
		return nil, err
	}
	norm, err := NormalizeTOTPCode(code)
	if err != nil {
		return nil, err
	}
	codes, hashes, err := newRecoveryCodeSet(accountID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.update(ctx, func(tx Tx) (error, error) {
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		al := newAuditLog(tx, now, actor)
		if _, refusal, err := s.attemptTOTP(tx, al, &f, f.SecretSealed, norm, now, actor.IP, "regenerate"); refusal != nil || err != nil {
			return refusal, err
		}
		if err := tx.ReplaceRecoveryCodes(accountID, recoveryCodeRows(accountID, hashes, now)); err != nil {
			return nil, err
		}
		// A new set proven by a current TOTP code starts with a clean counter, so failures an
		// attacker piled onto the old set cannot keep the owner's recovery codes suspended.
		lifted := f.CodeFailures >= suspendAfter
		if f.CodeFailures != 0 || !f.CodeBlockedUntil.IsZero() {
			f.CodeFailures, f.CodeBlockedUntil, f.UpdatedAt = 0, time.Time{}, now
			if err := tx.PutFactor(f); err != nil {
				return nil, err
			}
		}
		return nil, al.add("recovery_codes.regenerated", "account", accountID, map[string]any{
			"recovery_codes": len(codes), "lifted_suspension": lifted,
		})
	})
	if err != nil {
		return nil, s.refused(FactorTOTP, "regenerate", err)
	}
	return codes, nil
}

// Disable turns 2FA off at the user's request, proven by a current TOTP code or a recovery code.
func (s *Service) Disable(ctx context.Context, actor Actor, accountID, code string) error {
	if err := CheckAccountID(accountID); err != nil {
		return err
	}
	return s.disable(ctx, actor, accountID, code, nil)
}

// disable is Disable; after, when set, runs in the same transaction once the factor is off (the
// end-user pages queue the owner's notice there).
func (s *Service) disable(ctx context.Context, actor Actor, accountID, code string, after func(tx Tx, al *auditLog) error) error {
	totpCode, totpErr := NormalizeTOTPCode(code)
	rcCode, rcErr := NormalizeRecoveryCode(code)
	if totpErr != nil && rcErr != nil {
		return invalidf("code must be 6 digits or a recovery code")
	}
	now := s.now()
	factor := FactorTOTP
	if totpErr != nil {
		factor = FactorRecoveryCode
	}
	return s.refused(factor, "disable", s.update(ctx, func(tx Tx) (error, error) {
		f, refusal, err := activeFactor(tx, accountID, actor.IP, now)
		if rcErr == nil && errors.Is(refusal, ErrSuspended) {
			refusal = nil
		}
		if refusal != nil || err != nil {
			return refusal, err
		}
		al := newAuditLog(tx, now, actor)
		method := "totp"
		if totpErr == nil {
			_, refusal, err = s.attemptTOTP(tx, al, &f, f.SecretSealed, totpCode, now, actor.IP, "disable")
		} else {
			method = "recovery_code"
			_, refusal, err = s.attemptRecoveryCode(tx, al, &f, rcCode, now, actor.IP, "disable")
		}
		if refusal != nil || err != nil {
			return refusal, err
		}
		f.State, f.SecretSealed, f.EnrolledAt = StateDisabled, "", time.Time{}
		f.PendingSealed, f.PendingExpiresAt = "", time.Time{}
		f.Failures, f.BlockedUntil, f.CodeFailures, f.CodeBlockedUntil = 0, time.Time{}, 0, time.Time{}
		f.UpdatedAt = now
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		if err := tx.ReplaceRecoveryCodes(accountID, nil); err != nil {
			return nil, err
		}
		if err := al.add("factor.disabled", "account", accountID, map[string]any{"method": method}); err != nil {
			return nil, err
		}
		if after != nil {
			return nil, after(tx, al)
		}
		return nil, nil
	}))
}

// hostFactorEvent tells the host platform about a host account's factor; agents' internal
// accounts are not the host's business.
func (s *Service) hostFactorEvent(tx Tx, al *auditLog, event, accountID string, data map[string]any) error {
	if strings.HasPrefix(accountID, agentAccountPrefix) {
		return nil
	}
	return s.queueHostEvent(tx, al, event, accountID, data)
}

// noticeRecoveryCodeUsed tells the owner, at the e-mail of record, that a recovery code was used
// (security.md: "audited and notified"), so that a thief's use does not go unseen.
func (s *Service) noticeRecoveryCodeUsed(tx Tx, al *auditLog, accountID string, used RecoveryCodeUsed, now time.Time) error {
	if strings.HasPrefix(accountID, agentAccountPrefix) {
		return nil
	}
	a, err := tx.Account(accountID)
	if err != nil || a.Email == "" {
		return err
	}
	body := fmt.Sprintf("A recovery code was used to sign in to your account at %s. %d recovery codes are left.\n\n"+
		"If this was you, nothing needs to be done; consider generating a new set in your security settings.\n"+
		"If this was not you, contact support right away.\n", now.UTC().Format("2006-01-02 15:04 UTC"), used.Remaining)
	if used.LiftedSuspension {
		body += "\nThe code also lifted the suspension of your authenticator codes after too many wrong attempts.\n"
	}
	return s.queueNotice(tx, al, Notice{Channel: NoticeEmail, To: a.Email, Kind: "recovery_code_used", AccountID: accountID,
		Subject: "A recovery code was used on your account", Body: body})
}
