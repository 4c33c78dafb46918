package recovery

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// maxAccountPasswordBytes is the longest password an account may have (UpsertAccount's limit);
// a longer one is never checked, so that nobody can make Argon2id hash megabytes.
const maxAccountPasswordBytes = 1024

// accountPassword checks password for the account find returns, with the sign-in throttle:
// consecutive failures of a known account are counted in the database (the 5th starts a 30 s
// backoff, doubling up to an hour, a success resets the count), attempts during a backoff are
// refused (ErrTooManyAttempts) unchecked and uncounted, and every failure also counts on
// actor.IP's limiter. An unknown account, an account without a password and a wrong password
// all give ErrUnauthorized, audited as account.sign_in_failed with the reason, never the
// password. On success ok runs in the same transaction as the counter's reset.
func (s *Service) accountPassword(ctx context.Context, actor Actor, find func(tx ReadTx) (Account, error),
	password, purpose string, ok func(tx Tx, al *auditLog, a Account) error) error {
	now := s.now()
	var known Account
	var refusal error
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if refusal, err = ipBlocked(tx, actor.IP, now); refusal != nil || err != nil {
			return err
		}
		a, err := find(tx)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		th, err := tx.AccountSignInThrottle(a.ID)
		if err != nil {
			return err
		}
		if now.Before(th.BlockedUntil) {
			refusal = throttled(th.BlockedUntil, now)
		}
		known = a
		return nil
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal
	}
	// Argon2id outside any transaction (on SQLite the writer is shared), and always run, so that
	// an unknown e-mail takes as long as a wrong password.
	hash, pw := known.PasswordHash, password
	if hash == "" {
		hash = dummyPasswordHash
	}
	tooLong := len(password) > maxAccountPasswordBytes
	if tooLong {
		pw = ""
	}
	match := CheckPassword(hash, pw) && known.PasswordHash != "" && !tooLong
	actor.Type, actor.ID = ActorEndUser, known.ID
	return s.update(ctx, func(tx Tx) (error, error) {
		if refusal, err := ipBlocked(tx, actor.IP, now); refusal != nil || err != nil {
			return refusal, err
		}
		al := newAuditLog(tx, now, actor)
		details := map[string]any{"purpose": purpose}
		if actor.IP != "" {
			details["ip"] = actor.IP
		}
		if known.ID == "" {
			details["reason"] = "unknown_email"
			if err := al.add("account.sign_in_failed", "account", "", details); err != nil {
				return nil, err
			}
			return ErrUnauthorized, countIPFailure(tx, al, actor.IP, now)
		}
		th, err := tx.LockAccountSignInThrottle(known.ID)
		if err != nil {
			return nil, err
		}
		if now.Before(th.BlockedUntil) { // a concurrent attempt started a backoff
			return throttled(th.BlockedUntil, now), nil
		}
		a, err := tx.Account(known.ID)
		if err != nil {
			return nil, err
		}
		// A password changed since it was checked is not the one checked.
		match = match && subtle.ConstantTimeCompare([]byte(a.PasswordHash), []byte(known.PasswordHash)) == 1
		if match {
			if th.Failures != 0 || !th.BlockedUntil.IsZero() {
				th.Failures, th.BlockedUntil = 0, time.Time{}
				if err := tx.PutAccountSignInThrottle(th); err != nil {
					return nil, err
				}
			}
			return nil, ok(tx, al, a)
		}
		details["reason"] = "wrong_password"
		if a.PasswordHash == "" {
			details["reason"] = "no_password"
		}
		th.Failures++
		if d := backoff(th.Failures); d > 0 {
			th.BlockedUntil = now.Add(d)
			details["blocked_until"] = th.BlockedUntil.UTC().Format(time.RFC3339)
		}
		details["failures"] = th.Failures
		if err := tx.PutAccountSignInThrottle(th); err != nil {
			return nil, err
		}
		if err := al.add("account.sign_in_failed", "account", a.ID, details); err != nil {
			return nil, err
		}
		return ErrUnauthorized, countIPFailure(tx, al, actor.IP, now)
	})
}

// AccountSignIn checks an end user's e-mail and password (see accountPassword for the
// throttle and the answers) and starts a session. When the account's 2FA is active or
// suspended the session has StagePassword and must pass AccountSecondFactor; otherwise it is
// a full session. Each sign-in gets a new session id.
func (s *Service) AccountSignIn(ctx context.Context, actor Actor, email, password string) (UserSessionToken, error) {
	key := strings.ToLower(email)
	find := func(tx ReadTx) (Account, error) {
		if !utf8.ValidString(email) || len(email) > 254 || email == "" {
			return Account{}, ErrNotFound
		}
		return tx.AccountByEmail(key)
	}
	var out UserSessionToken
	err := s.accountPassword(ctx, actor, find, password, "sign_in", func(tx Tx, al *auditLog, a Account) error {
		f, err := tx.Factor(a.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		stage := StageFull
		if err == nil && (f.State == StateActive || f.State == StateSuspended) {
			stage = StagePassword
		}
		if out, err = newUserSession(tx, a.ID, stage, al.now); err != nil {
			return err
		}
		action := "account.signed_in"
		if stage == StagePassword {
			action = "account.password_accepted"
		}
		return al.add(action, "account", a.ID, map[string]any{"method": "password"})
	})
	return out, err
}

// AccountSecondFactor completes a StagePassword session with a 6-digit code (or, when
// recoveryCode, a recovery code) through the core's Verify or UseRecoveryCode — their counters,
// replay guard and IP limiter apply unchanged — and replaces the session by a full one with a
// new id. A token that names no live password-stage session gives ErrUnauthorized.
func (s *Service) AccountSecondFactor(ctx context.Context, actor Actor, token, code string, recoveryCode bool) (UserSessionToken, Verified, error) {
	now := s.now()
	var u UserSession
	err := s.store.View(ctx, func(tx ReadTx) error {
		var ok bool
		var err error
		if u, ok, err = liveSession(tx, token, now); err == nil && (!ok || u.Stage != StagePassword) {
			err = ErrUnauthorized
		}
		return err
	})
	if err != nil {
		return UserSessionToken{}, Verified{}, err
	}
	actor.Type, actor.ID = ActorEndUser, u.AccountID
	var v Verified
	method := "totp"
	if recoveryCode {
		method = "recovery_code"
		_, err = s.UseRecoveryCode(ctx, actor, u.AccountID, code)
	} else {
		v, err = s.Verify(ctx, actor, u.AccountID, code)
	}
	if err != nil {
		return UserSessionToken{}, Verified{}, err
	}
	var out UserSessionToken
	err = s.update(ctx, func(tx Tx) (error, error) {
		now := s.now()
		if ok, err := tx.DeleteUserSession(u.IDHash); err != nil || !ok {
			return ErrUnauthorized, err
		}
		var err error
		if out, err = newUserSession(tx, u.AccountID, StageFull, now); err != nil {
			return nil, err
		}
		return nil, newAuditLog(tx, now, actor).add("account.signed_in", "account", u.AccountID, map[string]any{"method": method})
	})
	return out, v, err
}

// AccountReauth checks the signed-in user's password again before a sensitive change (enabling
// or turning off 2FA), with the sign-in throttle.
func (s *Service) AccountReauth(ctx context.Context, actor Actor, accountID, password string) error {
	find := func(tx ReadTx) (Account, error) { return tx.Account(accountID) }
	return s.accountPassword(ctx, actor, find, password, "reauth", func(tx Tx, al *auditLog, a Account) error {
		return al.add("account.password_confirmed", "account", a.ID, nil)
	})
}

// SecurityEvent is one line of an account's security timeline on its owner's security page.
type SecurityEvent struct {
	Time   time.Time
	Action string // the audit action
	Text   string // the same in plain words for the account's owner
}

// timelineText says in plain words the audit actions an account's owner cares about; the other
// actions (every verified code, agents' notes) stay out of the timeline.
var timelineText = map[string]string{
	"factor.enrolled":            "Two-factor authentication was turned on",
	"factor.moved":               "Two-factor authentication was moved to a new phone",
	"factor.disabled":            "Two-factor authentication was turned off",
	"factor.suspended":           "Codes were blocked after too many wrong attempts",
	"recovery_code.used":         "A recovery code was used",
	"recovery_codes.regenerated": "New recovery codes were generated",
	"recovery_codes.suspended":   "Recovery codes were blocked after too many wrong attempts",
	"ticket.opened":              "Account recovery was requested",
	"ticket.approved":            "Account recovery was approved by a second agent",
	"ticket.executed":            "Two-factor authentication was reset by support",
	"ticket.vetoed":              "You stopped an account recovery request",
	"ticket.reenrolled":          "Two-factor authentication was set up again after the reset",
	"ticket.closed":              "The recovery request was closed",
	"telegram.linked":            "Telegram was linked",
	"telegram.unlinked":          "Telegram was unlinked",
}

// SecurityTimeline returns up to limit of the account's security events, newest first, read from
// the audit chain: the events on the account and those of its recovery tickets.
func (s *Service) SecurityTimeline(ctx context.Context, accountID string, limit int) ([]SecurityEvent, error) {
	if err := CheckAccountID(accountID); err != nil {
		return nil, err
	}
	var out []SecurityEvent
	err := s.store.View(ctx, func(tx ReadTx) error {
		tickets, err := tx.Tickets(TicketFilter{AccountID: accountID})
		if err != nil {
			return err
		}
		mine := map[string]bool{}
		for _, t := range tickets {
			mine[t.ID] = true
		}
		const page = 1000
		for after := int64(0); ; {
			evs, err := tx.AuditEvents(after, page)
			if err != nil {
				return err
			}
			for _, e := range evs {
				text, ok := timelineText[e.Action]
				if !ok {
					continue
				}
				if (e.TargetType == "account" && e.TargetID == accountID) || (e.TicketID != "" && mine[e.TicketID]) {
					out = append(out, SecurityEvent{Time: e.Time, Action: e.Action, Text: text})
				}
				after = e.Seq
			}
			if len(evs) < page {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ReenrollLink names the account a re-enrollment link is for, for the link's first page (a GET
// changes nothing). An unknown, used or expired link gives ErrLinkUnavailable, alike.
func (s *Service) ReenrollLink(ctx context.Context, token string) (accountID string, err error) {
	now := s.now()
	err = s.store.View(ctx, func(tx ReadTx) error {
		if token == "" || len(token) > 128 {
			return ErrLinkUnavailable
		}
		t, err := tx.ReenrollToken(hashToken("reenroll", token))
		if errors.Is(err, ErrNotFound) {
			return ErrLinkUnavailable
		}
		if err != nil {
			return err
		}
		f, err := tx.Factor(t.AccountID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !t.UsedAt.IsZero() || !now.Before(t.ExpiresAt) || f.State != StateReset {
			return ErrLinkUnavailable
		}
		accountID = t.AccountID
		return nil
	})
	return accountID, err
}
