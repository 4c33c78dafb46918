package recovery

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// beginVerifying moves an open ticket to verifying when the first checklist item is recorded.
func beginVerifying(tl ticketLog, t *Ticket, now time.Time) error {
	if t.State == TicketOpen {
		return setState(tl, t, "verifying", TicketVerifying, "", now, nil)
	}
	return nil
}

// checkable reports whether checklist items may be recorded on t.
func checkable(t *Ticket) error {
	if !t.Matched() {
		return ErrUnmatchedTicket
	}
	if t.State != TicketOpen && t.State != TicketVerifying {
		return ErrTicketState
	}
	return nil
}

func (s *Service) policyItem(key, kind string) (PolicyItem, error) {
	item, ok := s.policy.Item(key)
	if !ok {
		return PolicyItem{}, invalidf("the policy has no checklist item %q", key)
	}
	if kind != "" && item.Kind != kind {
		return PolicyItem{}, invalidf("checklist item %q is not of kind %s", key, kind)
	}
	return item, nil
}

// RecordPossession records whether the user still has a working recovery code or old device. If
// they do, the ticket closes with the self-service outcome: a reset is refused while the user can
// help themselves.
func (s *Service) RecordPossession(ctx context.Context, actor Actor, ticketID string, version int64, key string, works bool, note string) error {
	item, err := s.policyItem(key, KindPossession)
	if err != nil {
		return err
	}
	note, err = validReason(note, false)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		r := ChecklistResult{TicketID: t.ID, ItemKey: item.Key, Kind: item.Kind, Passed: works, Method: "attested", AgentID: a.ID, Note: note, CreatedAt: now}
		if err := recordResult(tx, tl, r); err != nil {
			return false, nil, err
		}
		if works {
			t.Outcome, t.ClosedAt = OutcomeSelfService, now
			return true, nil, setState(tl, t, "self_service", TicketClosed, note, now, map[string]any{"outcome": OutcomeSelfService})
		}
		return true, nil, beginVerifying(tl, t, now)
	})
}

// Attest records an item the agent establishes themselves: a document check (ID and selfie
// against KYC) or a callback to the phone of record. evidenceRef is kept only as its SHA-256.
func (s *Service) Attest(ctx context.Context, actor Actor, ticketID string, version int64, key string, passed bool, note, evidenceRef string) error {
	item, err := s.policyItem(key, "")
	if err != nil {
		return err
	}
	if item.Kind != KindDocument && item.Kind != KindCallback {
		return invalidf("checklist item %q is not attested by an agent", key)
	}
	if note, err = validReason(note, true); err != nil {
		return invalidf("an evidence note is required")
	}
	if err := validText("evidence", evidenceRef, 512); err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		r := ChecklistResult{TicketID: t.ID, ItemKey: item.Key, Kind: item.Kind, Passed: passed, Method: "attested",
			AgentID: a.ID, Note: note, EvidenceSHA256: evidenceHash(evidenceRef), CreatedAt: now}
		if err := recordResult(tx, tl, r); err != nil {
			return false, nil, err
		}
		return true, nil, beginVerifying(tl, t, now)
	})
}

// CheckKnowledge compares the user's answer (typed by the agent) with the account fact the
// item names and records match or no match. The stored fact is never returned.
func (s *Service) CheckKnowledge(ctx context.Context, actor Actor, ticketID string, version int64, key, answer string) (bool, error) {
	item, err := s.policyItem(key, KindKnowledge)
	if err != nil {
		return false, err
	}
	if err := validText("answer", answer, 256); err != nil {
		return false, err
	}
	var matched bool
	err = s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		acc, err := tx.Account(t.AccountID)
		if err != nil {
			return false, nil, err
		}
		facts, err := s.AccountFacts(acc)
		if err != nil {
			return false, nil, err
		}
		stored, ok := facts[item.Fact]
		matched = ok && KnowledgeMatch(stored, answer)
		r := ChecklistResult{TicketID: t.ID, ItemKey: item.Key, Kind: item.Kind, Passed: matched, Method: "system_compare", AgentID: a.ID, CreatedAt: now}
		if err := recordResult(tx, tl, r); err != nil {
			return false, nil, err
		}
		return true, nil, beginVerifying(tl, t, now)
	})
	return matched, err
}

// SendEmailCode sends a one-time 6-digit code to the account's e-mail of record for the item
// key (of kind email_code). A new code replaces an earlier one.
func (s *Service) SendEmailCode(ctx context.Context, actor Actor, ticketID string, version int64, key string) error {
	if _, err := s.policyItem(key, KindEmailCode); err != nil {
		return err
	}
	code, err := newEmailCode()
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		acc, err := tx.Account(t.AccountID)
		if err != nil {
			return false, nil, err
		}
		if acc.Email == "" {
			return false, invalidf("the account has no e-mail of record"), nil
		}
		ec := EmailCode{TicketID: t.ID, Hash: hashToken("email-code:"+t.ID, code), CreatedAt: now, ExpiresAt: now.Add(EmailCodeTTL)}
		if err := tx.PutEmailCode(ec); err != nil {
			return false, nil, err
		}
		body := fmt.Sprintf("Your support verification code is %s.\n\nA support agent working on your request %s will ask you for it. "+
			"It expires in 10 minutes. If you did not contact support, do not share it with anyone: ignore this mail.", code, t.ID)
		n := Notice{Channel: NoticeEmail, To: acc.Email, Kind: "email_code", AccountID: acc.ID, TicketID: t.ID,
			Subject: "Your support verification code", Body: body}
		if err := s.queueNotice(tx, tl.auditLog, n, code); err != nil {
			return false, nil, err
		}
		if err := tl.event("ticket.email_code_sent", "", map[string]any{"item": key, "expires_at": ec.ExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
			return false, nil, err
		}
		return true, nil, beginVerifying(tl, t, now)
	})
}

func newEmailCode() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	n := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 1000000
	return fmt.Sprintf("%06d", n), nil
}

// CheckEmailCode checks the code the user repeated to the agent: single use, 10 minutes, 5
// attempts. It reports whether it matched; the item is recorded passed on a match and failed
// when the attempts run out.
func (s *Service) CheckEmailCode(ctx context.Context, actor Actor, ticketID string, version int64, key, code string) (bool, error) {
	item, err := s.policyItem(key, KindEmailCode)
	if err != nil {
		return false, err
	}
	norm, err := NormalizeTOTPCode(code) // the same six-digit rules
	if err != nil {
		return false, err
	}
	var matched bool
	err = s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := checkable(t); err != nil {
			return false, err, nil
		}
		ec, err := tx.EmailCode(t.ID)
		if errors.Is(err, ErrNotFound) {
			return false, ErrInvalidCode, nil
		}
		if err != nil {
			return false, nil, err
		}
		if !ec.UsedAt.IsZero() || !now.Before(ec.ExpiresAt) || ec.Attempts >= EmailCodeAttempts {
			return false, ErrExpired, tl.event("ticket.email_code_refused", "", map[string]any{"item": key, "why": "expired_or_used"})
		}
		ec.Attempts++
		matched = subtle.ConstantTimeCompare([]byte(ec.Hash), []byte(hashToken("email-code:"+t.ID, norm))) == 1
		if matched {
			ec.UsedAt = now
		}
		if err := tx.PutEmailCode(ec); err != nil {
			return false, nil, err
		}
		if !matched && ec.Attempts < EmailCodeAttempts {
			return false, ErrInvalidCode, tl.event("ticket.email_code_failed", "", map[string]any{"item": key, "attempts": ec.Attempts})
		}
		r := ChecklistResult{TicketID: t.ID, ItemKey: item.Key, Kind: item.Kind, Passed: matched, Method: "code", AgentID: a.ID, CreatedAt: now}
		if err := recordResult(tx, tl, r); err != nil {
			return false, nil, err
		}
		if !matched {
			return true, ErrInvalidCode, beginVerifying(tl, t, now)
		}
		return true, nil, beginVerifying(tl, t, now)
	})
	return matched, err
}

// latestResults keeps the newest result of each item.
func latestResults(rs []ChecklistResult) []ItemResult {
	last := map[string]int{}
	var out []ItemResult
	for _, r := range rs {
		if i, ok := last[r.ItemKey]; ok {
			out[i].Passed = r.Passed
			continue
		}
		last[r.ItemKey] = len(out)
		out = append(out, ItemResult{Key: r.ItemKey, Passed: r.Passed})
	}
	return out
}

// missing is what the policy still needs on t, and whether a possession item passed.
func (s *Service) missing(tx ReadTx, t Ticket) ([]string, bool, error) {
	rs, err := tx.ChecklistResults(t.ID)
	if err != nil {
		return nil, false, err
	}
	results := latestResults(rs)
	for _, r := range results {
		if item, ok := s.policy.Item(r.Key); ok && item.Kind == KindPossession && r.Passed {
			return nil, true, nil
		}
	}
	return s.policy.Missing(t.Risk, results), false, nil
}
