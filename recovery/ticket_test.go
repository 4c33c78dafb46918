package recovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// desk is a recovery desk with a customer, agents of every role and a fixed clock.
type desk struct {
	t     *testing.T
	svc   *recovery.Service
	clock *clock
	dsn   string
	// Agents.
	agent, agent2, sup, sup2, admin, admin2 recovery.Actor
	secret                                  string // the customer's TOTP secret
	codes                                   []string
}

const (
	customer      = "cust-1"
	customerEmail = customer + "@example.com"
	lastDeposit   = "1,234.50 EUR"
)

func newDesk(t *testing.T, s *sqlstore.Store, dsn string) *desk {
	t.Helper()
	c := newClock()
	d := &desk{t: t, svc: newService(t, s, c), clock: c, dsn: dsn}
	_, _, err := d.svc.UpsertAccount(bg, apiActor, customer, recovery.AccountInput{
		Email: ptr(customerEmail), DisplayName: ptr("Alice"), Phone: ptr("+49 30 1234567"),
		Facts: map[string]any{"last_deposit_amount": lastDeposit, "signup_country": "Germany"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.secret, d.codes = enrolled(t, d.svc, c, customer)
	d.agent = d.newAgent("agent1@desk.example", recovery.RoleAgent)
	d.agent2 = d.newAgent("agent2@desk.example", recovery.RoleAgent)
	d.sup = d.newAgent("sup1@desk.example", recovery.RoleSupervisor)
	d.sup2 = d.newAgent("sup2@desk.example", recovery.RoleSupervisor)
	d.admin = d.newAgent("admin1@desk.example", recovery.RoleAdmin)
	d.admin2 = d.newAgent("admin2@desk.example", recovery.RoleAdmin)
	return d
}

var bg = context.Background()

var apiActor = recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}

func (d *desk) newAgent(email, role string) recovery.Actor {
	d.t.Helper()
	a, _, err := d.svc.CreateAgent(bg, recovery.Actor{Type: recovery.ActorSystem, ID: "cli"}, email, strings.Split(email, "@")[0], role)
	if err != nil {
		d.t.Fatalf("create agent %s: %v", email, err)
	}
	return recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}
}

func (d *desk) ticket(id string) recovery.TicketDetail {
	d.t.Helper()
	td, err := d.svc.TicketDetail(bg, id)
	if err != nil {
		d.t.Fatal(err)
	}
	return td
}

func (d *desk) open(req recovery.OpenRequest) string {
	d.t.Helper()
	o, err := d.svc.OpenTicket(bg, recovery.Actor{Type: recovery.ActorTelegramUser, ID: req.ChatID}, req)
	if err != nil {
		d.t.Fatal(err)
	}
	return o.TicketID
}

func (d *desk) openConsole() string {
	return d.open(recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: customerEmail, Message: "I lost my phone"})
}

// deliver delivers every due notice of the channel and returns them.
func (d *desk) deliver(channel string) []recovery.Notice {
	d.t.Helper()
	var got []recovery.Notice
	for {
		n, err := d.svc.DispatchDue(bg, channel, 100, func(_ context.Context, n recovery.Notice) error {
			got = append(got, n)
			return nil
		})
		if err != nil {
			d.t.Fatal(err)
		}
		if n == 0 {
			return got
		}
	}
}

var codeInMail = regexp.MustCompile(`code is (\d{6})`)

// passChecklist satisfies the default policy for a low-risk ticket: the e-mail code and both
// knowledge items.
func (d *desk) passChecklist(id string) {
	d.t.Helper()
	v := d.ticket(id).Version
	if err := d.svc.SendEmailCode(bg, d.agent, id, v, "email_code"); err != nil {
		d.t.Fatal(err)
	}
	var code string
	for _, n := range d.deliver(recovery.NoticeEmail) {
		if m := codeInMail.FindStringSubmatch(n.Body); m != nil {
			code = m[1]
		}
	}
	if code == "" {
		d.t.Fatal("no e-mail code delivered")
	}
	if ok, err := d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", code); err != nil || !ok {
		d.t.Fatalf("email code: %v %v", ok, err)
	}
	if ok, err := d.svc.CheckKnowledge(bg, d.agent, id, d.ticket(id).Version, "knowledge_last_deposit", "1234.5 eur"); err != nil || !ok {
		d.t.Fatalf("knowledge: %v %v", ok, err)
	}
	if ok, err := d.svc.CheckKnowledge(bg, d.agent, id, d.ticket(id).Version, "knowledge_signup_country", " germany "); err != nil || !ok {
		d.t.Fatalf("knowledge: %v %v", ok, err)
	}
	if miss := d.ticket(id).Missing; len(miss) != 0 {
		d.t.Fatalf("checklist still misses %v", miss)
	}
}

// toReady takes a new ticket through request, approval and the cooling-off.
func (d *desk) toReady(id string) {
	d.t.Helper()
	d.passChecklist(id)
	if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "identity verified by e-mail code and knowledge"); err != nil {
		d.t.Fatal(err)
	}
	if err := d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.clock.Now().Add(-time.Minute), "looks right"); err != nil {
		d.t.Fatal(err)
	}
	d.clock.Add(recovery.CoolingOff)
}

func (d *desk) stepUp() time.Time { return d.clock.Now().Add(-30 * time.Second) }

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func TestTicketLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		if st := d.ticket(id).State; st != recovery.TicketOpen {
			t.Fatalf("new ticket is %s", st)
		}
		// Contact is not authorisation: the factor is untouched and still verifies.
		if _, err := d.svc.Verify(bg, apiActor, customer, code(t, d.secret, recovery.Step(d.clock.Now())+1)); err != nil {
			t.Fatalf("verify after opening a ticket: %v", err)
		}
		wantErr(t, d.svc.Execute(bg, d.sup, id, d.ticket(id).Version, d.stepUp()), recovery.ErrTicketState)
		wantErr(t, d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.stepUp(), ""), recovery.ErrTicketState)

		// Requesting with an incomplete checklist names what is missing.
		err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "please")
		var me *recovery.MissingError
		if !errors.As(err, &me) || len(me.Missing) == 0 {
			t.Fatalf("request with empty checklist: %v", err)
		}
		d.toReady(id)
		td := d.ticket(id)
		if td.State != recovery.TicketCoolingOff {
			t.Fatalf("state after approval and cooling-off time without tick: %s", td.State)
		}
		if n, err := d.svc.Tick(bg); err != nil || n != 1 {
			t.Fatalf("tick: %d %v", n, err)
		}
		if st := d.ticket(id).State; st != recovery.TicketReady {
			t.Fatalf("after tick: %s", st)
		}
		d.deliver(recovery.NoticeEmail)
		if err := d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		td = d.ticket(id)
		if td.State != recovery.TicketExecuted || !td.HoldUntil.Equal(d.clock.Now().Add(recovery.HoldAfterReset)) {
			t.Fatalf("after execute: %s hold %v", td.State, td.HoldUntil)
		}
		st, err := d.svc.TwoFactorStatus(bg, customer)
		if err != nil || st.State != recovery.StateReset || !st.HoldUntil.Equal(td.HoldUntil) || st.RecoveryCodesLeft != 0 {
			t.Fatalf("status after execute: %+v %v", st, err)
		}
		// The old secret and recovery codes are dead.
		wantErr(t, verifyErr(d, customer, code(t, d.secret, recovery.Step(d.clock.Now()))), recovery.ErrNotEnrolled)
		if _, err := d.svc.UseRecoveryCode(bg, apiActor, customer, d.codes[1]); err == nil {
			t.Fatal("an old recovery code works after the reset")
		}

		token := reenrollToken(t, d.deliver(recovery.NoticeEmail))
		// Re-enrollment with the link's token closes the ticket.
		en, err := d.svc.BeginEnrollment(bg, apiActor, customer, token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.svc.ConfirmEnrollment(bg, apiActor, customer, code(t, en.Secret, recovery.Step(d.clock.Now()))); err != nil {
			t.Fatal(err)
		}
		td = d.ticket(id)
		if td.State != recovery.TicketClosed || td.Outcome != recovery.OutcomeReenrolled {
			t.Fatalf("after re-enrollment: %s %s", td.State, td.Outcome)
		}
		rep, err := d.svc.VerifyAudit(bg, nil)
		if err != nil || !rep.OK() {
			t.Fatalf("audit verify: %+v %v", rep, err)
		}
		// The ticket's events read as a case file, in order.
		var actions []string
		events, err := ticketEvents(d.svc, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		got := strings.Join(actions, " ")
		for _, want := range []string{"ticket.opened", "ticket.message", "ticket.email_code_sent", "ticket.checklist_item",
			"ticket.verifying", "ticket.requested", "ticket.approved", "ticket.ready", "notice.queued", "ticket.executed", "notice.sent", "ticket.reenrolled", "ticket.closed"} {
			if !strings.Contains(got, want) {
				t.Errorf("case file lacks %s: %s", want, got)
			}
		}
		for _, e := range events {
			if strings.Contains(string(e.Details), token) || strings.Contains(string(e.Details), "1,234.50") {
				t.Fatalf("event %s holds a secret or the stored fact: %s", e.Action, e.Details)
			}
		}
	})
}

func verifyErr(d *desk, account, c string) error {
	_, err := d.svc.Verify(bg, apiActor, account, c)
	return err
}

var reenrollLink = regexp.MustCompile(`/reenroll/([A-Za-z0-9_-]{22,})`)

func reenrollToken(t *testing.T, ns []recovery.Notice) string {
	t.Helper()
	for _, n := range ns {
		if m := reenrollLink.FindStringSubmatch(n.Body); m != nil {
			if strings.Contains(n.Masked, m[1]) {
				t.Fatalf("masked notice shows the token: %s", n.Masked)
			}
			return m[1]
		}
	}
	for _, n := range ns {
		t.Logf("notice %s %s: %q", n.Channel, n.Kind, n.Body)
	}
	t.Fatalf("no re-enrollment link among %d notices", len(ns))
	return ""
}

var vetoLink = regexp.MustCompile(`/veto/([0-9a-f]{32})`)

func vetoTokens(ns []recovery.Notice) map[string]string {
	out := map[string]string{}
	for _, n := range ns {
		if m := vetoLink.FindStringSubmatch(n.Body); m != nil {
			out[n.Channel] = m[1]
		}
	}
	return out
}

func ticketEvents(s *recovery.Service, ticketID string) ([]recovery.Event, error) {
	var b strings.Builder
	if _, err := s.ExportAudit(bg, &b); err != nil {
		return nil, err
	}
	var out []recovery.Event
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		e, err := recovery.ParseEventJSONL([]byte(line))
		if err != nil {
			return nil, err
		}
		if e.TicketID == ticketID {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestApprovalSeparationOfDuties(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		d.passChecklist(id)
		if err := d.svc.RequestReset(bg, d.sup, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		v := d.ticket(id).Version
		now := d.clock.Now()
		wantErr(t, d.svc.Approve(bg, d.sup, id, v, d.stepUp(), ""), recovery.ErrSeparationOfDuty) // the requester
		wantErr(t, d.svc.Approve(bg, d.agent2, id, v, d.stepUp(), ""), recovery.ErrForbidden)     // an agent cannot approve
		wantErr(t, d.svc.Approve(bg, d.sup2, id, v, time.Time{}, ""), recovery.ErrStepUpRequired)
		wantErr(t, d.svc.Approve(bg, d.sup2, id, v, now.Add(-recovery.StepUpMaxAge-time.Nanosecond), ""), recovery.ErrStepUpRequired)
		wantErr(t, d.svc.Approve(bg, d.sup2, id, v, now.Add(time.Second), ""), recovery.ErrStepUpRequired)
		wantErr(t, d.svc.Approve(bg, d.sup2, id, v-1, d.stepUp(), ""), recovery.ErrConflict) // a stale page
		// The target: an agent whose e-mail is the account's.
		target := d.newAgent(customerEmail, recovery.RoleAdmin)
		wantErr(t, d.svc.Approve(bg, target, id, v, d.stepUp(), ""), recovery.ErrSeparationOfDuty)
		// Exactly five minutes old is still fresh.
		if err := d.svc.Approve(bg, d.sup2, id, v, now.Add(-recovery.StepUpMaxAge), "ok"); err != nil {
			t.Fatal(err)
		}
		td := d.ticket(id)
		if td.State != recovery.TicketCoolingOff || !td.CoolingUntil.Equal(now.Add(recovery.CoolingOff)) {
			t.Fatalf("after approval: %s until %v", td.State, td.CoolingUntil)
		}
	})
}

func TestStaffTargetNeedsAdminAndLongerCoolingOff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		if _, _, err := d.svc.UpsertAccount(bg, apiActor, customer, recovery.AccountInput{Staff: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		id := d.openConsole()
		td := d.ticket(id)
		if !td.Staff || !td.HighRisk {
			t.Fatalf("staff ticket not high risk: %+v", td.Ticket)
		}
		// Staff raises the bar: the plain checklist is not enough.
		d.passChecklistAllowMissing(id)
		if len(d.ticket(id).Missing) == 0 {
			t.Fatal("a staff target needs more than the base checklist")
		}
		for _, key := range []string{"document", "callback"} {
			if err := d.svc.Attest(bg, d.agent, id, d.ticket(id).Version, key, true, "checked against KYC", "kyc://file/123"); err != nil {
				t.Fatal(err)
			}
		}
		if miss := d.ticket(id).Missing; len(miss) != 0 {
			t.Fatalf("still missing %v", miss)
		}
		if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		v := d.ticket(id).Version
		wantErr(t, d.svc.Approve(bg, d.sup, id, v, d.stepUp(), ""), recovery.ErrForbidden)
		if err := d.svc.Approve(bg, d.admin, id, v, d.stepUp(), ""); err != nil {
			t.Fatal(err)
		}
		start := d.clock.Now()
		d.clock.Set(start.Add(recovery.CoolingOffHighRisk - time.Second))
		wantErr(t, d.svc.Execute(bg, d.admin2, id, d.ticket(id).Version, d.stepUp()), recovery.ErrTicketState)
		d.clock.Set(start.Add(recovery.CoolingOffHighRisk))
		wantErr(t, d.svc.Execute(bg, d.sup, id, d.ticket(id).Version, d.stepUp()), recovery.ErrForbidden)
		if err := d.svc.Execute(bg, d.admin2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		for _, r := range d.ticket(id).Results {
			if r.Kind == recovery.KindDocument && (r.EvidenceSHA256 == "" || strings.Contains(r.Note, "kyc://")) {
				t.Fatalf("evidence kept wrongly: %+v", r)
			}
		}
	})
}

// passChecklistAllowMissing records the base items without insisting the policy is met.
func (d *desk) passChecklistAllowMissing(id string) {
	d.t.Helper()
	if err := d.svc.SendEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code"); err != nil {
		d.t.Fatal(err)
	}
	var code string
	for _, n := range d.deliver(recovery.NoticeEmail) {
		if m := codeInMail.FindStringSubmatch(n.Body); m != nil {
			code = m[1]
		}
	}
	if ok, err := d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", code); err != nil || !ok {
		d.t.Fatalf("email code: %v %v", ok, err)
	}
	for key, answer := range map[string]string{"knowledge_last_deposit": "1234.50", "knowledge_signup_country": "GERMANY"} {
		if ok, err := d.svc.CheckKnowledge(bg, d.agent, id, d.ticket(id).Version, key, answer); err != nil || !ok {
			d.t.Fatalf("knowledge %s: %v %v", key, ok, err)
		}
	}
}

func TestCoolingOffEdgesAndVeto(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		d.passChecklist(id)
		if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		approvedAt := d.clock.Now()
		if err := d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.stepUp(), ""); err != nil {
			t.Fatal(err)
		}
		vetos := vetoTokens(d.deliver(recovery.NoticeEmail))
		if vetos[recovery.NoticeEmail] == "" {
			t.Fatal("no veto link mailed")
		}
		d.clock.Set(approvedAt.Add(recovery.CoolingOff - time.Second))
		wantErr(t, d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()), recovery.ErrTicketState)
		if n, _ := d.svc.Tick(bg); n != 0 {
			t.Fatalf("tick at 23:59:59 changed %d tickets", n)
		}
		d.clock.Set(approvedAt.Add(recovery.CoolingOff))
		if n, err := d.svc.Tick(bg); err != nil || n != 1 || d.ticket(id).State != recovery.TicketReady {
			t.Fatalf("tick at 24:00:00: %d %v %s", n, err, d.ticket(id).State)
		}
		// A GET of the link changes nothing; the POST freezes.
		info, err := d.svc.VetoLink(bg, vetos[recovery.NoticeEmail])
		if err != nil || info.TicketID != id || info.Frozen {
			t.Fatalf("veto link: %+v %v", info, err)
		}
		if st := d.ticket(id).State; st != recovery.TicketReady {
			t.Fatalf("looking at the veto link changed the ticket to %s", st)
		}
		owner := recovery.Actor{Type: recovery.ActorEndUser, ID: "veto-link"}
		if _, err := d.svc.Veto(bg, owner, vetos[recovery.NoticeEmail]); err != nil {
			t.Fatal(err)
		}
		if st := d.ticket(id).State; st != recovery.TicketFrozen {
			t.Fatalf("after veto: %s", st)
		}
		_, err = d.svc.Veto(bg, owner, vetos[recovery.NoticeEmail])
		wantErr(t, err, recovery.ErrLinkUnavailable)
		_, err = d.svc.Veto(bg, owner, strings.Repeat("0", 32))
		wantErr(t, err, recovery.ErrLinkUnavailable)
		wantErr(t, d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()), recovery.ErrTicketState)
		wantErr(t, d.svc.Unfreeze(bg, d.sup2, id, d.ticket(id).Version, "owner called back"), recovery.ErrForbidden)
		wantErr(t, d.svc.Unfreeze(bg, d.admin, id, d.ticket(id).Version, ""), recovery.ErrInvalidInput)
		if err := d.svc.Unfreeze(bg, d.admin, id, d.ticket(id).Version, "owner called back: the veto was a mistake"); err != nil {
			t.Fatal(err)
		}
		td := d.ticket(id)
		if td.State != recovery.TicketPendingApproval || td.ApprovedBy != "" {
			t.Fatalf("after unfreeze: %s approved by %q", td.State, td.ApprovedBy)
		}
	})
}

func TestVetoDuringHoldRevokesNewEnrollment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		d.toReady(id)
		vetos := vetoTokens(d.deliver(recovery.NoticeEmail))
		if err := d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		token := reenrollToken(t, d.deliver(recovery.NoticeEmail))
		en, err := d.svc.BeginEnrollment(bg, apiActor, customer, token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.svc.ConfirmEnrollment(bg, apiActor, customer, code(t, en.Secret, recovery.Step(d.clock.Now()))); err != nil {
			t.Fatal(err)
		}
		d.clock.Add(time.Hour)
		if _, err := d.svc.Veto(bg, recovery.Actor{Type: recovery.ActorEndUser, ID: "veto-link"}, vetos[recovery.NoticeEmail]); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.svc.TwoFactorStatus(bg, customer); st.State != recovery.StateReset {
			t.Fatalf("the new enrollment survived a veto during the hold: %s", st.State)
		}
		events, _ := ticketEvents(d.svc, id)
		found := false
		for _, e := range events {
			found = found || e.Action == "alert.raised"
		}
		if !found || d.ticket(id).State != recovery.TicketFrozen {
			t.Fatalf("veto during the hold: alert %v, state %s", found, d.ticket(id).State)
		}
	})
}

func TestExecuteIsAtomic(t *testing.T) {
	for _, inject := range []string{"audit", "outbox"} {
		t.Run(inject, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
				d := newDesk(t, s, dsn)
				id := d.openConsole()
				d.toReady(id)
				d.deliver(recovery.NoticeEmail)
				failOnInsert(t, dsn, inject)
				v := d.ticket(id).Version
				if err := d.svc.Execute(bg, d.sup2, id, v, d.stepUp()); err == nil {
					t.Fatal("execute succeeded despite the injected failure")
				}
				td := d.ticket(id)
				if td.State != recovery.TicketCoolingOff && td.State != recovery.TicketReady || td.Version != v {
					t.Fatalf("ticket changed: %s v%d", td.State, td.Version)
				}
				st, err := d.svc.TwoFactorStatus(bg, customer)
				if err != nil || st.State != recovery.StateActive || st.RecoveryCodesLeft != len(d.codes) || !st.HoldUntil.IsZero() {
					t.Fatalf("factor changed: %+v %v", st, err)
				}
				if ns := d.deliver(recovery.NoticeEmail); len(ns) != 0 {
					t.Fatalf("%d notices queued by a failed execute", len(ns))
				}
				if _, err := d.svc.Verify(bg, apiActor, customer, code(t, d.secret, recovery.Step(d.clock.Now()))); err != nil {
					t.Fatalf("old factor stopped working: %v", err)
				}
			})
		})
	}
}

// failOnInsert makes the database refuse the execute's audit event or any new notice.
func failOnInsert(t *testing.T, dsn, what string) {
	t.Helper()
	table, when := "notices", ""
	if what == "audit" {
		table, when = "audit_events", "WHEN NEW.action = 'ticket.executed'"
	}
	if !strings.HasPrefix(dsn, "postgres") {
		storetest.Exec(t, dsn, "CREATE TRIGGER inject_failure BEFORE INSERT ON "+table+" "+when+" BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
		return
	}
	storetest.Exec(t, dsn, "CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$")
	storetest.Exec(t, dsn, "CREATE TRIGGER inject_failure BEFORE INSERT ON "+table+" FOR EACH ROW "+
		strings.Replace(when, "WHEN NEW.action", "WHEN (NEW.action", 1)+map[bool]string{true: ")", false: ""}[when != ""]+" EXECUTE FUNCTION inject_failure()")
}

func TestReenrollLink(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		if _, _, err := d.svc.UpsertAccount(bg, apiActor, "cust-2", recovery.AccountInput{Email: ptr("bob@example.com")}); err != nil {
			t.Fatal(err)
		}
		id := d.openConsole()
		d.toReady(id)
		d.deliver(recovery.NoticeEmail)
		if err := d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		token := reenrollToken(t, d.deliver(recovery.NoticeEmail))
		// Bound to its account: another account in reset cannot use it.
		if _, _, err := d.svc.UpsertAccount(bg, apiActor, "cust-3", recovery.AccountInput{Email: ptr("carol@example.com")}); err != nil {
			t.Fatal(err)
		}
		enrolled(t, d.svc, d.clock, "cust-3")
		if _, err := recovery.ResetForTest(bg, d.svc, "cust-3", time.Hour); err != nil {
			t.Fatal(err)
		}
		_, err := d.svc.BeginEnrollment(bg, apiActor, "cust-3", token)
		wantErr(t, err, recovery.ErrRecoveryRequired)
		// Expired after 24 h.
		d.clock.Add(recovery.ReenrollLinkTTL)
		_, err = d.svc.BeginEnrollment(bg, apiActor, customer, token)
		wantErr(t, err, recovery.ErrRecoveryRequired)
		// Re-issue is for expired links only and kills the old one.
		if err := d.svc.ReissueLink(bg, d.agent, id, d.ticket(id).Version, "user missed the mail"); err != nil {
			t.Fatal(err)
		}
		fresh := reenrollToken(t, d.deliver(recovery.NoticeEmail))
		if fresh == token {
			t.Fatal("re-issue returned the old token")
		}
		wantErr(t, d.svc.ReissueLink(bg, d.agent, id, d.ticket(id).Version, "again"), recovery.ErrInvalidInput)
		d.clock.Add(-recovery.ReenrollLinkTTL) // even back in its lifetime the old token stays dead
		_, err = d.svc.BeginEnrollment(bg, apiActor, customer, token)
		wantErr(t, err, recovery.ErrRecoveryRequired)
		d.clock.Add(recovery.ReenrollLinkTTL)
		en, err := d.svc.BeginEnrollment(bg, apiActor, customer, fresh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.svc.ConfirmEnrollment(bg, apiActor, customer, code(t, en.Secret, recovery.Step(d.clock.Now()))); err != nil {
			t.Fatal(err)
		}
		// Single use: the used link does not open an enrollment again.
		if _, err := d.svc.BeginEnrollment(bg, apiActor, customer, fresh); !errors.Is(err, recovery.ErrAlreadyEnrolled) {
			t.Fatalf("used link: %v", err)
		}
		if d.ticket(id).State != recovery.TicketClosed {
			t.Fatalf("ticket not closed: %s", d.ticket(id).State)
		}
	})
}

func TestDuplicateTicketsJoinAndUnmatched(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		first := d.open(recovery.OpenRequest{Channel: recovery.ChannelTelegram, Claimed: customerEmail, ChatID: "1001", Message: "lost phone"})
		o, err := d.svc.OpenTicket(bg, apiActor, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: customer, Message: "help"})
		if err != nil || o.TicketID != first || !o.Joined {
			t.Fatalf("second request: %+v %v", o, err)
		}
		o2, err := d.svc.OpenTicket(bg, apiActor, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: "CUST-1@example.com"})
		if err != nil || o2.TicketID != first {
			t.Fatalf("third request: %+v %v", o2, err)
		}
		td := d.ticket(first)
		if len(td.Messages) != 3 {
			t.Fatalf("joined requests not recorded: %d messages", len(td.Messages))
		}
		// An unknown account opens an unmatched ticket that looks the same to the requester.
		u, err := d.svc.OpenTicket(bg, apiActor, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: "nobody@example.com"})
		if err != nil || u.TicketID == "" || u.Joined {
			t.Fatalf("unmatched: %+v %v", u, err)
		}
		ut := d.ticket(u.TicketID)
		if ut.Matched() || ut.AccountID != "" {
			t.Fatalf("unmatched ticket names an account: %+v", ut.Ticket)
		}
		wantErr(t, d.svc.SendEmailCode(bg, d.agent, u.TicketID, ut.Version, "email_code"), recovery.ErrUnmatchedTicket)
		wantErr(t, d.svc.RequestReset(bg, d.agent, u.TicketID, ut.Version, "x"), recovery.ErrUnmatchedTicket)
		if !containsSignal(ut.Risk, recovery.RiskUnmatched) {
			t.Fatalf("unmatched ticket lacks the signal: %v", ut.Risk)
		}
		// The telegram ticket from an unlinked chat carries that signal.
		if !containsSignal(td.Risk, recovery.RiskUnlinked) || td.ChatLinkedBefore {
			t.Fatalf("unlinked chat: %v %v", td.Risk, td.ChatLinkedBefore)
		}
	})
}

func containsSignal(rs []recovery.RiskSignal, s recovery.RiskSignal) bool {
	for _, r := range rs {
		if r == s {
			return true
		}
	}
	return false
}

func TestConcurrentAgentsOneConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		v := d.ticket(id).Version
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, a := range []recovery.Actor{d.agent, d.agent2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.svc.AssignTicket(bg, a, id, v, a.ID)
			}()
		}
		wg.Wait()
		var ok, conflict int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, recovery.ErrConflict):
				conflict++
			default:
				t.Fatal(err)
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("ok %d conflict %d", ok, conflict)
		}
		td := d.ticket(id)
		if td.Version != v+1 || (td.AssigneeID != d.agent.ID && td.AssigneeID != d.agent2.ID) {
			t.Fatalf("after race: v%d assignee %s", td.Version, td.AssigneeID)
		}
		// A user message in between does not make the agent's next edit conflict.
		if err := d.svc.UserMessage(bg, recovery.Actor{Type: recovery.ActorTelegramUser, ID: "1"}, id, "any news?", ""); err != nil {
			t.Fatal(err)
		}
		if err := d.svc.AssignTicket(bg, d.agent, id, td.Version, ""); err != nil {
			t.Fatalf("edit after a user message: %v", err)
		}
	})
}

func TestLinkNeverReachesUnlinkedChat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		// Chat 2002 asks without being linked; the owner's real chat 3003 was linked before.
		if err := d.svc.LinkTelegramChat(bg, recovery.Actor{Type: recovery.ActorEndUser, ID: customer}, customer, "3003"); err != nil {
			t.Fatal(err)
		}
		d.clock.Add(time.Minute)
		id := d.open(recovery.OpenRequest{Channel: recovery.ChannelTelegram, Claimed: customerEmail, ChatID: "2002", Message: "lost it"})
		d.passChecklistAllowMissing(id)
		for _, key := range []string{"document", "callback"} {
			if err := d.svc.Attest(bg, d.agent, id, d.ticket(id).Version, key, true, "checked", ""); err != nil {
				t.Fatal(err)
			}
		}
		if miss := d.ticket(id).Missing; len(miss) != 0 {
			t.Fatalf("missing %v", miss)
		}
		if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		if err := d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.stepUp(), ""); err != nil {
			t.Fatal(err)
		}
		d.clock.Add(recovery.CoolingOffHighRisk)
		if err := d.svc.Execute(bg, d.sup2, id, d.ticket(id).Version, d.stepUp()); err != nil {
			t.Fatal(err)
		}
		ns := d.deliver(recovery.NoticeTelegram)
		var toAsker, toOwner int
		for _, n := range ns {
			switch n.To {
			case "2002":
				toAsker++
				if reenrollLink.MatchString(n.Body) || vetoLink.MatchString(n.Body) {
					t.Fatalf("the unlinked chat got a link: %s", n.Kind)
				}
			case "3003":
				toOwner++
			}
		}
		if toAsker == 0 || toOwner < 2 {
			t.Fatalf("asker %d owner %d notices", toAsker, toOwner)
		}
	})
}

func TestStoredFactNeverReturned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		ok, err := d.svc.CheckKnowledge(bg, d.agent, id, d.ticket(id).Version, "knowledge_last_deposit", "999")
		if err != nil || ok {
			t.Fatalf("wrong answer matched: %v %v", ok, err)
		}
		b, _ := json.Marshal(d.ticket(id))
		for _, fact := range []string{"1,234.50", "1234.5", "Germany"} {
			if strings.Contains(string(b), fact) {
				t.Fatalf("ticket detail shows the stored fact %q", fact)
			}
		}
		events, _ := ticketEvents(d.svc, id)
		for _, e := range events {
			if strings.Contains(string(e.Details), "999") || strings.Contains(string(e.Details), "1,234") {
				t.Fatalf("event %s holds the answer or the fact", e.Action)
			}
		}
	})
}

func TestSelfServiceAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		if err := d.svc.RecordPossession(bg, d.agent, id, d.ticket(id).Version, "possession", true, "has recovery codes"); err != nil {
			t.Fatal(err)
		}
		td := d.ticket(id)
		if td.State != recovery.TicketClosed || td.Outcome != recovery.OutcomeSelfService {
			t.Fatalf("possession: %s %s", td.State, td.Outcome)
		}
		wantErr(t, d.svc.RequestReset(bg, d.agent, id, td.Version, "x"), recovery.ErrTicketState)

		id2 := d.openConsole()
		if id2 == id {
			t.Fatal("a closed ticket was joined")
		}
		start := d.clock.Now()
		d.clock.Set(start.Add(recovery.TicketIdleExpiry - time.Second))
		if n, _ := d.svc.Tick(bg); n != 0 {
			t.Fatal("expired early")
		}
		d.clock.Set(start.Add(recovery.TicketIdleExpiry))
		if n, err := d.svc.Tick(bg); err != nil || n != 1 || d.ticket(id2).State != recovery.TicketExpired {
			t.Fatalf("expiry: %d %v %s", n, err, d.ticket(id2).State)
		}
		id3 := d.openConsole()
		if err := d.svc.Withdraw(bg, recovery.Actor{Type: recovery.ActorTelegramUser, ID: "1"}, id3); err != nil {
			t.Fatal(err)
		}
		if st := d.ticket(id3).State; st != recovery.TicketWithdrawn {
			t.Fatalf("withdraw: %s", st)
		}
		wantErr(t, d.svc.Withdraw(bg, recovery.Actor{Type: recovery.ActorTelegramUser, ID: "1"}, id3), recovery.ErrTicketState)
	})
}

func TestEmailCodeLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		if err := d.svc.SendEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code"); err != nil {
			t.Fatal(err)
		}
		var code string
		for _, n := range d.deliver(recovery.NoticeEmail) {
			if m := codeInMail.FindStringSubmatch(n.Body); m != nil {
				code = m[1]
			}
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for i := 1; i < recovery.EmailCodeAttempts; i++ {
			_, err := d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", wrong)
			wantErr(t, err, recovery.ErrInvalidCode)
		}
		_, err := d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", wrong)
		wantErr(t, err, recovery.ErrInvalidCode)
		_, err = d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", code)
		wantErr(t, err, recovery.ErrExpired) // five attempts used
		// A new code, which expires after 10 minutes.
		if err := d.svc.SendEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code"); err != nil {
			t.Fatal(err)
		}
		for _, n := range d.deliver(recovery.NoticeEmail) {
			if m := codeInMail.FindStringSubmatch(n.Body); m != nil {
				code = m[1]
			}
		}
		d.clock.Add(recovery.EmailCodeTTL)
		_, err = d.svc.CheckEmailCode(bg, d.agent, id, d.ticket(id).Version, "email_code", code)
		wantErr(t, err, recovery.ErrExpired)
	})
}

// TestStateMachineEdges tries every action in every state: only design.md's edges are allowed.
func TestStateMachineEdges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		// reach builds a fresh ticket in the state (each on its own account).
		n := 0
		reach := func(state recovery.TicketState) string {
			n++
			acc := fmt.Sprintf("edge-%d", n)
			if _, _, err := d.svc.UpsertAccount(bg, apiActor, acc, recovery.AccountInput{Email: ptr(acc + "@example.com"),
				Facts: map[string]any{"last_deposit_amount": lastDeposit, "signup_country": "Germany"}}); err != nil {
				t.Fatal(err)
			}
			enrolled(t, d.svc, d.clock, acc)
			o, err := d.svc.OpenTicket(bg, apiActor, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: acc})
			if err != nil {
				t.Fatal(err)
			}
			id := o.TicketID
			step := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("reaching %s: %v", state, err)
				}
			}
			v := func() int64 { return d.ticket(id).Version }
			switch state {
			case recovery.TicketOpen:
				return id
			case recovery.TicketRejected:
				step(d.svc.Reject(bg, d.agent, id, v(), "not the owner"))
				return id
			case recovery.TicketWithdrawn:
				step(d.svc.Withdraw(bg, apiActor, id))
				return id
			case recovery.TicketExpired:
				start := d.clock.Now()
				d.clock.Add(recovery.TicketIdleExpiry)
				_, err := d.svc.Tick(bg)
				step(err)
				d.clock.Set(start)
				return id
			}
			d.passChecklist(id)
			if state == recovery.TicketVerifying {
				return id
			}
			step(d.svc.RequestReset(bg, d.agent, id, v(), "verified"))
			if state == recovery.TicketPendingApproval {
				return id
			}
			step(d.svc.Approve(bg, d.sup, id, v(), d.stepUp(), ""))
			vetos := vetoTokens(d.deliver(recovery.NoticeEmail))
			if state == recovery.TicketCoolingOff {
				return id
			}
			if state == recovery.TicketFrozen {
				_, err := d.svc.Veto(bg, apiActor, vetos[recovery.NoticeEmail])
				step(err)
				return id
			}
			start := d.clock.Now()
			d.clock.Add(recovery.CoolingOff)
			defer d.clock.Set(start)
			_, err = d.svc.Tick(bg)
			step(err)
			if state == recovery.TicketReady {
				return id
			}
			step(d.svc.Execute(bg, d.sup2, id, v(), d.stepUp()))
			d.deliver(recovery.NoticeEmail)
			if state == recovery.TicketExecuted {
				return id
			}
			step(d.svc.RecordPossession(bg, d.agent, id, v(), "possession", true, "")) // refused: ticket executed
			return id
		}
		type action struct {
			name string
			do   func(id string, v int64) error
		}
		actions := []action{
			{"request", func(id string, v int64) error { return d.svc.RequestReset(bg, d.agent, id, v, "r") }},
			{"approve", func(id string, v int64) error { return d.svc.Approve(bg, d.sup2, id, v, d.stepUp(), "") }},
			{"deny", func(id string, v int64) error { return d.svc.Deny(bg, d.sup2, id, v, d.stepUp(), "no") }},
			{"reject", func(id string, v int64) error { return d.svc.Reject(bg, d.agent, id, v, "no") }},
			{"execute", func(id string, v int64) error { return d.svc.Execute(bg, d.sup2, id, v, d.stepUp()) }},
			{"unfreeze", func(id string, v int64) error { return d.svc.Unfreeze(bg, d.admin, id, v, "checked") }},
			{"withdraw", func(id string, v int64) error { return d.svc.Withdraw(bg, apiActor, id) }},
			{"reissue", func(id string, v int64) error { return d.svc.ReissueLink(bg, d.agent, id, v, "lost") }},
			{"attest", func(id string, v int64) error { return d.svc.Attest(bg, d.agent, id, v, "document", true, "ok", "") }},
		}
		// allowed[state] lists the actions that may succeed there; every other one must be
		// refused with ErrTicketState (a reissue in executed is refused while the link is still
		// valid: ErrInvalidInput; a request in open names the missing checklist items).
		allowed := map[recovery.TicketState]string{
			recovery.TicketOpen:            "reject withdraw attest",
			recovery.TicketVerifying:       "request reject withdraw attest",
			recovery.TicketPendingApproval: "approve deny reject withdraw",
			recovery.TicketCoolingOff:      "withdraw",
			recovery.TicketReady:           "execute withdraw",
			recovery.TicketExecuted:        "",
			recovery.TicketFrozen:          "unfreeze",
			recovery.TicketRejected:        "",
			recovery.TicketWithdrawn:       "",
			recovery.TicketExpired:         "",
		}
		for state, ok := range allowed {
			for _, a := range actions {
				id := reach(state)
				if got := d.ticket(id).State; got != state {
					t.Fatalf("reach(%s) gave %s", state, got)
				}
				err := a.do(id, d.ticket(id).Version)
				want := strings.Contains(" "+ok+" ", " "+a.name+" ")
				switch {
				case want && err != nil:
					t.Errorf("%s in %s: %v", a.name, state, err)
				case !want && err == nil:
					t.Errorf("%s in %s was allowed", a.name, state)
				case !want && !errors.Is(err, recovery.ErrTicketState) && !(a.name == "reissue" && errors.Is(err, recovery.ErrInvalidInput)) &&
					!(a.name == "request" && state == recovery.TicketOpen && errors.Is(err, recovery.ErrChecklistMissing)):
					t.Errorf("%s in %s: %v, want ErrTicketState", a.name, state, err)
				}
			}
		}
	})
}

// TestRequesterHearsStatus: a Telegram requester is told when the checks are complete, when the
// request is approved (with the waiting period) and when it is rejected — never account data.
func TestRequesterHearsStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.open(recovery.OpenRequest{Channel: recovery.ChannelTelegram, Claimed: customerEmail, ChatID: "5005", Message: "lost it"})
		d.passChecklistAllowMissing(id)
		for _, key := range []string{"document", "callback"} {
			if err := d.svc.Attest(bg, d.agent, id, d.ticket(id).Version, key, true, "checked", ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.svc.RequestReset(bg, d.agent, id, d.ticket(id).Version, "verified"); err != nil {
			t.Fatal(err)
		}
		if err := d.svc.Approve(bg, d.sup, id, d.ticket(id).Version, d.stepUp(), ""); err != nil {
			t.Fatal(err)
		}
		id2 := d.open(recovery.OpenRequest{Channel: recovery.ChannelTelegram, Claimed: "nobody@example.com", ChatID: "6006"})
		if err := d.svc.Reject(bg, d.agent, id2, d.ticket(id2).Version, "no such account"); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, n := range d.deliver(recovery.NoticeTelegram) {
			if n.Kind != "status" {
				continue
			}
			if strings.Contains(n.Body, customerEmail) || strings.Contains(n.Body, customer) {
				t.Fatalf("status message shows account data: %q", n.Body)
			}
			texts = append(texts, n.To+": "+n.Body)
		}
		got := strings.Join(texts, "\n")
		for _, want := range []string{"5005: Your request " + id + ": the identity checks are complete",
			"5005: Your request " + id + " was approved. For your protection there is a waiting period until",
			"6006: We could not complete your request " + id2} {
			if !strings.Contains(got, want) {
				t.Errorf("missing %q in:\n%s", want, got)
			}
		}
		if len(texts) != 3 {
			t.Fatalf("%d status messages:\n%s", len(texts), got)
		}
	})
}

// TestTicketListFilters lists tickets by the active set, one state and several states (each a
// different query shape in the store), newest first.
func TestTicketListFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		var ids []string
		for i := 0; i < 4; i++ {
			acc := fmt.Sprintf("list-%d", i)
			if _, _, err := d.svc.UpsertAccount(bg, apiActor, acc, recovery.AccountInput{Email: ptr(acc + "@example.com")}); err != nil {
				t.Fatal(err)
			}
			o, err := d.svc.OpenTicket(bg, apiActor, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: acc})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, o.TicketID)
			d.clock.Add(time.Second)
		}
		if err := d.svc.Reject(bg, d.agent, ids[1], d.ticket(ids[1]).Version, "no"); err != nil {
			t.Fatal(err)
		}
		if err := d.svc.Withdraw(bg, apiActor, ids[2]); err != nil {
			t.Fatal(err)
		}
		list := func(states ...recovery.TicketState) string {
			ts, err := d.svc.Tickets(bg, recovery.TicketFilter{States: states})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, tk := range ts {
				out = append(out, tk.ID)
			}
			return strings.Join(out, " ")
		}
		if got, want := list(recovery.ActiveTicketStates...), ids[3]+" "+ids[0]; got != want {
			t.Errorf("active: %s, want %s", got, want)
		}
		// Keyset pages of one: the cursor of the first page's last row gives the next row.
		first, err := d.svc.Tickets(bg, recovery.TicketFilter{States: recovery.ActiveTicketStates, Limit: 1})
		if err != nil || len(first) != 1 || first[0].ID != ids[3] {
			t.Fatalf("page 1: %v %v", first, err)
		}
		second, err := d.svc.Tickets(bg, recovery.TicketFilter{States: recovery.ActiveTicketStates, Limit: 1,
			After: &recovery.TicketCursor{CreatedAt: first[0].CreatedAt, ID: first[0].ID}})
		if err != nil || len(second) != 1 || second[0].ID != ids[0] {
			t.Fatalf("page 2: %v %v", second, err)
		}
		if got := list(recovery.TicketRejected); got != ids[1] {
			t.Errorf("rejected: %s", got)
		}
		if got, want := list(recovery.TicketRejected, recovery.TicketWithdrawn), ids[2]+" "+ids[1]; got != want {
			t.Errorf("rejected or withdrawn: %s, want %s", got, want)
		}
	})
}
