package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Execute performs the reset of a ready ticket in one transaction (design.md step 6): the old
// enrollment and recovery codes are revoked, the account's sessions end, the hold is set, a
// single-use re-enrollment link is issued and queued to the channels of record only, the host
// webhook hears reset.executed and hold.set, and the events are appended. Supervisor or admin
// (admin for staff), not the target, with a step-up at most 5 minutes old.
func (s *Service) Execute(ctx context.Context, actor Actor, ticketID string, version int64, stepUpAt time.Time) error {
	return s.ticketChange(ctx, actor, RoleSupervisor, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if _, err := readyIfDue(tl, t, now); err != nil {
			return false, nil, err
		}
		if t.State != TicketReady {
			return false, ErrTicketState, nil
		}
		if err := checkStepUp(stepUpAt, now); err != nil {
			return false, err, nil
		}
		if t.Staff && !a.AtLeast(RoleAdmin) {
			return false, ErrForbidden, nil
		}
		f, err := loadFactor(tx, t.AccountID)
		if err != nil {
			return false, nil, err
		}
		codes, err := tx.RecoveryCodes(t.AccountID)
		if err != nil {
			return false, nil, err
		}
		before := f.State
		t.HoldUntil = now.Add(HoldAfterReset)
		f.State, f.SecretSealed, f.PendingSealed, f.PendingExpiresAt = StateReset, "", "", time.Time{}
		f.Failures, f.BlockedUntil, f.CodeFailures, f.CodeBlockedUntil = 0, time.Time{}, 0, time.Time{}
		f.HoldUntil, f.UpdatedAt = t.HoldUntil, now
		if err := tx.PutFactor(f); err != nil {
			return false, nil, err
		}
		if err := tx.ReplaceRecoveryCodes(t.AccountID, nil); err != nil {
			return false, nil, err
		}
		sessions, err := tx.DeleteUserSessions(t.AccountID)
		if err != nil {
			return false, nil, err
		}
		if err := tx.UseReenrollTokens(t.AccountID, now); err != nil {
			return false, nil, err
		}
		token, err := issueReenrollToken(tx, t.AccountID, t.ID, now, ReenrollLinkTTL)
		if err != nil {
			return false, nil, err
		}
		t.ExecutedBy, t.ExecutedAt, t.LinkExpiresAt = a.ID, now, now.Add(ReenrollLinkTTL)
		if err := setState(tl, t, "executed", TicketExecuted, "", now, map[string]any{
			"executed_by": a.ID,
			"revoked":     map[string]any{"factor_state": string(before), "recovery_codes": len(codes), "sessions": sessions},
			"hold_until":  t.HoldUntil.UTC().Format(time.RFC3339),
			"link_id":     linkID(t.AccountID, token), "link_expires_at": t.LinkExpiresAt.UTC().Format(time.RFC3339),
			"step_up_age_seconds": int(now.Sub(stepUpAt) / time.Second),
		}); err != nil {
			return false, nil, err
		}
		if err := s.queueReenrollLink(tx, tl, *t, token); err != nil {
			return false, nil, err
		}
		data := map[string]any{"ticket_id": t.ID, "hold_until": t.HoldUntil.UTC().Format(time.RFC3339)}
		if err := s.queueHostEvent(tx, tl.auditLog, "reset.executed", t.AccountID, data); err != nil {
			return false, nil, err
		}
		return true, nil, s.queueHostEvent(tx, tl.auditLog, "hold.set", t.AccountID, map[string]any{"hold_until": t.HoldUntil.UTC().Format(time.RFC3339)})
	})
}

// linkID names a re-enrollment link in events without revealing it: a short hash of its
// storage hash.
func linkID(accountID, token string) string {
	return hashToken("reenroll", token)[:12]
}

// queueReenrollLink sends the re-enrollment link to the channels of record only; a Telegram chat
// that asked without having been linked before is told where the link went.
func (s *Service) queueReenrollLink(tx Tx, tl ticketLog, t Ticket, token string) error {
	email, chat, err := recordChannels(tx, t)
	if err != nil {
		return err
	}
	link := s.baseURL + "/reenroll/" + token
	expires := t.LinkExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	body := fmt.Sprintf("Your request %s to reset two-factor authentication has been carried out.\n\n"+
		"Open this link to set up your authenticator app again (it works once, until %s):\n%s\n\n"+
		"For your protection, withdrawals are on hold until %s.\n", t.ID, expires, link, t.HoldUntil.UTC().Format("2006-01-02 15:04 UTC"))
	if email != "" {
		n := Notice{Channel: NoticeEmail, To: email, Kind: "reenroll_link", AccountID: t.AccountID, TicketID: t.ID,
			Subject: "Set up two-factor authentication again", Body: body}
		if err := s.queueNotice(tx, tl.auditLog, n, token); err != nil {
			return err
		}
	}
	if chat != "" {
		n := Notice{Channel: NoticeTelegram, To: chat, Kind: "reenroll_link", AccountID: t.AccountID, TicketID: t.ID, Body: body}
		if err := s.queueNotice(tx, tl.auditLog, n, token); err != nil {
			return err
		}
	}
	if t.Channel == ChannelTelegram && t.ChatID != "" && t.ChatID != chat {
		n := Notice{Channel: NoticeTelegram, To: t.ChatID, Kind: "link_sent_to_email", AccountID: t.AccountID, TicketID: t.ID,
			Body: "Your request " + t.ID + " has been carried out. The link to set up your authenticator again was sent to the e-mail address on your account."}
		if err := s.queueNotice(tx, tl.auditLog, n); err != nil {
			return err
		}
	}
	return nil
}

// ReissueLink issues a new re-enrollment link for an executed ticket whose link has expired
// (the old one dies). Any agent; audited.
func (s *Service) ReissueLink(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if t.State != TicketExecuted {
			return false, ErrTicketState, nil
		}
		if now.Before(t.LinkExpiresAt) {
			return false, invalidf("the current link is still valid until %s", t.LinkExpiresAt.UTC().Format(time.RFC3339)), nil
		}
		if err := tx.UseReenrollTokens(t.AccountID, now); err != nil {
			return false, nil, err
		}
		token, err := issueReenrollToken(tx, t.AccountID, t.ID, now, ReenrollLinkTTL)
		if err != nil {
			return false, nil, err
		}
		t.LinkExpiresAt, t.ProgressAt = now.Add(ReenrollLinkTTL), now
		if err := tl.event("ticket.link_reissued", reason, map[string]any{"link_id": linkID(t.AccountID, token),
			"link_expires_at": t.LinkExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
			return false, nil, err
		}
		return true, nil, s.queueReenrollLink(tx, tl, *t, token)
	})
}

// CloseTicket closes an executed ticket whose link expired at least 7 days ago (the user never
// re-enrolled).
func (s *Service) CloseTicket(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if t.State != TicketExecuted || now.Before(t.LinkExpiresAt.Add(CloseAfterLink)) {
			return false, ErrTicketState, nil
		}
		t.Outcome, t.ClosedAt = OutcomeLinkExpired, now
		return true, nil, setState(tl, t, "closed", TicketClosed, reason, now, map[string]any{"outcome": OutcomeLinkExpired})
	})
}

// reenrolled closes the executed ticket of an account that has just confirmed a new enrollment
// from its re-enrollment link.
func (s *Service) reenrolled(tx Tx, al *auditLog, accountID string, now time.Time) error {
	t, err := tx.ActiveTicket(accountID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t, err = tx.LockTicket(t.ID); err != nil {
		return err
	}
	if t.State != TicketExecuted {
		return nil
	}
	tl := ticketLog{al, t.ID}
	if err := tl.event("ticket.reenrolled", "", map[string]any{"account_id": accountID}); err != nil {
		return err
	}
	t.Outcome, t.ClosedAt = OutcomeReenrolled, now
	if err := setState(tl, &t, "closed", TicketClosed, "", now, map[string]any{"outcome": OutcomeReenrolled}); err != nil {
		return err
	}
	t.Version++
	t.UpdatedAt = now
	return tx.UpdateTicket(t)
}

// Tick does the workflow's timed work up to now: cooling-off tickets whose window ended become
// ready, and tickets without progress for 7 days expire. It reports how many tickets changed.
// Several replicas may tick at once: each ticket is re-judged under its row lock.
func (s *Service) Tick(ctx context.Context) (int, error) {
	now := s.now()
	changed := 0
	var ids []string
	err := s.store.View(ctx, func(tx ReadTx) error {
		due, err := tx.StaleTickets([]TicketState{TicketCoolingOff}, now.Add(-CoolingOff+time.Nanosecond), 500)
		if err != nil {
			return err
		}
		stale, err := tx.StaleTickets([]TicketState{TicketOpen, TicketVerifying, TicketPendingApproval, TicketReady}, now.Add(-TicketIdleExpiry+time.Nanosecond), 500)
		if err != nil {
			return err
		}
		for _, t := range append(due, stale...) {
			ids = append(ids, t.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	system := Actor{Type: ActorSystem, ID: "workflow"}
	for _, id := range ids {
		did := false
		err := s.ticketChange(ctx, system, "", id, 0, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
			did = false // fn may run again on a retried transaction
			if ok, err := readyIfDue(tl, t, now); ok || err != nil {
				did = ok
				return ok, nil, err
			}
			switch t.State {
			case TicketOpen, TicketVerifying, TicketPendingApproval, TicketReady:
			default:
				return false, nil, nil
			}
			if now.Sub(t.ProgressAt) < TicketIdleExpiry {
				return false, nil, nil
			}
			t.ClosedAt, did = now, true
			return true, nil, setState(tl, t, "expired", TicketExpired, "", now, map[string]any{"idle_since": t.ProgressAt.UTC().Format(time.RFC3339)})
		})
		if err != nil {
			return changed, err
		}
		if did {
			changed++
		}
	}
	return changed, nil
}
