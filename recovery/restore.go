package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A restore brings a database back to the moment of its backup. Everything spent since then —
// TOTP time steps consumed, sessions ended, links used — is unspent again in the copy, so before
// anyone uses it the last step of every restore (Service.FinishRestore) spends it again:
//
//   - every factor's LastStep is raised to the newest step a code can be accepted for now (the
//     current step + 1, the window's forward edge), so that no code entered before the restore —
//     in particular one consumed after the backup, which the copy does not remember — can be
//     replayed: RFC 6238 §5.2 holds across the restore. Codes work again from the step after.
//   - every agent and end-user session ends: sessions ended since the backup (sign-outs,
//     disabled agents, resets) would otherwise be alive again.
//   - every single-use token or code still unused in the copy is voided (re-enrollment, veto
//     and setup links, Telegram link tokens, e-mail check codes): one used since the backup
//     would otherwise work a second time. Whoever still needs one gets a new one; the owners of
//     tickets that can still be vetoed are sent new veto links at once.
//   - a system.restored event starts the chain's new history: it records the backup's event
//     count and head hash and what was changed. Checkpoints taken after the backup no longer
//     match the chain (it was rolled back), so the caller signs a new one from RestoreResult.
//
// Not undone: recovery codes used since the backup are unused again (nothing in the copy tells
// which; the users' remaining codes must keep working), and throttle counters are as they were.

// ErrRestoreRace is returned by FinishRestore when the audit chain grew while it ran: a server
// is still writing to the database.
var ErrRestoreRace = errors.New("the audit chain grew during the restore's last step: a server is still running against this database; stop every server and run it again")

// ErrChainBroken is returned by FinishRestore for a database whose audit chain does not verify.
var ErrChainBroken = errors.New("the audit chain does not verify")

// RestoreInfo describes the restore being finished, for the record.
type RestoreInfo struct {
	// Source names what was restored (a backup file's name, "pg_restore"); it goes into the
	// audit event as is, so it must not carry a secret (no DSN).
	Source string
}

// RestoreResult is what the last step of a restore found and changed.
type RestoreResult struct {
	BackupEvents       int64  // events in the restored chain before the system.restored event
	BackupHead         string // their head hash
	Step               int64  // every factor's LastStep is at least this now
	FactorsAdvanced    int64
	AgentSessionsEnded int64
	UserSessionsEnded  int64
	TokensVoided       map[string]int64 // by kind (RestoreTokenKinds)
	// VetoLinksReissued counts the tickets whose owners were sent new veto links: those in
	// cooling-off or ready, and those in the hold after their reset.
	VetoLinksReissued int64
	// Checkpoint is the chain's length and head with the system.restored event: sign it and keep
	// it off the machine in place of the checkpoints taken before the restore.
	Checkpoint Checkpoint
}

// TokensVoidedTotal is the number of tokens voided, all kinds together.
func (r RestoreResult) TokensVoidedTotal() int64 {
	var n int64
	for _, c := range r.TokensVoided {
		n += c
	}
	return n
}

// FinishRestore is the last step of every restore (see above), run once the restored database
// is in place and before any server uses it. It first walks the whole audit chain and refuses a
// broken one (ErrChainBroken); then, in one transaction, it advances the replay steps, ends the
// sessions, voids the unused tokens and appends system.restored. If the chain grew between the
// walk and the transaction, a server is running: it changes nothing and returns ErrRestoreRace.
// Running it twice is harmless (the second run finds nothing left to spend).
func (s *Service) FinishRestore(ctx context.Context, actor Actor, info RestoreInfo) (RestoreResult, error) {
	report, err := s.VerifyAudit(ctx, nil)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("walk the audit chain: %w", err)
	}
	if !report.OK() {
		return RestoreResult{}, fmt.Errorf("%w: broken at seq %d: %s", ErrChainBroken, report.BadSeq, report.Problem)
	}
	now := s.now()
	var res RestoreResult
	err = s.store.Update(ctx, func(tx Tx) error {
		// fn may run again after a serialization failure: every field is set afresh.
		res = RestoreResult{BackupEvents: report.Count, BackupHead: report.Head, Step: Step(now) + 1}
		seq, head, err := tx.AuditHead()
		if err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		if seq != report.HeadSeq || head != report.Head {
			return ErrRestoreRace
		}
		if res.FactorsAdvanced, err = tx.AdvanceLastSteps(res.Step, now); err != nil {
			return err
		}
		if res.AgentSessionsEnded, res.UserSessionsEnded, err = tx.EndAllSessions(); err != nil {
			return err
		}
		if res.TokensVoided, err = tx.VoidUnusedTokens(now); err != nil {
			return err
		}
		voided := map[string]any{}
		for _, k := range RestoreTokenKinds() {
			voided[k] = res.TokensVoided[k]
		}
		al := newAuditLog(tx, now, actor)
		// The owners of tickets that can still be vetoed lost their veto links with the other
		// tokens: they get new ones, so a restore never takes the owner's veto away.
		if res.VetoLinksReissued, err = s.reissueVetoLinks(tx, al, now); err != nil {
			return err
		}
		if err := al.add("system.restored", "system", "database", map[string]any{
			"source":               info.Source,
			"backup_events":        res.BackupEvents,
			"backup_head":          res.BackupHead,
			"min_step":             res.Step,
			"factors_advanced":     res.FactorsAdvanced,
			"agent_sessions_ended": res.AgentSessionsEnded,
			"user_sessions_ended":  res.UserSessionsEnded,
			"tokens_voided":        voided,
			"veto_links_reissued":  res.VetoLinksReissued,
		}); err != nil {
			return err
		}
		res.Checkpoint = Checkpoint{Count: al.seq, Head: al.hash}
		return nil
	})
	if err != nil {
		return RestoreResult{}, err
	}
	return res, nil
}

// reissueVetoLinks queues new veto notices for every ticket that can still be vetoed (vetoable),
// after VoidUnusedTokens voided the old links. It pages through the candidate states so that a
// desk with many closed tickets is not read at once.
func (s *Service) reissueVetoLinks(tx Tx, al *auditLog, now time.Time) (int64, error) {
	var n int64
	f := TicketFilter{States: []TicketState{TicketCoolingOff, TicketReady, TicketExecuted, TicketClosed}, Limit: 500}
	for {
		page, err := tx.Tickets(f)
		if err != nil {
			return n, fmt.Errorf("list vetoable tickets: %w", err)
		}
		for _, t := range page {
			if !vetoable(t, now) {
				continue
			}
			if err := s.queueVetoNotices(tx, ticketLog{al, t.ID}, t, now); err != nil {
				return n, err
			}
			n++
		}
		if len(page) < f.Limit {
			return n, nil
		}
		last := page[len(page)-1]
		f.After = &TicketCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}
