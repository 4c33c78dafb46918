package recovery_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

const deskURL = "https://desk.example.com"

var cliActor = recovery.Actor{Type: recovery.ActorSystem, ID: "cli"}

// agentPassword is the password every test agent sets; tests scan the audit for it.
const agentPassword = "correct horse battery staple"

func agentService(t testing.TB, st recovery.Store, c *clock) *recovery.Service {
	t.Helper()
	s, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), Issuer: "RecoveryDesk Test",
		BaseURL: deskURL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func actorOf(a recovery.Agent) recovery.Actor {
	return recovery.Actor{Type: recovery.ActorAgent, ID: a.ID, RequestID: "req-" + a.ID}
}

// setupToken takes the token out of a setup link, checking the link's form.
func setupToken(t testing.TB, link string) string {
	t.Helper()
	tok, ok := strings.CutPrefix(link, deskURL+"/setup/")
	if !ok || len(tok) != 22 {
		t.Fatalf("setup link %q is not %s/setup/<22 characters>", link, deskURL)
	}
	return tok
}

// createAgent creates an agent from the command line and returns it with its setup token.
func createAgent(t testing.TB, s *recovery.Service, email, role string) (recovery.Agent, string) {
	t.Helper()
	a, link, err := s.CreateAgent(context.Background(), cliActor, email, strings.Split(email, "@")[0], role)
	if err != nil {
		t.Fatalf("create agent %s: %v", email, err)
	}
	return a, setupToken(t, link)
}

// readyAgent creates an agent who has set agentPassword.
func readyAgent(t testing.TB, s *recovery.Service, email, role string) recovery.Agent {
	t.Helper()
	_, tok := createAgent(t, s, email, role)
	a, err := s.CompleteSetup(context.Background(), tok, agentPassword)
	if err != nil {
		t.Fatalf("complete setup of %s: %v", email, err)
	}
	return a
}

func allEvents(t testing.TB, st recovery.Store) []recovery.Event {
	t.Helper()
	var evs []recovery.Event
	err := st.View(context.Background(), func(tx recovery.ReadTx) error {
		var err error
		evs, err = tx.AuditEvents(0, 1<<20)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func eventsOf(evs []recovery.Event, action string) []recovery.Event {
	var out []recovery.Event
	for _, e := range evs {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func wantIs(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func TestAgentSetupLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		created := c.Now()
		a, tokA := createAgent(t, s, "Ann@Desk.example", recovery.RoleAgent)
		b, tokB := createAgent(t, s, "bob@desk.example", recovery.RoleSupervisor)
		if !strings.HasPrefix(a.ID, "agt_") || len(a.ID) != 20 || a.Email != "Ann@Desk.example" || a.EmailKey != "ann@desk.example" ||
			a.Role != recovery.RoleAgent || a.PasswordSet || a.Disabled || !a.CreatedAt.Equal(created) {
			t.Fatalf("created agent = %+v", a)
		}
		// E-mails are unique regardless of case.
		_, _, err := s.CreateAgent(ctx, cliActor, "ANN@desk.EXAMPLE", "Ann again", recovery.RoleAgent)
		wantIs(t, "duplicate e-mail", err, recovery.ErrEmailTaken)
		for _, bad := range [][3]string{{"not-an-email", "X", "agent"}, {"x@y.example", " ", "agent"}, {"x@y.example", "X", "root"}} {
			_, _, err := s.CreateAgent(ctx, cliActor, bad[0], bad[1], bad[2])
			wantIs(t, "bad input "+strings.Join(bad[:], ","), err, recovery.ErrInvalidInput)
		}

		got, err := s.SetupLink(ctx, tokA)
		if err != nil || got.ID != a.ID {
			t.Fatalf("SetupLink = %+v, %v", got, err)
		}
		// Unknown and foreign tokens: one generic answer.
		// A re-enrollment token is a real token of another purpose.
		enrolled(t, s, c, "host-1")
		reenroll, err := recovery.ResetForTest(ctx, s, "host-1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"", "nope", reenroll, tokA + "x", strings.Repeat("a", 200)} {
			_, err := s.SetupLink(ctx, tok)
			wantIs(t, "SetupLink("+tok+")", err, recovery.ErrNotFound)
			_, err = s.CompleteSetup(ctx, tok, agentPassword)
			wantIs(t, "CompleteSetup(unknown)", err, recovery.ErrNotFound)
		}
		// A setup token does not create a first admin.
		_, err = s.CompleteFirstAdmin(ctx, tokA, "eve@desk.example", "Eve", agentPassword)
		wantIs(t, "setup token as first-admin token", err, recovery.ErrNotFound)

		// Password bounds; a refused password leaves the link usable.
		for _, pw := range []string{"short", strings.Repeat("x", 11), strings.Repeat("x", 257), "bad utf-8 \xff\xfe pass"} {
			_, err := s.CompleteSetup(ctx, tokA, pw)
			wantIs(t, "password of "+strconv.Itoa(len(pw))+" bytes", err, recovery.ErrInvalidInput)
		}
		// At 23:59:59 the link works, and once only.
		c.Set(created.Add(recovery.SetupLinkTTL - time.Second))
		done, err := s.CompleteSetup(ctx, tokA, strings.Repeat("é", 12))
		if err != nil || !done.PasswordSet || done.ID != a.ID {
			t.Fatalf("CompleteSetup at 23:59:59 = %+v, %v", done, err)
		}
		_, err = s.CompleteSetup(ctx, tokA, agentPassword)
		wantIs(t, "second use", err, recovery.ErrNotFound)
		_, err = s.SetupLink(ctx, tokA)
		wantIs(t, "used link", err, recovery.ErrNotFound)
		if _, err := s.AgentSignIn(ctx, actorOf(a), "ann@desk.example", strings.Repeat("é", 12)); err != nil {
			t.Fatalf("sign in with the password set: %v", err)
		}
		// At 24:00:00 it does not.
		if _, err := s.SetupLink(ctx, tokB); err != nil {
			t.Fatalf("b's link at 23:59:59: %v", err)
		}
		c.Set(created.Add(recovery.SetupLinkTTL))
		_, err = s.SetupLink(ctx, tokB)
		wantIs(t, "expired link", err, recovery.ErrNotFound)
		_, err = s.CompleteSetup(ctx, tokB, agentPassword)
		wantIs(t, "expired link", err, recovery.ErrNotFound)
		if got, _ := s.Agent(ctx, b.ID); got.PasswordSet {
			t.Error("an expired link set a password")
		}

		evs := allEvents(t, st)
		if n := len(eventsOf(evs, "agent.created")); n != 2 {
			t.Errorf("%d agent.created events, want 2", n)
		}
		links := eventsOf(evs, "agent.setup_link_issued")
		if len(links) != 2 || !strings.Contains(string(links[0].Details), `"purpose":"new_agent"`) ||
			!strings.Contains(string(links[0].Details), `"expires_at":"2026-11-28T12:00:10Z"`) {
			t.Errorf("setup_link_issued events: %v", links)
		}
		set := eventsOf(evs, "agent.password_set")
		if len(set) != 1 || set[0].TargetID != a.ID || set[0].ActorID != a.ID {
			t.Errorf("password_set events: %+v", set)
		}
	})
}

func TestAgentSetupLinkConcurrentUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		s := agentService(t, st, newClock())
		_, tok := createAgent(t, s, "race@desk.example", recovery.RoleAgent)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, notFound := 0, 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CompleteSetup(context.Background(), tok, agentPassword)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, recovery.ErrNotFound):
					notFound++
				default:
					t.Errorf("CompleteSetup: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 || notFound != 7 {
			t.Fatalf("%d successes, %d refusals; want 1 and 7", ok, notFound)
		}
	})
}

func TestFirstAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		serve := recovery.Actor{Type: recovery.ActorSystem, ID: "serve"}
		link1, exp1, err := s.IssueFirstAdminLink(ctx, serve)
		if err != nil || !exp1.Equal(c.Now().Add(24*time.Hour)) {
			t.Fatalf("first link: %q %v %v", link1, exp1, err)
		}
		tok1 := setupToken(t, link1)
		// A restart issues a new link; the old one dies.
		c.Add(time.Minute)
		link2, _, err := s.IssueFirstAdminLink(ctx, serve)
		if err != nil || link2 == link1 {
			t.Fatalf("second link: %q %v", link2, err)
		}
		tok2 := setupToken(t, link2)
		_, err = s.SetupLink(ctx, tok1)
		wantIs(t, "replaced first-admin link", err, recovery.ErrNotFound)
		_, err = s.CompleteFirstAdmin(ctx, tok1, "old@desk.example", "Old", agentPassword)
		wantIs(t, "replaced first-admin link", err, recovery.ErrNotFound)
		who, err := s.SetupLink(ctx, tok2)
		if err != nil || who.ID != "" || who.Role != recovery.RoleAdmin {
			t.Fatalf("SetupLink(first admin) = %+v, %v", who, err)
		}
		// It only creates an admin; it sets no password of an existing agent.
		_, err = s.CompleteSetup(ctx, tok2, agentPassword)
		wantIs(t, "first-admin link as setup link", err, recovery.ErrNotFound)
		_, err = s.CompleteFirstAdmin(ctx, tok2, "root@desk.example", "Root", "short")
		wantIs(t, "short password", err, recovery.ErrInvalidInput)

		admin, err := s.CompleteFirstAdmin(ctx, tok2, "root@desk.example", "Root", agentPassword)
		if err != nil || admin.Role != recovery.RoleAdmin || !admin.PasswordSet || admin.ID == "" {
			t.Fatalf("CompleteFirstAdmin = %+v, %v", admin, err)
		}
		_, err = s.CompleteFirstAdmin(ctx, tok2, "root2@desk.example", "Root 2", agentPassword)
		wantIs(t, "used first-admin link", err, recovery.ErrNotFound)
		if _, err := s.AgentSignIn(ctx, recovery.Actor{}, "ROOT@desk.example", agentPassword); err != nil {
			t.Fatalf("the first admin cannot sign in: %v", err)
		}
		// With an agent present nothing more is issued.
		if link, _, err := s.IssueFirstAdminLink(ctx, serve); link != "" || err != nil {
			t.Fatalf("link with an admin present: %q, %v", link, err)
		}
		agents, err := s.Agents(ctx)
		if err != nil || len(agents) != 1 {
			t.Fatalf("Agents = %v, %v", agents, err)
		}
		evs := allEvents(t, st)
		if n := len(eventsOf(evs, "agent.setup_link_issued")); n != 2 {
			t.Errorf("%d setup_link_issued events, want 2", n)
		}
		if cr := eventsOf(evs, "agent.created"); len(cr) != 1 || !strings.Contains(string(cr[0].Details), `"purpose":"first_admin"`) {
			t.Errorf("agent.created: %+v", cr)
		}
	})
}

func TestFirstAdminOnlyOnAnEmptyDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		s := agentService(t, st, newClock())
		link, _, err := s.IssueFirstAdminLink(ctx, cliActor)
		if err != nil {
			t.Fatal(err)
		}
		tok := setupToken(t, link)
		// Someone adds an agent with the command line before the link is used.
		createAgent(t, s, "early@desk.example", recovery.RoleAgent)
		_, err = s.SetupLink(ctx, tok)
		wantIs(t, "first-admin link with an agent present", err, recovery.ErrNotFound)
		_, err = s.CompleteFirstAdmin(ctx, tok, "late@desk.example", "Late", agentPassword)
		wantIs(t, "first admin with an agent present", err, recovery.ErrConflict)
		agents, _ := s.Agents(ctx)
		if len(agents) != 1 || agents[0].Role != recovery.RoleAgent {
			t.Fatalf("agents = %+v", agents)
		}
		// The refusal killed the link for good.
		var used time.Time
		if err := st.View(ctx, func(tx recovery.ReadTx) error {
			tk, err := tx.AgentSetupToken(recovery.SetupTokenHash(tok))
			used = tk.UsedAt
			return err
		}); err != nil || used.IsZero() {
			t.Fatalf("first-admin token not used after the refusal: %v %v", used, err)
		}
		if link, _, _ := s.IssueFirstAdminLink(ctx, cliActor); link != "" {
			t.Errorf("first-admin link issued with an agent present")
		}
	})
}

func TestAgentSignInFailuresLookAlike(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		admin := readyAgent(t, s, "admin@desk.example", recovery.RoleAdmin)
		ann := readyAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		fresh, _ := createAgent(t, s, "fresh@desk.example", recovery.RoleAgent) // no password yet
		dis := readyAgent(t, s, "dis@desk.example", recovery.RoleAgent)
		before, _ := s.Agent(ctx, dis.ID)
		if _, err := s.DisableAgent(ctx, actorOf(admin), admin.ID, dis.ID); err != nil {
			t.Fatal(err)
		}
		after, _ := s.Agent(ctx, dis.ID)
		if !after.Disabled || after.Epoch != before.Epoch+1 || after.AtLeast(recovery.RoleAgent) {
			t.Fatalf("disabled agent = %+v (epoch before %d)", after, before.Epoch)
		}

		got, err := s.AgentSignIn(ctx, recovery.Actor{IP: "192.0.2.1"}, "ANN@desk.example", agentPassword)
		if err != nil || got.ID != ann.ID {
			t.Fatalf("good sign-in = %+v, %v", got, err)
		}
		cases := []struct{ email, password, reason string }{
			{"nobody@desk.example", agentPassword, "unknown_email"},
			{"ann@desk.example", agentPassword + "!", "wrong_password"},
			{"fresh@desk.example", agentPassword, "no_password"},
			{"dis@desk.example", agentPassword, "disabled"},
			{"ann@desk.example", strings.Repeat("x", 5000), "wrong_password"},
		}
		var msg string
		for _, tc := range cases {
			_, err := s.AgentSignIn(ctx, recovery.Actor{IP: "192.0.2.1"}, tc.email, tc.password)
			wantIs(t, tc.reason, err, recovery.ErrUnauthorized)
			if msg == "" {
				msg = err.Error()
			} else if err.Error() != msg {
				t.Errorf("%s answers %q, %s answered %q", tc.reason, err, cases[0].reason, msg)
			}
		}
		evs := allEvents(t, st)
		failed := eventsOf(evs, "agent.sign_in_failed")
		if len(failed) != len(cases) {
			t.Fatalf("%d sign_in_failed events, want %d", len(failed), len(cases))
		}
		wantTarget := []string{"", ann.ID, fresh.ID, dis.ID, ann.ID}
		for i, e := range failed {
			if !strings.Contains(string(e.Details), `"reason":"`+cases[i].reason+`"`) || e.TargetID != wantTarget[i] ||
				!strings.Contains(string(e.Details), `"ip":"192.0.2.1"`) {
				t.Errorf("event %d: target %q details %s", i, e.TargetID, e.Details)
			}
		}
		if in := eventsOf(evs, "agent.signed_in"); len(in) != 1 || in[0].TargetID != ann.ID || in[0].ActorID != ann.ID ||
			in[0].ActorType != recovery.ActorAgent {
			t.Errorf("signed_in events: %+v", in)
		}
		// The unknown e-mail ran Argon2id with HashPassword's parameters: the dummy hash is a
		// real one, as costly to check as an agent's.
		if !recovery.CheckPassword(recovery.DummyPasswordHash, recovery.DummyPassword) {
			t.Error("the dummy hash does not verify: an unknown e-mail would answer faster")
		}
		real, _ := recovery.HashPassword("x")
		if p := strings.Split(real, "$"); !strings.HasPrefix(recovery.DummyPasswordHash, strings.Join(p[:4], "$")+"$") {
			t.Errorf("dummy hash %s has other parameters than %s", recovery.DummyPasswordHash, real)
		}
	})
}

func TestAgentSignInThrottling(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		ann := readyAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		wrong := func() error {
			_, err := s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", "wrong password!")
			return err
		}
		for i := 1; i <= 4; i++ {
			wantIs(t, "failure", wrong(), recovery.ErrUnauthorized)
		}
		// The 5th is answered as a failure and starts 30 s; then 60, 120, ... capped at an hour.
		wantIs(t, "5th failure", wrong(), recovery.ErrUnauthorized)
		for _, wait := range []time.Duration{30, 60, 120, 240, 480, 960, 1920, 3600, 3600} {
			wait *= time.Second
			// During the backoff even the right password is refused, unchecked and uncounted.
			_, err := s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", agentPassword)
			wantIs(t, "during backoff", err, recovery.ErrTooManyAttempts)
			if d, _ := recovery.RetryAfter(err); d != wait {
				t.Fatalf("retry after %v, want %v", d, wait)
			}
			c.Add(wait - time.Second)
			wantIs(t, "a second before the end", wrong(), recovery.ErrTooManyAttempts)
			c.Add(time.Second)
			wantIs(t, "after the backoff", wrong(), recovery.ErrUnauthorized)
		}
		c.Add(time.Hour)
		if got, err := s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", agentPassword); err != nil || got.ID != ann.ID {
			t.Fatalf("sign-in after the backoff: %v", err)
		}
		// A success resets the count: four more failures start no backoff.
		for i := 1; i <= 4; i++ {
			wantIs(t, "failure after reset", wrong(), recovery.ErrUnauthorized)
		}
		if _, err := s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", agentPassword); err != nil {
			t.Fatalf("4 failures after a success blocked: %v", err)
		}
		evs := eventsOf(allEvents(t, st), "agent.sign_in_failed")
		if want := 5 + 9 + 4; len(evs) != want { // throttled attempts are not evaluated, so not audited
			t.Fatalf("%d sign_in_failed events, want %d", len(evs), want)
		}
		if d := string(evs[13].Details); !strings.Contains(d, `"failures":14`) || !strings.Contains(d, `"blocked_until"`) {
			t.Errorf("14th failure: %s", d)
		}
	})
}

func TestAgentSignInPerIPLimiter(t *testing.T) {
	if testing.Short() {
		t.Skip("30 Argon2id checks per database")
	}
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		readyAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		spray := recovery.Actor{IP: "198.51.100.7"}
		for i := range 30 {
			_, err := s.AgentSignIn(ctx, spray, "guess"+string(rune('a'+i%26))+"@desk.example", "Winter2026!!!")
			wantIs(t, "spray", err, recovery.ErrUnauthorized)
		}
		_, err := s.AgentSignIn(ctx, spray, "ann@desk.example", agentPassword)
		wantIs(t, "blocked IP", err, recovery.ErrTooManyAttempts)
		// Another address is not limited, and the agent is not locked by the IP's block.
		if _, err := s.AgentSignIn(ctx, recovery.Actor{IP: "198.51.100.8"}, "ann@desk.example", agentPassword); err != nil {
			t.Fatalf("other IP: %v", err)
		}
		c.Add(5 * time.Minute)
		if _, err := s.AgentSignIn(ctx, spray, "ann@desk.example", agentPassword); err != nil {
			t.Fatalf("after the IP block: %v", err)
		}
	})
}

func TestAgentAdministration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		admin, _ := createAgent(t, s, "admin@desk.example", recovery.RoleAdmin)
		admin2, _ := createAgent(t, s, "admin2@desk.example", recovery.RoleAdmin)
		sup, _ := createAgent(t, s, "sup@desk.example", recovery.RoleSupervisor)
		ag, _ := createAgent(t, s, "ag@desk.example", recovery.RoleAgent)
		epoch := func(id string) int64 {
			a, err := s.Agent(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return a.Epoch
		}

		// AtLeast orders the roles.
		for _, tc := range []struct {
			a    recovery.Agent
			role string
			want bool
		}{
			{ag, recovery.RoleAgent, true}, {ag, recovery.RoleSupervisor, false}, {sup, recovery.RoleSupervisor, true},
			{sup, recovery.RoleAdmin, false}, {admin, recovery.RoleAdmin, true}, {admin, "root", false}, {admin, "", false},
		} {
			if got := tc.a.AtLeast(tc.role); got != tc.want {
				t.Errorf("%s.AtLeast(%s) = %v", tc.a.Role, tc.role, got)
			}
		}

		// A supervisor cannot manage agents; an admin cannot act on themselves; the actor must be
		// the admin named.
		refused := []struct {
			what string
			err  error
		}{
			{"supervisor disables", second(s.DisableAgent(ctx, actorOf(sup), sup.ID, ag.ID))},
			{"supervisor sets a role", second(s.SetAgentRole(ctx, actorOf(sup), sup.ID, ag.ID, recovery.RoleAdmin))},
			{"supervisor resets 2FA", second(s.ResetAgentTwoFactor(ctx, actorOf(sup), sup.ID, ag.ID))},
			{"supervisor issues a link", second(s.IssueSetupLink(ctx, actorOf(sup), sup.ID, ag.ID))},
			{"supervisor creates", third(s.CreateAgent(ctx, actorOf(sup), "new@desk.example", "New", recovery.RoleAgent))},
			{"admin disables self", second(s.DisableAgent(ctx, actorOf(admin), admin.ID, admin.ID))},
			{"admin demotes self", second(s.SetAgentRole(ctx, actorOf(admin), admin.ID, admin.ID, recovery.RoleAgent))},
			{"admin resets own 2FA", second(s.ResetAgentTwoFactor(ctx, actorOf(admin), admin.ID, admin.ID))},
			{"admin issues own link", second(s.IssueSetupLink(ctx, actorOf(admin), admin.ID, admin.ID))},
			{"actor is not the admin", second(s.DisableAgent(ctx, actorOf(sup), admin.ID, ag.ID))},
			{"api key as admin", second(s.DisableAgent(ctx, api, admin.ID, ag.ID))},
		}
		for _, r := range refused {
			wantIs(t, r.what, r.err, recovery.ErrForbidden)
		}
		if got, _ := s.Agent(ctx, ag.ID); got.Disabled || got.Role != recovery.RoleAgent || got.Epoch != ag.Epoch {
			t.Fatalf("a refused change changed the agent: %+v", got)
		}
		if n := len(eventsOf(allEvents(t, st), "agent.action_refused")); n != len(refused) {
			t.Errorf("%d action_refused events, want %d", n, len(refused))
		}

		// Disable ends sessions (epoch) and refuses sign-in; enable restores sign-in.
		e0 := epoch(ag.ID)
		d, err := s.DisableAgent(ctx, actorOf(admin), admin.ID, ag.ID)
		if err != nil || !d.Disabled || d.Epoch != e0+1 {
			t.Fatalf("DisableAgent = %+v, %v", d, err)
		}
		if _, err := s.DisableAgent(ctx, actorOf(admin), admin.ID, ag.ID); err != nil || epoch(ag.ID) != e0+1 {
			t.Fatalf("disabling twice: %v, epoch %d", err, epoch(ag.ID))
		}
		// A disabled admin can do nothing.
		if _, err := s.DisableAgent(ctx, actorOf(admin2), admin2.ID, admin.ID); err != nil {
			t.Fatal(err)
		}
		wantIs(t, "disabled admin", second(s.EnableAgent(ctx, actorOf(admin), admin.ID, ag.ID)), recovery.ErrForbidden)
		if _, err := s.EnableAgent(ctx, actorOf(admin2), admin2.ID, admin.ID); err != nil {
			t.Fatal(err)
		}
		en, err := s.EnableAgent(ctx, actorOf(admin), admin.ID, ag.ID)
		if err != nil || en.Disabled || en.Epoch != e0+1 {
			t.Fatalf("EnableAgent = %+v, %v", en, err)
		}

		// Role changes end sessions too.
		r, err := s.SetAgentRole(ctx, actorOf(admin), admin.ID, ag.ID, recovery.RoleSupervisor)
		if err != nil || r.Role != recovery.RoleSupervisor || r.Epoch != e0+2 || !r.AtLeast(recovery.RoleSupervisor) {
			t.Fatalf("SetAgentRole = %+v, %v", r, err)
		}
		wantIs(t, "bad role", second(s.SetAgentRole(ctx, actorOf(admin), admin.ID, ag.ID, "owner")), recovery.ErrInvalidInput)
		wantIs(t, "unknown agent", second(s.DisableAgent(ctx, actorOf(admin), admin.ID, "agt_0000000000000000")), recovery.ErrNotFound)

		// An admin in the console creates agents.
		nw, link, err := s.CreateAgent(ctx, actorOf(admin), "new@desk.example", "New", recovery.RoleAgent)
		if err != nil || nw.ID == "" {
			t.Fatalf("admin creates: %v", err)
		}
		setupToken(t, link)
		agents, _ := s.Agents(ctx)
		if len(agents) != 5 {
			t.Errorf("%d agents, want 5", len(agents))
		}

		evs := allEvents(t, st)
		for action, n := range map[string]int{"agent.disabled": 2, "agent.enabled": 2, "agent.role_changed": 1} {
			if got := len(eventsOf(evs, action)); got != n {
				t.Errorf("%d %s events, want %d", got, action, n)
			}
		}
		rc := eventsOf(evs, "agent.role_changed")[0]
		if rc.ActorID != admin.ID || rc.ActorType != recovery.ActorAgent || rc.TargetID != ag.ID ||
			!strings.Contains(string(rc.Details), `"after":"supervisor","before":"agent"`) {
			t.Errorf("role_changed = %+v %s", rc, rc.Details)
		}
	})
}

func second[T any](_ T, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }

func TestAgentTOTPThroughTheCore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		admin := readyAgent(t, s, "admin@desk.example", recovery.RoleAdmin)
		ann := readyAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		me := actorOf(ann)
		me.IP = "203.0.113.9"

		if st, err := s.AgentTwoFactorStatus(ctx, ann.ID); err != nil || st.State != recovery.StateDisabled {
			t.Fatalf("status before enrollment = %+v, %v", st, err)
		}
		// Only the agent enrolls themselves, and only after setting a password.
		wantIs(t, "other agent", second(s.AgentBeginEnrollment(ctx, actorOf(admin), ann.ID)), recovery.ErrForbidden)
		fresh, _ := createAgent(t, s, "fresh@desk.example", recovery.RoleAgent)
		wantIs(t, "no password", second(s.AgentBeginEnrollment(ctx, actorOf(fresh), fresh.ID)), recovery.ErrUnauthorized)

		en, err := s.AgentBeginEnrollment(ctx, me, ann.ID)
		if err != nil || !strings.Contains(en.URI, "ann") || len(en.QRPNG) == 0 {
			t.Fatalf("AgentBeginEnrollment = %q, %v", en.URI, err)
		}
		if st, _ := s.AgentTwoFactorStatus(ctx, ann.ID); st.State != recovery.StatePending {
			t.Fatalf("status while pending = %v", st.State)
		}
		conf, err := s.AgentConfirmEnrollment(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(c.Now())))
		if err != nil || len(conf.RecoveryCodes) != 0 {
			t.Fatalf("AgentConfirmEnrollment = %+v, %v (agents get no recovery codes)", conf, err)
		}
		if st, _ := s.AgentTwoFactorStatus(ctx, ann.ID); st.State != recovery.StateActive || st.RecoveryCodesLeft != 0 {
			t.Fatalf("status after confirmation = %+v", st)
		}
		wantIs(t, "second enrollment", second(s.AgentBeginEnrollment(ctx, me, ann.ID)), recovery.ErrAlreadyEnrolled)

		// The confirmation consumed its step: the same code cannot step up.
		wantIs(t, "confirmation code reused", second(s.AgentStepUp(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(c.Now())))), recovery.ErrInvalidCode)
		c.Add(30 * time.Second)
		now := c.Now()
		at, err := s.AgentStepUp(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(now)))
		if err != nil || !at.Equal(now) {
			t.Fatalf("AgentStepUp = %v, %v; want %v", at, err, now)
		}
		wantIs(t, "replayed step-up", second(s.AgentStepUp(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(now)))), recovery.ErrInvalidCode)
		wantIs(t, "someone else's step-up", second(s.AgentStepUp(ctx, actorOf(admin), ann.ID, code(t, en.Secret, recovery.Step(now)+1))), recovery.ErrForbidden)
		wantIs(t, "bad code format", second(s.AgentStepUp(ctx, me, ann.ID, "12345a")), recovery.ErrInvalidInput)

		// Failures count on the core's counter (the success reset it; the replay counts): the
		// 5th starts the backoff.
		for range 4 {
			wantIs(t, "wrong step-up", second(s.AgentStepUp(ctx, me, ann.ID, wrongCode(t, en.Secret, c.Now()))), recovery.ErrInvalidCode)
		}
		wantIs(t, "step-up in the backoff", second(s.AgentStepUp(ctx, me, ann.ID, wrongCode(t, en.Secret, c.Now()))), recovery.ErrTooManyAttempts)
		evs := allEvents(t, st)
		failed := eventsOf(evs, "totp.failed")
		if len(failed) != 6 || failed[0].TargetID != recovery.AgentAccountID(ann.ID) || !strings.Contains(string(failed[0].Details), `"reason":"replayed"`) ||
			!strings.Contains(string(failed[0].Details), `"purpose":"step_up"`) {
			t.Fatalf("totp.failed events: %d, first %+v %s", len(failed), failed[0], failed[0].Details)
		}
		ok := eventsOf(evs, "totp.verified")
		if len(ok) != 1 || !strings.Contains(string(ok[0].Details), `"purpose":"step_up"`) || ok[0].ActorID != ann.ID {
			t.Errorf("totp.verified events: %+v", ok)
		}

		// An admin resets the agent's 2FA: sessions end, the old app stops working, a new
		// enrollment is possible.
		e0 := ann.Epoch
		r, err := s.ResetAgentTwoFactor(ctx, actorOf(admin), admin.ID, ann.ID)
		if err != nil || r.Epoch != e0+1 {
			t.Fatalf("ResetAgentTwoFactor = %+v, %v", r, err)
		}
		c.Add(time.Minute)
		wantIs(t, "after reset", second(s.AgentStepUp(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(c.Now())))), recovery.ErrNotEnrolled)
		if st, _ := s.AgentTwoFactorStatus(ctx, ann.ID); st.State != recovery.StateDisabled {
			t.Fatalf("status after reset = %v", st.State)
		}
		en2, err := s.AgentBeginEnrollment(ctx, me, ann.ID)
		if err != nil {
			t.Fatal(err)
		}

		// A new setup link: password and enrollment cleared, sessions end, earlier links die.
		oldLink, err := s.IssueSetupLink(ctx, actorOf(admin), admin.ID, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		link, err := s.IssueSetupLink(ctx, actorOf(admin), admin.ID, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Agent(ctx, ann.ID)
		if got.PasswordSet || got.Epoch != e0+3 {
			t.Fatalf("after new links: %+v", got)
		}
		wantIs(t, "old password", second(s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", agentPassword)), recovery.ErrUnauthorized)
		wantIs(t, "pending enrollment cleared", second(s.AgentConfirmEnrollment(ctx, me, ann.ID, code(t, en2.Secret, recovery.Step(c.Now())))), recovery.ErrUnauthorized)
		wantIs(t, "replaced link", second(s.SetupLink(ctx, setupToken(t, oldLink))), recovery.ErrNotFound)
		if _, err := s.CompleteSetup(ctx, setupToken(t, link), "a brand new passphrase"); err != nil {
			t.Fatal(err)
		}
		wantIs(t, "pending enrollment cleared", second(s.AgentConfirmEnrollment(ctx, me, ann.ID, code(t, en2.Secret, recovery.Step(c.Now())))), recovery.ErrNotEnrolled)
		if st, _ := s.AgentTwoFactorStatus(ctx, ann.ID); st.State != recovery.StateDisabled {
			t.Fatalf("status after a new setup link = %v", st.State)
		}
		issued := eventsOf(allEvents(t, st), "agent.setup_link_issued")
		if d := string(issued[len(issued)-2].Details); !strings.Contains(d, `"password_cleared":true`) || !strings.Contains(d, `"two_factor_cleared":true`) ||
			!strings.Contains(d, `"purpose":"reset"`) {
			t.Errorf("setup_link_issued after reset: %s", d)
		}
	})
}

func TestHostAPICannotReachAgentAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		ann := readyAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		me := actorOf(ann)
		en, err := s.AgentBeginEnrollment(ctx, me, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AgentConfirmEnrollment(ctx, me, ann.ID, code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		id := recovery.AgentAccountID(ann.ID)
		before := factorOf(t, st, id)
		c.Add(time.Minute)
		good := code(t, en.Secret, recovery.Step(c.Now()))

		wantIs(t, "CheckAccountID", recovery.CheckAccountID(id), recovery.ErrInvalidInput)
		host := []struct {
			what string
			err  error
		}{
			{"UpsertAccount", third(s.UpsertAccount(ctx, api, id, recovery.AccountInput{Email: ptr("x@example.com")}))},
			{"TwoFactorStatus", second(s.TwoFactorStatus(ctx, id))},
			{"BeginEnrollment", second(s.BeginEnrollment(ctx, api, id, ""))},
			{"ConfirmEnrollment", second(s.ConfirmEnrollment(ctx, api, id, good))},
			{"Verify", second(s.Verify(ctx, api, id, good))},
			{"UseRecoveryCode", second(s.UseRecoveryCode(ctx, api, id, "AAAA-BBBB-CCCC-DDDD"))},
			{"RegenerateRecoveryCodes", second(s.RegenerateRecoveryCodes(ctx, api, id, good))},
			{"Disable", s.Disable(ctx, api, id, good)},
		}
		for _, h := range host {
			wantIs(t, h.what, h.err, recovery.ErrInvalidInput)
		}
		if after := factorOf(t, st, id); after != before {
			t.Fatalf("the host API changed the agent's factor:\n%+v\n%+v", before, after)
		}
		// The code the host could not use still steps the agent up.
		if _, err := s.AgentStepUp(ctx, me, ann.ID, good); err != nil {
			t.Fatalf("step-up with the untouched code: %v", err)
		}
	})
}

// TestAgentAuditHoldsNoSecrets runs every agent operation and scans the exported chain for
// every token, password, secret and code used.
func TestAgentAuditHoldsNoSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := agentService(t, st, c)
		var secrets []string
		firstLink, _, err := s.IssueFirstAdminLink(ctx, cliActor)
		if err != nil {
			t.Fatal(err)
		}
		firstTok := setupToken(t, firstLink)
		adminPW := "admin passphrase 0001"
		admin, err := s.CompleteFirstAdmin(ctx, firstTok, "root@desk.example", "Root", adminPW)
		if err != nil {
			t.Fatal(err)
		}
		ann, tok := createAgent(t, s, "ann@desk.example", recovery.RoleAgent)
		annPW := "ann passphrase 00002"
		if _, err := s.CompleteSetup(ctx, tok, annPW); err != nil {
			t.Fatal(err)
		}
		wrongPW := "ann wrong guess 0003"
		s.AgentSignIn(ctx, recovery.Actor{IP: "192.0.2.5"}, "ann@desk.example", wrongPW)
		s.AgentSignIn(ctx, recovery.Actor{IP: "192.0.2.5"}, "nobody@desk.example", wrongPW)
		if _, err := s.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", annPW); err != nil {
			t.Fatal(err)
		}
		me := actorOf(ann)
		en, err := s.AgentBeginEnrollment(ctx, me, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		confCode := code(t, en.Secret, recovery.Step(c.Now()))
		if _, err := s.AgentConfirmEnrollment(ctx, me, ann.ID, confCode); err != nil {
			t.Fatal(err)
		}
		c.Add(30 * time.Second)
		stepCode := code(t, en.Secret, recovery.Step(c.Now()))
		if _, err := s.AgentStepUp(ctx, me, ann.ID, stepCode); err != nil {
			t.Fatal(err)
		}
		link, err := s.IssueSetupLink(ctx, actorOf(admin), admin.ID, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		newPW := "ann new passphrase 04"
		if _, err := s.CompleteSetup(ctx, setupToken(t, link), newPW); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, firstTok, tok, setupToken(t, link), adminPW, annPW, wrongPW, newPW,
			en.Secret, en.ManualCode, confCode, stepCode, recovery.SetupTokenHash(tok), recovery.SetupTokenHash(firstTok))

		var buf bytes.Buffer
		if _, err := s.ExportAudit(ctx, &buf); err != nil {
			t.Fatalf("export (verifies the chain): %v", err)
		}
		dump := buf.String()
		for _, want := range []string{"agent.created", "agent.setup_link_issued", "agent.password_set", "agent.signed_in",
			"agent.sign_in_failed", "factor.enrolled", "totp.verified"} {
			if !strings.Contains(dump, `"action":"`+want+`"`) {
				t.Errorf("export lacks %s", want)
			}
		}
		for _, sec := range secrets {
			if strings.Contains(dump, sec) {
				t.Errorf("the audit chain holds a secret (%d characters)", len(sec))
			}
		}
		// Argon2 hashes neither.
		if strings.Contains(dump, "argon2") {
			t.Error("the audit chain holds a password hash")
		}
	})
}
