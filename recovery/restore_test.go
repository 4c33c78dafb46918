package recovery_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

var restoreActor = recovery.Actor{Type: recovery.ActorSystem, ID: "cli"}

// restoreDesk is a desk with one of each thing a restore must spend again.
type restoreDesk struct {
	aliceSecret  string // enrolled; the confirmation consumed the step of the clock's start
	userSession  string // bob's end-user session
	agentSession string // ann's console session (pending its TOTP)
	reenroll     string // carol's re-enrollment link token
	setup        string // dan's unused agent setup link token
	events       int64  // audit events after all of it
}

func newRestoreDesk(t *testing.T, s *recovery.Service, st recovery.Store, c *clock) restoreDesk {
	t.Helper()
	ctx := context.Background()
	var d restoreDesk
	d.aliceSecret, _ = enrolled(t, s, c, "alice")
	if _, _, err := s.UpsertAccount(ctx, api, "bob", recovery.AccountInput{Email: ptr("bob@example.com"), Password: ptr(agentPassword)}); err != nil {
		t.Fatal(err)
	}
	us, err := s.AccountSignIn(ctx, api, "bob@example.com", agentPassword)
	if err != nil {
		t.Fatal(err)
	}
	d.userSession = us.Token
	if _, _, err := s.UpsertAccount(ctx, api, "carol", recovery.AccountInput{Email: ptr("carol@example.com")}); err != nil {
		t.Fatal(err)
	}
	if d.reenroll, err = recovery.ResetForTest(ctx, s, "carol", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	ann := readyAgent(t, s, "ann@desk.example", recovery.RoleSupervisor)
	if d.agentSession, _, err = s.StartAgentSession(ctx, actorOf(ann), ann.Email, agentPassword, ""); err != nil {
		t.Fatal(err)
	}
	_, d.setup = createAgent(t, s, "dan@desk.example", recovery.RoleAgent)
	d.events = int64(len(allEvents(t, st)))
	return d
}

// TestFinishRestore: the last step of a restore ends every session, voids every unused
// single-use token, advances the replay guard past every code that could have been entered, and
// records all of it in one event that extends a valid chain — on SQLite and PostgreSQL.
func TestFinishRestore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		d := newRestoreDesk(t, s, st, c)
		// Before: everything works.
		if _, err := s.UserSession(ctx, d.userSession); err != nil {
			t.Fatalf("user session before the restore: %v", err)
		}
		if _, _, err := s.AgentSession(ctx, d.agentSession); err != nil {
			t.Fatalf("agent session before the restore: %v", err)
		}

		res, err := s.FinishRestore(ctx, restoreActor, recovery.RestoreInfo{Source: "backup.db"})
		if err != nil {
			t.Fatal(err)
		}
		step := recovery.Step(c.Now())
		if res.BackupEvents != d.events || res.Step != step+1 || res.Checkpoint.Count != d.events+1 {
			t.Errorf("result %+v: want %d backup events, step %d, checkpoint at %d", res, d.events, step+1, d.events+1)
		}
		// alice, bob and carol have factors (bob's and carol's disabled or reset), and the
		// agents' internal accounts: ann's has none yet. Every factor below step+1 moved.
		if res.FactorsAdvanced < 1 || res.AgentSessionsEnded != 1 || res.UserSessionsEnded != 1 {
			t.Errorf("result %+v: want factors advanced, 1 agent and 1 user session ended", res)
		}
		// carol's link, dan's setup link; ann's setup link was used by readyAgent.
		if res.TokensVoided[recovery.TokenReenrollLink] != 1 || res.TokensVoided[recovery.TokenAgentSetup] != 1 || res.TokensVoidedTotal() != 2 {
			t.Errorf("tokens voided %v, want one re-enrollment and one setup link", res.TokensVoided)
		}

		// After: sessions gone, links dead, the code of the window's forward edge refused.
		wantIs(t, "user session after the restore", second(s.UserSession(ctx, d.userSession)), recovery.ErrUnauthorized)
		wantIs(t, "agent session after the restore", third(s.AgentSession(ctx, d.agentSession)), recovery.ErrUnauthorized)
		wantIs(t, "re-enrollment link after the restore", second(s.BeginEnrollment(ctx, api, "carol", d.reenroll)), recovery.ErrRecoveryRequired)
		wantIs(t, "setup link after the restore", second(s.CompleteSetup(ctx, d.setup, agentPassword)), recovery.ErrNotFound)
		for _, st := range []int64{step, step + 1} {
			wantIs(t, "a code of the current window", second(s.Verify(ctx, api, "alice", code(t, d.aliceSecret, st))), recovery.ErrInvalidCode)
		}
		// Codes work again once the clock has passed the advanced step.
		c.Add(60 * time.Second)
		if _, err := s.Verify(ctx, api, "alice", code(t, d.aliceSecret, recovery.Step(c.Now()))); err != nil {
			t.Errorf("a fresh code a minute after the restore: %v", err)
		}

		// The chain holds the restore, with the backup's head and the counts.
		report, err := s.VerifyAudit(ctx, nil)
		if err != nil || !report.OK() {
			t.Fatalf("audit after the restore: %+v, %v", report, err)
		}
		evs := allEvents(t, st)
		restored := evs[d.events] // seq d.events+1
		if restored.Action != "system.restored" || restored.ActorType != recovery.ActorSystem || restored.Hash != res.Checkpoint.Head {
			t.Fatalf("event %d is %s by %s (hash %s), want system.restored with the checkpoint's head", restored.Seq, restored.Action, restored.ActorType, restored.Hash)
		}
		var details struct {
			Source       string           `json:"source"`
			BackupEvents int64            `json:"backup_events"`
			BackupHead   string           `json:"backup_head"`
			MinStep      int64            `json:"min_step"`
			Tokens       map[string]int64 `json:"tokens_voided"`
			AgentEnded   int64            `json:"agent_sessions_ended"`
			UserEnded    int64            `json:"user_sessions_ended"`
		}
		if err := json.Unmarshal(restored.Details, &details); err != nil {
			t.Fatal(err)
		}
		if details.Source != "backup.db" || details.BackupEvents != d.events || details.BackupHead != evs[d.events-1].Hash ||
			details.MinStep != step+1 || details.AgentEnded != 1 || details.UserEnded != 1 || len(details.Tokens) != len(recovery.RestoreTokenKinds()) {
			t.Errorf("system.restored details: %s", restored.Details)
		}

		// A second run finds nothing left to spend.
		before := int64(len(allEvents(t, st)))
		again, err := s.FinishRestore(ctx, restoreActor, recovery.RestoreInfo{Source: "again"})
		if err != nil {
			t.Fatal(err)
		}
		if again.AgentSessionsEnded+again.UserSessionsEnded+again.TokensVoidedTotal() != 0 || again.BackupEvents != before {
			t.Errorf("second run: %+v, want nothing ended or voided and %d backup events", again, before)
		}
	})
}

// TestRestoreRefusesReplayAfterBackup is the replay the last step exists for: a code consumed
// after the backup is not consumed in the backup. Restored without the last step, the copy
// accepts it a second time; with it, the copy refuses it.
func TestRestoreRefusesReplayAfterBackup(t *testing.T) {
	ctx := context.Background()
	live, path := storetest.SQLite(t)
	c := newClock()
	s := newService(t, live, c)
	secret, _ := enrolled(t, s, c, "alice")
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlstore.Backup(ctx, path, backup); err != nil {
		t.Fatal(err)
	}
	// After the backup, alice signs in with the next step's code.
	c.Add(30 * time.Second)
	used := code(t, secret, recovery.Step(c.Now()))
	if _, err := s.Verify(ctx, api, "alice", used); err != nil {
		t.Fatal(err)
	}
	wantIs(t, "the same code again on the live database", second(s.Verify(ctx, api, "alice", used)), recovery.ErrInvalidCode)

	restoreCopy := func(name string) *recovery.Service {
		t.Helper()
		p := filepath.Join(dir, name)
		if _, err := sqlstore.Backup(ctx, backup, p); err != nil { // a copy of the backup file
			t.Fatal(err)
		}
		st, err := sqlstore.Open(ctx, p, sqlstore.Options{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return newService(t, st, c)
	}
	// Control: the backup alone lets the code through a second time.
	if _, err := restoreCopy("control.db").Verify(ctx, api, "alice", used); err != nil {
		t.Fatalf("control: the backup without the last step refused the replay (%v): the test proves nothing", err)
	}
	restored := restoreCopy("restored.db")
	if _, err := restored.FinishRestore(ctx, restoreActor, recovery.RestoreInfo{Source: "backup.db"}); err != nil {
		t.Fatal(err)
	}
	wantIs(t, "the code consumed after the backup", second(restored.Verify(ctx, api, "alice", used)), recovery.ErrInvalidCode)
	// A phone running one step ahead shows the next code already: it was enterable before the
	// restore too, so it is refused as well.
	wantIs(t, "the next step's code", second(restored.Verify(ctx, api, "alice", code(t, secret, recovery.Step(c.Now())+1))), recovery.ErrInvalidCode)
}

// TestFinishRestoreRefuses: a broken chain, or a chain that grows while the last step runs (a
// server still writing), stops the restore with nothing changed.
func TestFinishRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	t.Run("chain grows", func(t *testing.T) {
		st, _ := storetest.SQLite(t)
		c := newClock()
		s := agentService(t, st, c)
		d := newRestoreDesk(t, s, st, c)
		// Another service on the same database appends between the walk and the transaction.
		other := newService(t, st, c)
		racing := &racingStore{Store: st, before: func() {
			if err := recovery.AppendTestEvent(ctx, other, restoreActor, 1); err != nil {
				t.Error(err)
			}
		}}
		rs := agentService(t, racing, c)
		_, err := rs.FinishRestore(ctx, restoreActor, recovery.RestoreInfo{Source: "x"})
		wantIs(t, "finish while the chain grows", err, recovery.ErrRestoreRace)
		if _, err := s.UserSession(ctx, d.userSession); err != nil {
			t.Errorf("a refused restore ended a session: %v", err)
		}
		if n := len(eventsOf(allEvents(t, st), "system.restored")); n != 0 {
			t.Errorf("%d system.restored events after a refused restore", n)
		}
	})
	t.Run("broken chain", func(t *testing.T) {
		st, path := storetest.SQLite(t)
		c := newClock()
		s := agentService(t, st, c)
		d := newRestoreDesk(t, s, st, c)
		storetest.DropAuditGuards(t, path)
		storetest.Exec(t, path, "UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 2")
		_, err := s.FinishRestore(ctx, restoreActor, recovery.RestoreInfo{Source: "x"})
		wantIs(t, "finish on a broken chain", err, recovery.ErrChainBroken)
		if _, err := s.UserSession(ctx, d.userSession); err != nil {
			t.Errorf("a refused restore ended a session: %v", err)
		}
	})
}

// racingStore runs before once, ahead of the first Update: a write by someone else that lands
// between FinishRestore's walk of the chain and its transaction.
type racingStore struct {
	recovery.Store
	once   sync.Once
	before func()
}

func (r *racingStore) Update(ctx context.Context, fn func(tx recovery.Tx) error) error {
	r.once.Do(r.before)
	return r.Store.Update(ctx, fn)
}

// TestFinishRestoreReissuesVetoLinks: the restore voids the veto link of a ticket in its
// cooling-off with every other token, and sends the owner a new one at once, so a restore never
// takes the owner's veto away; the new link freezes the ticket.
func TestFinishRestoreReissuesVetoLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		d.passChecklist(id)
		if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		if err := d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.stepUp(), ""); err != nil {
			t.Fatal(err)
		}
		old := vetoTokens(d.deliver(recovery.NoticeEmail))[recovery.NoticeEmail]
		if old == "" {
			t.Fatal("no veto link mailed")
		}
		res, err := d.svc.FinishRestore(bg, restoreActor, recovery.RestoreInfo{Source: "backup.db"})
		if err != nil {
			t.Fatal(err)
		}
		if res.TokensVoided[recovery.TokenVetoLink] != 1 || res.VetoLinksReissued != 1 {
			t.Errorf("veto links voided %d, re-issued %d; want 1 and 1", res.TokensVoided[recovery.TokenVetoLink], res.VetoLinksReissued)
		}
		_, err = d.svc.VetoLink(bg, old)
		wantErr(t, err, recovery.ErrLinkUnavailable)
		fresh := vetoTokens(d.deliver(recovery.NoticeEmail))[recovery.NoticeEmail]
		if fresh == "" || fresh == old {
			t.Fatal("no new veto link mailed after the restore")
		}
		if _, err := d.svc.Veto(bg, recovery.Actor{Type: recovery.ActorEndUser, ID: "veto-link"}, fresh); err != nil {
			t.Fatal(err)
		}
		if st := d.ticket(id).State; st != recovery.TicketFrozen {
			t.Fatalf("after the new link's veto the ticket is %s, want frozen", st)
		}
	})
}
