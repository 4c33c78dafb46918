package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RequestReset asks for a reset of the ticket's account (agent A, with a reason). It is refused
// with the list of missing items when the checklist does not satisfy the policy, and when the
// user can still help themselves.
func (s *Service) RequestReset(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		if refusal, err := s.policySatisfied(tx, *t); refusal != nil || err != nil {
			return false, refusal, err
		}
		t.RequestedBy, t.RequestedAt = a.ID, now
		return true, nil, setState(tl, t, "requested", TicketPendingApproval, reason, now, map[string]any{"requested_by": a.ID, "policy_version": t.PolicyVersion})
	})
}

// policySatisfied refuses a reset the checklist does not support: ErrSelfService when the user
// still has a working factor, a MissingError listing what the policy still needs.
func (s *Service) policySatisfied(tx ReadTx, t Ticket) (refusal, err error) {
	miss, self, err := s.missing(tx, t)
	switch {
	case err != nil:
		return nil, err
	case self:
		return ErrSelfService, nil
	case len(miss) > 0:
		return &MissingError{Missing: miss}, nil
	}
	return nil, nil
}

// checkStepUp refuses a step-up older than StepUpMaxAge (or in the future).
func checkStepUp(stepUpAt, now time.Time) error {
	if stepUpAt.IsZero() || stepUpAt.After(now) || now.Sub(stepUpAt) > StepUpMaxAge {
		return ErrStepUpRequired
	}
	return nil
}

// decisionCheck is what approving and denying share: a ticket pending approval, a fresh step-up,
// and separation of duties.
func decisionCheck(a Agent, t *Ticket, stepUpAt, now time.Time) error {
	if t.State != TicketPendingApproval {
		return ErrTicketState
	}
	if err := checkStepUp(stepUpAt, now); err != nil {
		return err
	}
	return twoPersonCheck(a, t)
}

// twoPersonCheck applies separation of duties for approving or denying: the approver is not the
// requester (nor the target, checked by ticketChange), and staff targets need an admin.
func twoPersonCheck(a Agent, t *Ticket) error {
	if a.ID == t.RequestedBy {
		return ErrSeparationOfDuty
	}
	if t.Staff && !a.AtLeast(RoleAdmin) {
		return ErrForbidden
	}
	return nil
}

// sodDetails records, in an approval's or denial's event, the separation-of-duty checks that
// passed.
func sodDetails(t *Ticket, now, stepUpAt time.Time) map[string]any {
	return map[string]any{"not_requester": true, "not_target": true, "staff_needs_admin": t.Staff,
		"step_up_age_seconds": int(now.Sub(stepUpAt) / time.Second)}
}

// Approve approves the requested reset (agent B ≠ A, supervisor or admin; admin for staff
// targets; B's own TOTP entered at most 5 minutes before, at stepUpAt). The cooling-off starts
// and every channel of record gets a notice with its own single-use veto link.
func (s *Service) Approve(ctx context.Context, actor Actor, ticketID string, version int64, stepUpAt time.Time, reason string) error {
	reason, err := validReason(reason, false)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleSupervisor, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := decisionCheck(a, t, stepUpAt, now); err != nil {
			return false, err, nil
		}
		// The checklist is judged again: nothing may have changed it since the request, but the
		// approver's decision must rest on a satisfied policy.
		if refusal, err := s.policySatisfied(tx, *t); refusal != nil || err != nil {
			return false, refusal, err
		}
		wait := CoolingOff
		if t.HighRisk {
			wait = CoolingOffHighRisk
		}
		t.ApprovedBy, t.ApprovedAt, t.CoolingUntil = a.ID, now, now.Add(wait)
		if err := setState(tl, t, "approved", TicketCoolingOff, reason, now, map[string]any{
			"approved_by": a.ID, "requested_by": t.RequestedBy, "cooling_until": t.CoolingUntil.UTC().Format(time.RFC3339),
			"sod": sodDetails(t, now, stepUpAt),
		}); err != nil {
			return false, nil, err
		}
		return true, nil, s.queueVetoNotices(tx, tl, *t, now)
	})
}

// recordChannels are the channels of record of a ticket's account: its e-mail, and the Telegram
// chat only if it was linked before the ticket opened.
func recordChannels(tx ReadTx, t Ticket) (email, chat string, err error) {
	acc, err := tx.Account(t.AccountID)
	if err != nil {
		return "", "", err
	}
	link, err := tx.TelegramLinkByAccount(t.AccountID)
	switch {
	case err == nil:
		if link.LinkedAt.Before(t.CreatedAt) {
			chat = link.ChatID
		}
	case !errors.Is(err, ErrNotFound):
		return "", "", err
	}
	return acc.Email, chat, nil
}

func (s *Service) queueVetoNotices(tx Tx, tl ticketLog, t Ticket, now time.Time) error {
	email, chat, err := recordChannels(tx, t)
	if err != nil {
		return err
	}
	until := t.CoolingUntil.UTC().Format("2006-01-02 15:04 UTC")
	for _, ch := range []struct{ channel, to string }{{NoticeEmail, email}, {NoticeTelegram, chat}} {
		if ch.to == "" {
			continue
		}
		token, hash, err := newSecretToken("veto")
		if err != nil {
			return err
		}
		if err := tx.PutVetoToken(VetoToken{Hash: hash, TicketID: t.ID, Channel: ch.channel, CreatedAt: now}); err != nil {
			return err
		}
		link := s.baseURL + "/veto/" + token
		body := fmt.Sprintf("A request to reset two-factor authentication on your account was approved by our support team (request %s).\n\n"+
			"If you asked for this, do nothing: the reset happens after %s.\n\n"+
			"If you did NOT ask for this, open this link and confirm, and we will stop it:\n%s\n", t.ID, until, link)
		subject := "Was this you? Two-factor reset requested"
		if t.State == TicketExecuted || t.State == TicketClosed { // a link re-issued during the hold
			body = fmt.Sprintf("Two-factor authentication on your account was reset by our support team (request %s).\n\n"+
				"If you asked for this, do nothing.\n\n"+
				"If you did NOT ask for this, open this link before %s and confirm: we will block the new setup and contact you:\n%s\n",
				t.ID, t.HoldUntil.UTC().Format("2006-01-02 15:04 UTC"), link)
			subject = "Was this you? Two-factor authentication was reset"
		}
		n := Notice{Channel: ch.channel, To: ch.to, Kind: "veto_request", AccountID: t.AccountID, TicketID: t.ID,
			Subject: subject, Body: body}
		if err := s.queueNotice(tx, tl.auditLog, n, token); err != nil {
			return err
		}
	}
	return nil
}

// Deny refuses the requested reset (same rules as Approve); the ticket is rejected.
func (s *Service) Deny(ctx context.Context, actor Actor, ticketID string, version int64, stepUpAt time.Time, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleSupervisor, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := decisionCheck(a, t, stepUpAt, now); err != nil {
			return false, err, nil
		}
		t.ClosedAt = now
		return true, nil, setState(tl, t, "denied", TicketRejected, reason, now, map[string]any{"denied_by": a.ID, "requested_by": t.RequestedBy,
			"sod": sodDetails(t, now, stepUpAt)})
	})
}

// Reject closes a ticket that will not lead to a reset (open, verifying or pending approval).
func (s *Service) Reject(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		switch t.State {
		case TicketOpen, TicketVerifying, TicketPendingApproval:
		default:
			return false, ErrTicketState, nil
		}
		t.ClosedAt = now
		return true, nil, setState(tl, t, "rejected", TicketRejected, reason, now, nil)
	})
}

// Withdraw is the user cancelling their request (before it is executed).
func (s *Service) Withdraw(ctx context.Context, actor Actor, ticketID string) error {
	return s.ticketChange(ctx, actor, "", ticketID, 0, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
		if !t.State.withdrawable() {
			return false, ErrTicketState, nil
		}
		t.ClosedAt = now
		return true, nil, setState(tl, t, "withdrawn", TicketWithdrawn, "", now, nil)
	})
}

// withdrawable reports whether the user may still cancel a ticket in this state: anything before
// the reset is carried out, and not a frozen ticket (an admin decides that one).
func (s TicketState) withdrawable() bool {
	switch s {
	case TicketOpen, TicketVerifying, TicketPendingApproval, TicketCoolingOff, TicketReady:
		return true
	}
	return false
}

// readyIfDue moves a cooling-off ticket whose window has ended to ready.
func readyIfDue(tl ticketLog, t *Ticket, now time.Time) (bool, error) {
	if t.State == TicketCoolingOff && !now.Before(t.CoolingUntil) {
		return true, setState(tl, t, "ready", TicketReady, "", now, map[string]any{"cooling_until": t.CoolingUntil.UTC().Format(time.RFC3339)})
	}
	return false, nil
}

// Freeze stops a ticket in cooling-off or ready when a supervisor sees a risk; only an admin
// unfreezes it.
func (s *Service) Freeze(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleSupervisor, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		switch t.State {
		case TicketPendingApproval, TicketCoolingOff, TicketReady:
		default:
			return false, ErrTicketState, nil
		}
		t.FrozenFrom = t.State
		return true, nil, setState(tl, t, "frozen", TicketFrozen, reason, now, map[string]any{"by": "agent"})
	})
}

// VetoInfo says what a veto link is for, for the confirmation page. It carries no account data.
type VetoInfo struct {
	TicketID string
	Frozen   bool // the ticket is already frozen
}

// vetoToken finds a usable veto token and its ticket, or ErrLinkUnavailable for every kind of
// bad link (unknown, used, for a ticket past its hold).
func vetoTicket(tx ReadTx, token string, now time.Time) (VetoToken, Ticket, error) {
	if len(token) != 32 {
		return VetoToken{}, Ticket{}, ErrLinkUnavailable
	}
	v, err := tx.VetoToken(hashToken("veto", token))
	if errors.Is(err, ErrNotFound) {
		return VetoToken{}, Ticket{}, ErrLinkUnavailable
	}
	if err != nil {
		return VetoToken{}, Ticket{}, err
	}
	t, err := tx.Ticket(v.TicketID)
	if err != nil {
		return VetoToken{}, Ticket{}, err
	}
	if !v.UsedAt.IsZero() || !vetoable(t, now) {
		return VetoToken{}, Ticket{}, ErrLinkUnavailable
	}
	return v, t, nil
}

// vetoable: a veto works from approval through the hold after the reset.
func vetoable(t Ticket, now time.Time) bool {
	switch t.State {
	case TicketCoolingOff, TicketReady:
		return true
	case TicketExecuted, TicketClosed:
		return !t.HoldUntil.IsZero() && now.Before(t.HoldUntil)
	}
	return false
}

// VetoLink checks a veto link for its confirmation page (a GET must not freeze anything).
func (s *Service) VetoLink(ctx context.Context, token string) (VetoInfo, error) {
	now := s.now()
	var info VetoInfo
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, t, err := vetoTicket(tx, token, now)
		if err != nil {
			return err
		}
		info = VetoInfo{TicketID: t.ID, Frozen: t.State == TicketFrozen}
		return nil
	})
	return info, err
}

// Veto is the owner saying "this wasn't me" through a veto link (POST). Before the reset it
// freezes the ticket; during the hold after the reset it also revokes the new enrollment and
// raises an alert. The link is single use.
func (s *Service) Veto(ctx context.Context, actor Actor, token string) (VetoInfo, error) {
	now := s.now()
	var info VetoInfo
	err := s.update(ctx, func(tx Tx) (error, error) {
		v, t, err := vetoTicket(tx, token, now)
		if errors.Is(err, ErrLinkUnavailable) {
			return ErrLinkUnavailable, nil
		}
		if err != nil {
			return nil, err
		}
		if t, err = tx.LockTicket(t.ID); err != nil {
			return nil, err
		}
		if ok, err := tx.UseVetoToken(v.Hash, now); err != nil || !ok {
			return ErrLinkUnavailable, err
		}
		tl := ticketLog{newAuditLog(tx, now, actor), t.ID}
		afterReset := t.State == TicketExecuted || t.State == TicketClosed
		if err := tl.event("ticket.vetoed", "", map[string]any{"channel": v.Channel, "state": string(t.State), "after_reset": afterReset}); err != nil {
			return nil, err
		}
		if afterReset {
			f, err := loadFactor(tx, t.AccountID)
			if err != nil {
				return nil, err
			}
			revoked := f.State
			f.State, f.SecretSealed, f.PendingSealed, f.PendingExpiresAt, f.UpdatedAt = StateReset, "", "", time.Time{}, now
			if err := tx.PutFactor(f); err != nil {
				return nil, err
			}
			if err := tx.ReplaceRecoveryCodes(t.AccountID, nil); err != nil {
				return nil, err
			}
			if err := tx.UseReenrollTokens(t.AccountID, now); err != nil {
				return nil, err
			}
			if _, err := tx.DeleteUserSessions(t.AccountID); err != nil {
				return nil, err
			}
			if err := tl.event("alert.raised", "", map[string]any{"why": "veto during the hold after a reset",
				"factor_state_before": string(revoked), "account_id": t.AccountID}); err != nil {
				return nil, err
			}
		}
		t.FrozenFrom = t.State
		if err := setState(tl, &t, "frozen", TicketFrozen, "", now, map[string]any{"by": "veto"}); err != nil {
			return nil, err
		}
		t.Version++
		t.UpdatedAt = now
		if err := tx.UpdateTicket(t); err != nil {
			return nil, err
		}
		// The chat that asked hears "on hold", as after a supervisor's freeze.
		if err := s.tellRequester(tx, tl, t); err != nil {
			return nil, err
		}
		info = VetoInfo{TicketID: t.ID, Frozen: true}
		return nil, nil
	})
	return info, err
}

// Unfreeze returns a frozen ticket to pending approval (admin, with a reason): the earlier
// approval no longer counts.
func (s *Service) Unfreeze(ctx context.Context, actor Actor, ticketID string, version int64, reason string) error {
	reason, err := validReason(reason, true)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAdmin, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if t.State != TicketFrozen {
			return false, ErrTicketState, nil
		}
		if t.FrozenFrom == TicketExecuted || t.FrozenFrom == TicketClosed {
			// The reset already happened and the owner objected: the account stays in reset until
			// a new ticket re-issues access.
			t.ClosedAt = now
			return true, nil, setState(tl, t, "unfrozen", TicketClosed, reason, now, map[string]any{"unfrozen_by": a.ID, "outcome": "vetoed_after_reset"})
		}
		t.ApprovedBy, t.ApprovedAt, t.CoolingUntil, t.FrozenFrom = "", time.Time{}, time.Time{}, ""
		return true, nil, setState(tl, t, "unfrozen", TicketPendingApproval, reason, now, map[string]any{"unfrozen_by": a.ID})
	})
}
