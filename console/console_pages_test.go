package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// TestConsolePagesRenderInEveryState walks one ticket through the workflow (request, approve,
// cooling-off, ready, executed, frozen/unfrozen, rejected) and renders the queue and the ticket
// page in each state, with hostile user text in the thread and the account name.
func TestConsolePagesRenderInEveryState(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	admin := e.firstAdmin(t, "admin@example.com")
	sup := e.addAgent(t, admin, "sup@example.com", "Sup", recovery.RoleSupervisor)
	ag := e.addAgent(t, admin, "agent@example.com", "Agent <b>", recovery.RoleAgent)
	hostile := "<script>alert(1)</script> \u202Egnp.exe"
	r := e.do(t, req{method: http.MethodPut, path: accountPath("acct-x"), body: map[string]any{
		"email": "x@example.com", "display_name": hostile,
		"facts": map[string]any{"last_deposit_amount": "250", "signup_country": "PT"}}})
	expect(t, r, http.StatusCreated, "")
	op, err := e.svc.OpenTicket(ctx, recovery.Actor{Type: recovery.ActorTelegramUser, ID: "42"},
		recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: "acct-x", Message: hostile})
	if err != nil {
		t.Fatal(err)
	}
	id := op.TicketID
	bs := map[string]*agentBrowser{}
	for _, a := range []consoleAgent{ag, sup, admin} {
		b := e.agentBrowser(t)
		b.signIn(t, a)
		bs[a.ID] = b
	}
	check := func(want recovery.TicketState) {
		t.Helper()
		d, err := e.svc.TicketDetail(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != want {
			t.Fatalf("state %s, want %s", d.State, want)
		}
		for _, b := range bs {
			for _, path := range []string{"/console", "/console?state=all", "/console/tickets/" + id} {
				p := b.get(t, path)
				if p.status != http.StatusOK {
					t.Fatalf("%s in %s: %d %s", path, want, p.status, p.body)
				}
				if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "Agent <b>") {
					t.Fatalf("%s in %s: user text rendered as markup", path, want)
				}
				if strings.Contains(path, "tickets") && !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
					t.Fatalf("%s: the message is not shown escaped", path)
				}
				if p.header.Get("Content-Security-Policy") == "" || p.header.Get("Cache-Control") != "no-store" {
					t.Fatalf("%s: headers %v", path, p.header)
				}
			}
		}
	}
	agActor := recovery.Actor{Type: recovery.ActorAgent, ID: ag.ID}
	supActor := recovery.Actor{Type: recovery.ActorAgent, ID: sup.ID}
	adminActor := recovery.Actor{Type: recovery.ActorAgent, ID: admin.ID}
	check(recovery.TicketOpen)

	// Work the checklist through the console forms where the domain lets an agent pass items.
	d, _ := e.svc.TicketDetail(ctx, id)
	for _, row := range e.svc.Policy().Items {
		d, _ = e.svc.TicketDetail(ctx, id)
		form := url.Values{"version": {itoa(d.Version)}, "item": {row.Key}}
		switch row.Kind {
		case recovery.KindDocument, recovery.KindCallback:
			form.Set("op", "attest")
			form.Set("passed", "yes")
			form.Set("note", "checked")
			form.Set("evidence", "case-1")
		case recovery.KindPossession:
			form.Set("op", "possession")
			form.Set("works", "no")
			form.Set("note", "lost phone")
		default:
			continue
		}
		if p := bs[ag.ID].post(t, "/console/tickets/"+id+"/checklist", form); p.status != http.StatusSeeOther {
			t.Fatalf("checklist %s: %d %s", row.Key, p.status, p.body)
		}
	}
	check(recovery.TicketVerifying)
	// The knowledge item through the form (shows match only), and the e-mail code read from the
	// outbox as the user would read it from the mail.
	d, _ = e.svc.TicketDetail(ctx, id)
	p := bs[ag.ID].post(t, "/console/tickets/"+id+"/checklist", url.Values{"version": {itoa(d.Version)}, "op": {"knowledge"},
		"item": {"knowledge_last_deposit"}, "answer": {"250"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("knowledge: %d %s", p.status, p.body)
	}
	if p := bs[ag.ID].get(t, "/console/tickets/"+id); !strings.Contains(p.body, "The answer matches.") || strings.Contains(p.body, ">250<") {
		t.Fatal("the knowledge result is not shown as match only")
	}
	d, _ = e.svc.TicketDetail(ctx, id)
	if p := bs[ag.ID].post(t, "/console/tickets/"+id+"/checklist", url.Values{"version": {itoa(d.Version)}, "op": {"send_code"}, "item": {"email_code"}}); p.status != http.StatusSeeOther {
		t.Fatalf("send code: %d %s", p.status, p.body)
	}
	var mail string
	if _, err := e.svc.DispatchDue(ctx, recovery.NoticeEmail, 10, func(_ context.Context, n recovery.Notice) error {
		mail = n.Body
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	emailCode := sixDigits(mail)
	d, _ = e.svc.TicketDetail(ctx, id)
	if p := bs[ag.ID].post(t, "/console/tickets/"+id+"/checklist", url.Values{"version": {itoa(d.Version)}, "op": {"check_code"}, "item": {"email_code"}, "code": {emailCode}}); p.status != http.StatusSeeOther {
		t.Fatalf("check code: %d %s", p.status, p.body)
	}
	d, _ = e.svc.TicketDetail(ctx, id)
	if len(d.Missing) > 0 {
		t.Fatalf("the checklist passed through the console still needs %v", d.Missing)
	}
	// A conflicting version shows the conflict and keeps the typed reason.
	p = bs[ag.ID].post(t, "/console/tickets/"+id+"/reject", url.Values{"version": {"1"}, "reason": {"typed reason 123"}, "form": {"reject"}})
	if p.status != http.StatusConflict || !strings.Contains(p.body, "Someone else changed this ticket") || !strings.Contains(p.body, "typed reason 123") {
		t.Fatalf("conflict: %d", p.status)
	}
	if err := e.svc.RequestReset(ctx, agActor, id, d.Version, "lost phone"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketPendingApproval)
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Approve(ctx, supActor, id, d.Version, e.clock.Now(), "ok"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketCoolingOff)
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Freeze(ctx, supActor, id, d.Version, "suspicious"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketFrozen)
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Unfreeze(ctx, adminActor, id, d.Version, "owner confirmed"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketPendingApproval)
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Approve(ctx, supActor, id, d.Version, e.clock.Now(), "ok again"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(recovery.CoolingOffHighRisk + time.Minute)
	if _, err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// Sessions idled out during the cooling-off: sign in again.
	for _, a := range []consoleAgent{ag, sup, admin} {
		bs[a.ID].signIn(t, a)
	}
	check(recovery.TicketReady)
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Execute(ctx, supActor, id, d.Version, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketExecuted)

	// A second ticket, rejected.
	e.createAccount(t, "acct-y")
	op, err = e.svc.OpenTicket(ctx, agActor, recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: "acct-y", Message: hostile})
	if err != nil {
		t.Fatal(err)
	}
	id = op.TicketID
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.Reject(ctx, agActor, id, d.Version, "owner withdrew"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketRejected)

	// The end states that need no checklist: withdrawn, self-service (closed) and expired.
	next := func(account string) string {
		t.Helper()
		e.createAccount(t, account)
		op, err := e.svc.OpenTicket(ctx, agActor, recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: account, Message: hostile})
		if err != nil {
			t.Fatal(err)
		}
		return op.TicketID
	}
	id = next("acct-w")
	if err := e.svc.Withdraw(ctx, recovery.Actor{Type: recovery.ActorTelegramUser, ID: "42"}, id); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketWithdrawn)
	id = next("acct-s")
	d, _ = e.svc.TicketDetail(ctx, id)
	if err := e.svc.RecordPossession(ctx, agActor, id, d.Version, "possession", true, "has recovery codes"); err != nil {
		t.Fatal(err)
	}
	check(recovery.TicketClosed)
	id = next("acct-e")
	e.clock.Add(recovery.TicketIdleExpiry)
	if _, err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range []consoleAgent{ag, sup, admin} {
		bs[a.ID].signIn(t, a)
	}
	check(recovery.TicketExpired)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// sixDigits finds the first run of exactly six digits in a mail body.
func sixDigits(s string) string {
	for i := 0; i+6 <= len(s); i++ {
		ok := true
		for j := i; j < i+6; j++ {
			if s[j] < '0' || s[j] > '9' {
				ok = false
			}
		}
		if ok && (i == 0 || s[i-1] < '0' || s[i-1] > '9') && (i+6 == len(s) || s[i+6] < '0' || s[i+6] > '9') {
			return s[i : i+6]
		}
	}
	return ""
}
