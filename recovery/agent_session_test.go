package recovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestAgentSessionLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		admin := readyAgent(t, s, "admin@desk.example", recovery.RoleAdmin)
		ann := readyAgent(t, s, "ann@desk.example", recovery.RoleSupervisor)
		me := actorOf(ann)
		en, err := s.AgentBeginEnrollment(ctx, me, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AgentConfirmEnrollment(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		c.Add(30 * time.Second)

		// Wrong password: no session.
		if _, _, err := s.StartAgentSession(ctx, me, ann.Email, "wrong password!!", ""); err == nil {
			t.Fatal("wrong password started a session")
		}
		pending, _, err := s.StartAgentSession(ctx, me, ann.Email, agentPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 43 { // 32 bytes, base64url without padding
			t.Fatalf("session id of %d characters", len(pending))
		}
		ss, _, err := s.AgentSession(ctx, pending)
		if err != nil || ss.Verified {
			t.Fatalf("pending session = %+v, %v", ss, err)
		}
		// The stored key is a hash, not the id.
		if strings.Contains(ss.IDHash, pending) {
			t.Fatal("the session id is stored in clear")
		}
		wantIs(t, "step-up on a pending session", second(s.AgentSessionStepUp(ctx, me, pending, code(t, en.Secret, recovery.Step(c.Now())))), recovery.ErrUnauthorized)
		full, err := s.CompleteAgentSignIn(ctx, me, pending, code(t, en.Secret, recovery.Step(c.Now())))
		if err != nil {
			t.Fatal(err)
		}
		if full == pending {
			t.Fatal("the id did not change at the TOTP step")
		}
		wantIs(t, "old id", third(s.AgentSession(ctx, pending)), recovery.ErrUnauthorized)
		ss, a, err := s.AgentSession(ctx, full)
		if err != nil || !ss.Verified || a.ID != ann.ID || !ss.StepUpAt.Equal(c.Now()) {
			t.Fatalf("verified session = %+v, %v", ss, err)
		}
		// Step-up: the replayed step is refused; the next step is recorded.
		wantIs(t, "replayed code", second(s.AgentSessionStepUp(ctx, me, full, code(t, en.Secret, recovery.Step(c.Now())))), recovery.ErrInvalidCode)
		c.Add(time.Minute)
		at, err := s.AgentSessionStepUp(ctx, me, full, code(t, en.Secret, recovery.Step(c.Now())))
		if err != nil || !at.Equal(c.Now()) {
			t.Fatalf("step-up = %v, %v", at, err)
		}
		if ss, _, _ := s.AgentSession(ctx, full); !ss.StepUpAt.Equal(at) {
			t.Fatalf("step-up not stored: %v", ss.StepUpAt)
		}
		// Idle: 30 minutes without use ends it.
		c.Add(recovery.AgentSessionIdle)
		wantIs(t, "idle", third(s.AgentSession(ctx, full)), recovery.ErrUnauthorized)

		// A pending session dies after 10 minutes.
		p2, _, err := s.StartAgentSession(ctx, me, ann.Email, agentPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Add(recovery.AgentSignInPending)
		wantIs(t, "stale pending", third(s.AgentSession(ctx, p2)), recovery.ErrUnauthorized)

		// Role change ends sessions; logout is audited and ends the session.
		p3, _, _ := s.StartAgentSession(ctx, me, ann.Email, agentPassword, "")
		c.Add(30 * time.Second)
		f3, err := s.CompleteAgentSignIn(ctx, me, p3, code(t, en.Secret, recovery.Step(c.Now())))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetAgentRole(ctx, actorOf(admin), admin.ID, ann.ID, recovery.RoleAgent); err != nil {
			t.Fatal(err)
		}
		wantIs(t, "after role change", third(s.AgentSession(ctx, f3)), recovery.ErrUnauthorized)
		p4, _, _ := s.StartAgentSession(ctx, me, ann.Email, agentPassword, "")
		c.Add(30 * time.Second)
		f4, err := s.CompleteAgentSignIn(ctx, me, p4, code(t, en.Secret, recovery.Step(c.Now())))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EndAgentSession(ctx, me, f4); err != nil {
			t.Fatal(err)
		}
		wantIs(t, "after logout", third(s.AgentSession(ctx, f4)), recovery.ErrUnauthorized)
		evs := allEvents(t, st)
		if len(eventsOf(evs, "agent.session_started")) != 3 || len(eventsOf(evs, "agent.signed_out")) != 1 {
			t.Fatalf("session events: %d started, %d signed out", len(eventsOf(evs, "agent.session_started")), len(eventsOf(evs, "agent.signed_out")))
		}
		for _, e := range evs {
			for _, tok := range []string{pending, full, p2, p3, f3, p4, f4} {
				if strings.Contains(string(e.Details), tok) {
					t.Fatalf("event %s carries a session id", e.Action)
				}
			}
		}
	})
}
