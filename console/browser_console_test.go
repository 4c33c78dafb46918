package console_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/recoverydesk/recoverydesk/console/browsertest"
	"github.com/recoverydesk/recoverydesk/recovery"
)

// TestBrowserConsole walks the whole recovery story in real Chromium as two people, each in
// their own browser context (own cookies): an agent and a supervisor, created through the
// domain, set their passwords through their setup links and enroll their TOTP on the first
// sign-in by reading the manual key from the page (the test computes the codes). The agent
// opens a ticket for an existing customer from the queue, works the checklist (the e-mail code
// is read from the outbox as the mail dispatcher would deliver it; the knowledge answers are
// typed) and requests the reset. The supervisor, whose sign-in code is more than 5 minutes
// old, is refused, confirms a fresh code in the step-up box and approves. The server's clock
// then moves past the cooling-off, the workflow ticks, the supervisor signs in again, is
// refused and steps up once more, and executes. The ticket's audit timeline shows the events.
//
// A demo desk (recovery.SeedDemo, dated before the story) fills the queue, the dashboard and
// the audit log so that the screenshots console-queue, console-ticket (mid-checklist),
// console-ticket-executed, console-dashboard and console-audit show a living console; they go
// to $RECOVERYDESK_SCREENSHOTS when set.
func TestBrowserConsole(t *testing.T) {
	store := sqliteStore(t)
	if _, err := recovery.SeedDemo(bgCtx, store, recovery.Options{Now: func() time.Time { return t0 }, Keys: testKeyring(t),
		BaseURL: "http://127.0.0.1:8080"}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{store: store})
	e.browser(t) // prints the server log if the test fails
	// The customer: facts for the knowledge items and an active authenticator, which they lost.
	e.user(t)
	secret := e.begin(t, userID)
	expect(t, e.do(t, req{method: http.MethodPost, path: twoFA(userID, "/enrollment/confirm"),
		body: map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}}), http.StatusOK, "")

	ctx := browsertest.New(t, browsertest.DesktopWidth, browsertest.DesktopHeight)
	supCtx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	dir := browsertest.ScreenshotDir()
	agent := &consolePerson{t: t, e: e, ctx: ctx, email: "alex.agent@desk.example", role: recovery.RoleAgent}
	sup := &consolePerson{t: t, e: e, ctx: supCtx, email: "sam.supervisor@desk.example", role: recovery.RoleSupervisor}

	for _, p := range []*consolePerson{agent, sup} {
		p.setUp()
		p.firstSignIn()
	}

	// The agent opens a ticket for a caller from the queue.
	agent.open("/console", "#queue")
	agent.do(chromedp.Click(chromedp.CSS("details.card summary")))
	agent.do(chromedp.SendKeys(chromedp.CSS(`#open-ticket input[name=claimed]`), userEmail),
		chromedp.SendKeys(chromedp.CSS(`#open-ticket textarea[name=message]`), "Caller says she lost her phone with the authenticator app."))
	agent.submit(`#open-ticket button`, "The ticket is open.")
	id := agent.text("#ticket-id")
	if !strings.HasPrefix(id, "RD-") {
		t.Fatalf("ticket id on the page: %q", id)
	}
	agent.submit(`#assign button`, "The ticket is assigned to you.")

	// The checklist: possession first, then the e-mail code and the account facts.
	agent.do(chromedp.SendKeys(chromedp.CSS(`#item-possession input[name=note]`), "No recovery codes, phone lost"))
	agent.submit(`#item-possession button`, "The checklist item is recorded.")
	agent.submit(`#item-email_code form:nth-of-type(1) button`, "An e-mail code is on its way")
	code := emailCode(t, e, id)
	agent.do(chromedp.SendKeys(chromedp.CSS(`#item-email_code input[name=code]`), code))
	agent.submit(`#item-email_code form:nth-of-type(2) button`, "The e-mail code is correct.")
	agent.do(chromedp.SendKeys(chromedp.CSS(`#item-knowledge_last_deposit input[name=answer]`), "1234.50 EUR"))
	agent.submit(`#item-knowledge_last_deposit button`, "The answer matches.")
	if got := agent.text("#item-knowledge_last_deposit .result"); !strings.Contains(got, "match") || strings.Contains(got, "no match") {
		t.Fatalf("knowledge result: %q", got)
	}
	if got := agent.text("#item-email_code .result"); !strings.Contains(got, "passed") {
		t.Fatalf("e-mail code result: %q", got)
	}
	// A wrong answer shows "no match" and never the stored fact.
	agent.do(chromedp.SendKeys(chromedp.CSS(`#item-knowledge_signup_country input[name=answer]`), "France"))
	agent.submit(`#item-knowledge_signup_country button`, "The answer does not match.")
	if page := agent.html("body"); strings.Contains(page, "Germany") || strings.Contains(page, "1,234.50") {
		t.Fatal("the ticket page shows a stored fact")
	}
	agent.shot(dir, "console-ticket")
	agent.do(chromedp.SendKeys(chromedp.CSS(`#item-knowledge_signup_country input[name=answer]`), "germany"))
	agent.submit(`#item-knowledge_signup_country button`, "The answer matches.")
	if got := agent.text("#checklist"); !strings.Contains(got, "The checklist is complete.") {
		t.Fatalf("checklist: %q", got)
	}
	agent.do(chromedp.SendKeys(chromedp.CSS(`#request-form textarea[name=reason]`), "E-mail code and both account facts verified."))
	agent.submit(`#request-form button`, "The reset is requested")
	agent.wantState("pending approval")
	if agent.visible("#approve-form") {
		t.Fatal("an agent is offered the approve form")
	}
	agent.open("/console", "#queue")
	if got := agent.text("#queue"); !strings.Contains(got, id) {
		t.Fatalf("the queue lacks %s: %q", id, got)
	}
	agent.shot(dir, "console-queue")

	// The supervisor finds it among the approvals. The code of the sign-in is now older than 5
	// minutes: approving needs a fresh one in the step-up box.
	sup.open("/console/approvals", "#approvals")
	if got := sup.text("#approvals"); !strings.Contains(got, id) {
		t.Fatalf("approvals lack %s: %q", id, got)
	}
	e.clock.Add(recovery.StepUpMaxAge + time.Minute)
	sup.open("/console/tickets/"+id, "#approve-form")
	sup.do(chromedp.SendKeys(chromedp.CSS(`#approve-form textarea[name=reason]`), "Checklist complete, requester is not me."))
	sup.submit(`#approve-form button`, "This needs a fresh code from your authenticator app")
	sup.wantState("pending approval")
	sup.stepUp()
	sup.do(chromedp.SendKeys(chromedp.CSS(`#approve-form textarea[name=reason]`), "Checklist complete, requester is not me."))
	sup.submit(`#approve-form button`, "Approved. The cooling-off period has started.")
	sup.wantState("cooling off")
	if sup.visible("#execute-form") {
		t.Fatal("execute offered during the cooling-off")
	}

	// The server's clock moves past the cooling-off; the workflow's tick makes the ticket
	// ready. Both sessions have long been idle: the supervisor signs in again.
	e.clock.Add(recovery.CoolingOff + time.Minute)
	if _, err := e.svc.Tick(bgCtx); err != nil {
		t.Fatal(err)
	}
	sup.open("/console/tickets/"+id, "#signin")
	sup.signIn()
	sup.open("/console/tickets/"+id, "#execute-form")
	sup.wantState("ready")
	e.clock.Add(recovery.StepUpMaxAge + time.Minute)
	sup.submit(`#execute-form button`, "This needs a fresh code from your authenticator app")
	sup.wantState("ready")
	sup.stepUp()
	sup.submit(`#execute-form button`, "The reset is executed.")
	sup.wantState("executed")
	if got := sup.text("#twofa-state"); got != "reset" && got != "Reset" {
		t.Fatalf("2FA state after the reset: %q", got)
	}
	timeline := sup.text("#timeline")
	for _, want := range []string{"Recovery ticket opened", "Ticket assigned", "Check code sent to the e-mail address of record",
		"Identity checklist item recorded", "Reset requested — “E-mail code and both account facts verified.”",
		"Reset approved; cooling-off started", "Cooling-off over; ready to execute", "Reset executed",
		"agent " + agent.id, "agent " + sup.id} {
		if !strings.Contains(timeline, want) {
			t.Errorf("the audit timeline lacks %q:\n%s", want, timeline)
		}
	}
	// Newest first: the execute above the approval above the request.
	if i, j, k := strings.Index(timeline, "Reset executed"), strings.Index(timeline, "Reset approved"), strings.Index(timeline, "Reset requested"); !(i < j && j < k) {
		t.Errorf("the timeline is not newest first:\n%s", timeline)
	}
	sup.shot(dir, "console-ticket-executed")

	// The re-enrollment link went to the customer's e-mail; the page never showed it.
	if token := tokenIn(t, e.deliver(t), `/reenroll/([A-Za-z0-9_-]+)`); strings.Contains(sup.html("body"), token) {
		t.Fatal("the ticket page shows the re-enrollment token")
	}

	sup.open("/console/dashboard", ".charts")
	sup.shot(dir, "console-dashboard")
	sup.open("/console/audit", "#audit")
	if got := sup.text("#chain-status"); !strings.HasPrefix(got, "Chain verified") {
		t.Fatalf("chain status: %q", got)
	}
	if got := sup.text("#audit"); !strings.Contains(got, "ticket.executed") {
		t.Fatalf("the audit log lacks the execute: %q", got)
	}
	sup.shot(dir, "console-audit")
}

// consolePerson is one agent at their own browser context.
type consolePerson struct {
	t           *testing.T
	e           *env
	ctx         context.Context
	email, role string
	id, secret  string
}

func (p *consolePerson) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", p.email, err)
	}
}

func (p *consolePerson) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: text of %s: %v", p.email, sel, err)
	}
	return strings.TrimSpace(v)
}

func (p *consolePerson) html(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.OuterHTML(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: html of %s: %v", p.email, sel, err)
	}
	return v
}

// visible reports whether an element matching sel is on the current page (no waiting: the
// page has loaded).
func (p *consolePerson) visible(sel string) bool {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int]("document.querySelectorAll("+jsString(sel)+").length"))
	if err != nil {
		p.t.Fatalf("%s: count %s: %v", p.email, sel, err)
	}
	return n > 0
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// open loads path and waits for sel.
func (p *consolePerson) open(path, sel string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// submit clicks the button sel, waits for the page the form's answer leads to, and fails
// unless that page's notice (flash or error) contains want.
func (p *consolePerson) submit(sel, want string) {
	p.t.Helper()
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("%s: submit %s: %v", p.email, sel, err)
	}
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll(".flash")).map(e => e.textContent.trim()).join(" | ")`))
	if err != nil {
		p.t.Fatalf("%s: notice after %s: %v", p.email, sel, err)
	}
	if !strings.Contains(got, want) {
		p.t.Fatalf("%s: after %s the notice is %q, want %q", p.email, sel, got, want)
	}
}

func (p *consolePerson) wantState(want string) {
	p.t.Helper()
	if got := p.text("#ticket-state"); !strings.EqualFold(got, want) {
		p.t.Fatalf("%s: ticket state %q, want %q", p.email, got, want)
	}
}

func (p *consolePerson) shot(dir, name string) {
	p.t.Helper()
	if dir == "" {
		dir = p.t.TempDir()
	}
	browsertest.Screenshot(p.t, p.ctx, dir, name)
}

// code is the person's current TOTP code, 30 s after the last one: the server accepts each
// step of an agent once.
func (p *consolePerson) code() string {
	p.t.Helper()
	p.e.clock.Add(30 * time.Second)
	return codeAt(p.t, p.secret, p.e.clock.Now(), 0)
}

// setUp creates the agent through the domain and sets the password through the setup link.
func (p *consolePerson) setUp() {
	p.t.Helper()
	name := strings.Split(p.email, "@")[0]
	a, link, err := p.e.svc.CreateAgent(bgCtx, sysActor(), p.email, name, p.role)
	if err != nil {
		p.t.Fatal(err)
	}
	p.id = a.ID
	p.open("/setup/"+tokenOf(link), "#setup")
	p.do(chromedp.SendKeys(chromedp.CSS(`#setup input[name=password]`), agentPassword),
		chromedp.SendKeys(chromedp.CSS(`#setup input[name=password2]`), agentPassword))
	p.submit(`#setup button`, "Saved.")
}

// firstSignIn signs in with the password and, having no authenticator yet, enrolls one from
// the manual key the page shows.
func (p *consolePerson) firstSignIn() {
	p.t.Helper()
	p.open("/console/signin", "#signin")
	p.password()
	p.do(chromedp.WaitVisible(chromedp.CSS("#enroll-begin")))
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS("#enroll-begin button"))); err != nil {
		p.t.Fatal(err)
	}
	manual := p.text("#manual-code")
	if !regexp.MustCompile(`^[A-Z2-7]{4}( [A-Z2-7]{4})+$`).MatchString(manual) {
		p.t.Fatalf("manual key %q", manual)
	}
	p.secret = strings.ReplaceAll(manual, " ", "")
	p.do(chromedp.SendKeys(chromedp.CSS(`#enroll-confirm input[name=code]`), p.code()))
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS("#enroll-confirm button"))); err != nil {
		p.t.Fatal(err)
	}
	p.do(chromedp.WaitVisible(chromedp.CSS("#queue")))
	if got := p.text(".agent-name"); got != strings.Split(p.email, "@")[0] {
		p.t.Fatalf("signed in as %q", got)
	}
}

// password fills the password step of the sign-in page.
func (p *consolePerson) password() {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS(`#signin input[name=email]`), p.email),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name=password]`), agentPassword))
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS("#signin button"))); err != nil {
		p.t.Fatal(err)
	}
}

// signIn signs in with the password and a code, from the sign-in page the browser is on.
func (p *consolePerson) signIn() {
	p.t.Helper()
	p.password()
	p.do(chromedp.WaitVisible(chromedp.CSS("#totp")), chromedp.SendKeys(chromedp.CSS(`#totp input[name=code]`), p.code()))
	if _, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS("#totp button"))); err != nil {
		p.t.Fatal(err)
	}
	p.do(chromedp.WaitVisible(chromedp.CSS("#queue")))
}

// stepUp enters a fresh code in the ticket page's step-up box.
func (p *consolePerson) stepUp() {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS(`#stepup-form input[name=code]`), p.code()))
	p.submit(`#stepup-form button`, "Code accepted.")
}

// emailCode is the 6-digit code of the ticket's e-mail check, from the e-mail the outbox
// hands to the mail dispatcher.
func emailCode(t *testing.T, e *env, ticketID string) string {
	t.Helper()
	re := regexp.MustCompile(`code is (\d{6})`)
	for _, n := range e.deliver(t) {
		if m := re.FindStringSubmatch(n.Body); m != nil && n.TicketID == ticketID {
			return m[1]
		}
	}
	t.Fatalf("no e-mail code for %s in the outbox", ticketID)
	return ""
}
