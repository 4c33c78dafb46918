package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAcceptance plays RecoveryDesk's story end to end against the real binary (built with the
// rdtest tag for its movable clock), the fake Bot API server and an SMTP sink, with the host
// platform, the end user (web pages and Telegram) and two agents as separate actors over HTTP.
// Each scenario runs on its own fresh server and database and ends with the same checks
// (accDesk.finish): `audit verify` passes, the SQL invariants hold, and no secret the run
// produced appears in any log, answer, bot message, mail or the audit export except where it
// is delivered to its owner.
//
//	go test -run TestAcceptance -v ./cmd/recoverydesk/
func TestAcceptance(t *testing.T) {
	rdtestBinary(t) // build once, before the scenarios start their clocks
	for _, sc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"story", accStory},
		{"brute_force_one_account", accBruteForce},
		{"ip_spraying_many_accounts", accIPSpray},
		{"x_forwarded_for_spoofing", accXFFSpoof},
		{"cross_origin_form", accCrossOrigin},
		{"veto_during_cooling_off", accVeto},
		{"second_ticket_joins", accSecondTicket},
	} {
		t.Run(sc.name, sc.run)
	}
}

// TestAcceptanceScanner: the suite's secret scan finds a planted secret, names the kind and the
// place, allows it where it was delivered, and matches short codes only as whole words (and
// not at all in binary files, where six digits may appear by chance).
func TestAcceptanceScanner(t *testing.T) {
	s := &accScan{}
	s.secret("re-enrollment token", "tok-0123456789abcdef", "mail 1")
	s.secret("TOTP code", "123456")
	s.add("mail 1", "open /reenroll/tok-0123456789abcdef")
	s.add("server log", `{"msg":"request","route":"/reenroll/:token","hash":"ab123456cd","n":1234567}`)
	s.add("telegram message 1", "your code: 123456.")
	s.add("audit export", "…tok-0123456789abcdef…")
	s.addBinary("database file", []byte("\x00\x07123456\x00tok-0123456789abcdef\x00"))
	leaks := s.leaks()
	want := []string{"a re-enrollment token appears in audit export", "a re-enrollment token appears in database file",
		"a TOTP code appears in telegram message 1"}
	if strings.Join(leaks, "; ") != strings.Join(want, "; ") {
		t.Errorf("leaks found: %q, want %q", leaks, want)
	}
}

// ---- actors ----

// accUser is an end user of the host platform: their account, their browser and their
// authenticator app.
type accUser struct {
	*accActor
	id, email, password string
	app                 *accTOTP
	codes               []string // recovery codes
}

var (
	accManualCodeRE   = regexp.MustCompile(`<code id="manual-code">([A-Z2-7 ]+)</code>`)
	accRecoveryCodeRE = regexp.MustCompile(`<li><code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})</code></li>`)
	accSetupTokenRE   = regexp.MustCompile(`/setup/([A-Za-z0-9_-]{16,})`)
	accVetoRE         = regexp.MustCompile(`/veto/([A-Za-z0-9_-]{16,})`)
	accReenrollRE     = regexp.MustCompile(`/reenroll/([A-Za-z0-9_-]{16,})`)
	accEmailCodeRE    = regexp.MustCompile(`code is (\d{6})\.`)
	accTicketIDRE     = regexp.MustCompile(`Your request (\S+) is with our support team`)
	accVersionRE      = regexp.MustCompile(`name="version" value="(\d+)"`)
	accStateRE        = regexp.MustCompile(`id="ticket-state">([^<]+)<`)
)

// user has the host platform create the account (e-mail, password and the facts the
// checklist asks about).
func (d *accDesk) user(id, email string) *accUser {
	d.t.Helper()
	u := &accUser{accActor: d.actor("user " + id), id: id, email: email, password: "pw-" + accRandHex(d.t, 8)}
	d.scan.secret("account password", u.password)
	d.host.api(http.MethodPut, "/accounts/"+id, map[string]any{
		"email": email, "display_name": "User " + id, "password": u.password,
		"facts": map[string]any{"last_deposit_amount": "250.00 EUR", "signup_country": "Norway"},
	}, nil).expect(d.t, http.StatusCreated, "")
	return u
}

// enrollAPI enrolls the user's 2FA through the host API (enrollment, confirmation).
func (d *accDesk) enrollAPI(u *accUser) {
	d.t.Helper()
	var en struct {
		Secret     string `json:"secret"`
		ManualCode string `json:"manual_code"`
		URI        string `json:"otpauth_uri"`
	}
	r := d.host.api(http.MethodPost, "/accounts/"+u.id+"/2fa/enrollment", nil, &en).expect(d.t, http.StatusCreated, "")
	d.scan.secret("user TOTP secret", en.Secret, r.Label)
	d.scan.secret("user TOTP secret (manual code)", en.ManualCode, r.Label)
	u.app = &accTOTP{secret: en.Secret}
	var conf struct {
		State string   `json:"state"`
		Codes []string `json:"recovery_codes"`
	}
	r = d.host.api(http.MethodPost, "/accounts/"+u.id+"/2fa/enrollment/confirm", map[string]any{"code": d.code(u.app)}, &conf).
		expect(d.t, http.StatusOK, "")
	if conf.State != "active" || len(conf.Codes) != 10 {
		d.t.Fatalf("%s: state %q, %d recovery codes", r.Label, conf.State, len(conf.Codes))
	}
	for _, c := range conf.Codes {
		d.scan.secret("recovery code", c, r.Label)
	}
	u.codes = conf.Codes
}

// enablePages: the user enables 2FA on the security page as the user guide says (password,
// manual code and QR, 6-digit code, recovery codes), signs out and signs in with a code.
func (d *accDesk) enablePages(u *accUser) {
	t := d.t
	t.Helper()
	u.post("/account/signin", url.Values{"email": {u.email}, "password": {u.password}}).expect(t, http.StatusSeeOther, "/account/security")
	if r := u.get("/account/security").expect(t, http.StatusOK, ""); !strings.Contains(r.Body, "/account/2fa/enable") {
		t.Fatalf("%s: no enable form\n%s", r.Label, accTail(r.Body))
	}
	r := u.post("/account/2fa/enable", url.Values{"password": {u.password}}).expect(t, http.StatusOK, "")
	m := accManualCodeRE.FindStringSubmatch(r.Body)
	if m == nil || !strings.Contains(r.Body, `id="qr"`) {
		t.Fatalf("%s: no manual code or QR\n%s", r.Label, accTail(r.Body))
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	d.scan.secret("user TOTP secret", secret, r.Label)
	d.scan.secret("user TOTP secret (manual code)", m[1], r.Label)
	u.app = &accTOTP{secret: secret}
	r = u.post("/account/2fa/confirm", url.Values{"code": {d.code(u.app)}}).expect(t, http.StatusOK, "")
	for _, c := range accRecoveryCodeRE.FindAllStringSubmatch(r.Body, -1) {
		d.scan.secret("recovery code", c[1], r.Label)
		u.codes = append(u.codes, c[1])
	}
	if len(u.codes) != 10 || !strings.Contains(r.Body, "Two-factor authentication is on") {
		t.Fatalf("%s: %d recovery codes\n%s", r.Label, len(u.codes), accTail(r.Body))
	}
	u.post("/account/signout", url.Values{}).expect(t, http.StatusOK, "")
	u.signInPages()
}

// signInPages signs the user in on the end-user pages: password, then a code.
func (u *accUser) signInPages() {
	d, t := u.d, u.d.t
	t.Helper()
	u.post("/account/signin", url.Values{"email": {u.email}, "password": {u.password}}).expect(t, http.StatusSeeOther, "/account/code")
	u.post("/account/code", url.Values{"code": {d.code(u.app)}}).expect(t, http.StatusSeeOther, "/account/security")
}

// verify is a login at the host platform: POST …/2fa/verify with a code of app.
func (d *accDesk) verify(u *accUser, code string, ip string) accResp {
	d.t.Helper()
	body := map[string]any{"code": code}
	if ip != "" {
		body["ip"] = ip
	}
	return d.host.api(http.MethodPost, "/accounts/"+u.id+"/2fa/verify", body, nil)
}

// openViaBot: a Telegram user asks the bot for help with a lost authenticator and names the
// account's e-mail; it returns the request (ticket) id the bot answers with.
func (d *accDesk) openViaBot(chat int64, name, email string) string {
	t := d.t
	t.Helper()
	before := len(d.tg.SentTo(chat))
	d.tg.SendText(chat, name, "/start")
	if m := d.waitBotAfter(chat, before, "What would you like to do?"); !m.HasButton("lost") {
		t.Fatalf("greeting without the lost-device button: %+v", m)
	}
	d.tg.PressButton(chat, "lost")
	d.waitBotAfter(chat, before, "send the e-mail address of your account")
	d.tg.SendText(chat, name, email)
	m := accTicketIDRE.FindStringSubmatch(d.waitBotAfter(chat, before, "is with our support team").Text)
	if m == nil {
		t.Fatal("the bot's answer names no request")
	}
	return m[1]
}

// accAgent is a support agent with a browser and an authenticator app.
type accAgent struct {
	*accActor
	id, email, password string
	app                 *accTOTP
}

// agent creates an agent with `recoverydesk agent add`, completes the setup link over HTTP
// (password), signs in and enrolls the agent's own TOTP from the key the console shows.
func (d *accDesk) agent(email, name, role string) *accAgent {
	t := d.t
	t.Helper()
	label := "agent add " + email
	out, errOut, code := d.cli(label, "agent", "add", "--email", email, "--name", name, "--role", role)
	m, id := accSetupTokenRE.FindStringSubmatch(out), regexp.MustCompile(`\(id (\S+)\)`).FindStringSubmatch(out)
	if code != 0 || m == nil || id == nil {
		t.Fatalf("%s: exit %d\n%s%s", label, code, out, errOut)
	}
	d.scan.secret("agent setup token", m[1], label+" stdout")
	a := &accAgent{accActor: d.actor(name), id: id[1], email: email, password: "agent-pw-" + accRandHex(t, 8)}
	d.scan.secret("agent password", a.password)
	r := a.get("/setup/"+m[1]).expect(t, http.StatusOK, "")
	d.scan.allow(m[1], r.Label) // the form posts back to its own link
	a.post("/setup/"+m[1], url.Values{"password": {a.password}, "password2": {a.password}}).expect(t, http.StatusSeeOther, "/console/signin")
	a.post("/console/signin", url.Values{"email": {email}, "password": {a.password}}).expect(t, http.StatusSeeOther, "/console/signin/totp")
	a.get("/console/signin/totp").expect(t, http.StatusSeeOther, "/console/enroll")
	r = a.post("/console/enroll", url.Values{"step": {"begin"}}).expect(t, http.StatusOK, "")
	mc := accManualCodeRE.FindStringSubmatch(r.Body)
	if mc == nil {
		t.Fatalf("%s: no key shown\n%s", r.Label, accTail(r.Body))
	}
	secret := strings.ReplaceAll(mc[1], " ", "")
	d.scan.secret("agent TOTP secret", secret, r.Label)
	d.scan.secret("agent TOTP secret (manual code)", mc[1], r.Label)
	a.app = &accTOTP{secret: secret}
	a.post("/console/enroll", url.Values{"step": {"confirm"}, "code": {d.code(a.app)}}).expect(t, http.StatusSeeOther, "/console")
	return a
}

// signIn: password, then the agent's own code (a session that ended is replaced).
func (a *accAgent) signIn() {
	t := a.d.t
	t.Helper()
	a.post("/console/signin", url.Values{"email": {a.email}, "password": {a.password}}).expect(t, http.StatusSeeOther, "/console/signin/totp")
	a.post("/console/signin/totp", url.Values{"code": {a.d.code(a.app)}}).expect(t, http.StatusSeeOther, "/console")
}

// stepUp enters a fresh code in the ticket page's step-up box.
func (a *accAgent) stepUp(ticket string) {
	t := a.d.t
	t.Helper()
	r := a.post("/console/stepup", url.Values{"ticket": {ticket}, "code": {a.d.code(a.app)}}).expect(t, http.StatusSeeOther, "/console/tickets/"+ticket)
	if f := r.flash(); f != "stepped_up" {
		t.Fatalf("%s: flash %q", r.Label, f)
	}
}

// ticket reads the ticket page: the state it shows (as the domain names it, e.g.
// "pending_approval") and the version its forms carry.
func (a *accAgent) ticket(id string) (state, version string, page accResp) {
	t := a.d.t
	t.Helper()
	page = a.get("/console/tickets/"+id).expect(t, http.StatusOK, "")
	st, v := accStateRE.FindStringSubmatch(page.Body), accVersionRE.FindStringSubmatch(page.Body)
	if st == nil {
		t.Fatalf("%s: no state\n%s", page.Label, accTail(page.Body))
	}
	if v != nil {
		version = v[1]
	}
	return strings.ReplaceAll(strings.TrimSpace(st[1]), " ", "_"), version, page
}

// act posts one ticket form with the version the page shows now and returns the answer.
func (a *accAgent) act(id, action string, form url.Values) accResp {
	a.d.t.Helper()
	_, v, _ := a.ticket(id)
	form.Set("version", v)
	return a.post("/console/tickets/"+id+"/"+action, form)
}

// actOK posts a ticket form and fails unless it succeeds with the flash want.
func (a *accAgent) actOK(id, action string, form url.Values, want string) accResp {
	t := a.d.t
	t.Helper()
	r := a.act(id, action, form)
	if r.Status != http.StatusSeeOther || r.flash() != want {
		t.Fatalf("%s: %d flash %q, want 303 %q\n%s", r.Label, r.Status, r.flash(), want, accTail(r.Body))
	}
	return r
}

// ---- the story ----

// accStoryDesk is the cast of the story.
type accStoryDesk struct {
	*accDesk
	owner        *accUser
	chat         int64 // the owner's Telegram chat (not linked to the account before)
	agent1       *accAgent
	agent2       *accAgent
	ticket       string
	vetoToken    string
	vetoMail     accMail
	reenrollMail accMail
}

// accToPendingApproval plays the story up to the reset request: the owner enables 2FA on the
// pages and logs in, loses the phone, writes to the bot; agent 1 works the checklist (e-mail
// code from the SMTP sink, both knowledge facts since the chat was not linked before) and
// requests the reset.
func accToPendingApproval(t *testing.T) *accStoryDesk {
	t.Helper()
	d := &accStoryDesk{accDesk: accStart(t), chat: 5001}
	d.agent1 = d.agent("ann@desk.example", "Ann Agent", "agent")
	d.agent2 = d.agent("sam@desk.example", "Sam Supervisor", "supervisor")

	// The user enables 2FA and logs in once, on the pages and at the host platform.
	d.owner = d.user("u-1001", "alice@example.com")
	d.enablePages(d.owner)
	d.verify(d.owner, d.code(d.owner.app), "").expect(t, http.StatusOK, "")

	// The phone is lost. The user writes to the bot.
	d.ticket = d.openViaBot(d.chat, "alice", d.owner.email)
	d.tg.SendText(d.chat, "alice", "I lost my phone with the authenticator app, and the recovery codes were on it.")
	d.waitBot(d.chat, "Sent to support.")

	// Agent 1 finds the ticket, takes it and works the checklist.
	a1 := d.agent1
	if r := a1.get("/console").expect(t, http.StatusOK, ""); !strings.Contains(r.Body, d.ticket) {
		t.Fatalf("%s: the queue does not show %s", r.Label, d.ticket)
	}
	a1.actOK(d.ticket, "assign", url.Values{}, "assigned")
	a1.actOK(d.ticket, "checklist", url.Values{"op": {"possession"}, "item": {"possession"}, "works": {"no"},
		"note": {"lost the phone and the codes"}}, "recorded")
	a1.actOK(d.ticket, "checklist", url.Values{"op": {"send_code"}, "item": {"email_code"}}, "code_sent")
	codeMail := d.waitMail(d.owner.email, "verification code", 1)
	ec := accEmailCodeRE.FindStringSubmatch(codeMail.Body)
	if ec == nil {
		t.Fatalf("%s holds no code", codeMail.label())
	}
	d.scan.secret("e-mail check code", ec[1], codeMail.label())
	a1.actOK(d.ticket, "checklist", url.Values{"op": {"check_code"}, "item": {"email_code"}, "code": {ec[1]}}, "code_ok")
	a1.actOK(d.ticket, "checklist", url.Values{"op": {"knowledge"}, "item": {"knowledge_last_deposit"}, "answer": {"250.00 EUR"}}, "match")
	a1.actOK(d.ticket, "checklist", url.Values{"op": {"knowledge"}, "item": {"knowledge_signup_country"}, "answer": {" norway "}}, "match")
	if _, _, page := a1.ticket(d.ticket); !strings.Contains(page.Body, "The checklist is complete.") {
		t.Fatalf("%s: checklist not complete\n%s", page.Label, accTail(page.Body))
	}
	a1.actOK(d.ticket, "request", url.Values{"reason": {"E-mail code and both account facts check out; phone lost."}}, "requested")
	if st, _, _ := a1.ticket(d.ticket); st != "pending_approval" {
		t.Fatalf("after the request the ticket is %q", st)
	}
	d.waitBot(d.chat, "the identity checks are complete")
	return d
}

// accToCoolingOff goes on: agent 2 (supervisor) approves with a step-up; the owner's e-mail
// of record gets the veto link.
func accToCoolingOff(t *testing.T) *accStoryDesk {
	t.Helper()
	d := accToPendingApproval(t)
	a2 := d.agent2
	a2.stepUp(d.ticket)
	a2.actOK(d.ticket, "approve", url.Values{"reason": {"Checks are complete and consistent."}}, "approved")
	if st, _, _ := a2.ticket(d.ticket); st != "cooling_off" {
		t.Fatalf("after the approval the ticket is %q", st)
	}
	d.vetoMail = d.waitMail(d.owner.email, "Was this you?", 1)
	m := accVetoRE.FindStringSubmatch(d.vetoMail.Body)
	if m == nil {
		t.Fatalf("%s holds no veto link", d.vetoMail.label())
	}
	d.vetoToken = m[1]
	d.scan.secret("veto token", d.vetoToken, d.vetoMail.label())
	d.waitBot(d.chat, "was approved. For your protection there is a waiting period")
	return d
}

// execute: after the cooling-off, agent 2 signs in again (the sessions ended while the clock
// moved a day) and executes with a step-up.
func (d *accStoryDesk) execute() accResp {
	t := d.t
	t.Helper()
	a2 := d.agent2
	a2.signIn()
	a2.stepUp(d.ticket)
	r := a2.act(d.ticket, "execute", url.Values{})
	if st, _, _ := a2.ticket(d.ticket); r.Status == http.StatusConflict && st == "ready" {
		// The workflow's timer made the ticket ready between the page and the form (a new
		// version): the agent reloads and submits again.
		r = a2.act(d.ticket, "execute", url.Values{})
	}
	return r
}

// accStory is the whole story: … cooling-off passes, execute, the user re-enrolls from the
// mailed link and logs in with the new phone only.
func accStory(t *testing.T) {
	d := accToCoolingOff(t)
	oldApp := &accTOTP{secret: d.owner.app.secret, last: d.owner.app.last}

	// Execute is refused before the cooling-off ends.
	d.agent2.stepUp(d.ticket)
	if r := d.agent2.act(d.ticket, "execute", url.Values{}); r.Status != http.StatusConflict {
		t.Fatalf("%s: execute during the cooling-off: %d, want 409", r.Label, r.Status)
	}
	d.advance(24*time.Hour + time.Minute)
	if r := d.execute(); r.Status != http.StatusSeeOther || r.flash() != "executed" {
		t.Fatalf("%s: execute: %d %q\n%s", r.Label, r.Status, r.flash(), accTail(r.Body))
	}
	if st, _, _ := d.agent2.ticket(d.ticket); st != "executed" {
		t.Fatalf("after execute the ticket is %q", st)
	}
	var st struct {
		State     string  `json:"state"`
		HoldUntil *string `json:"hold_until"`
	}
	d.host.api(http.MethodGet, "/accounts/"+d.owner.id+"/2fa", nil, &st).expect(t, http.StatusOK, "")
	if st.State != "reset" || st.HoldUntil == nil {
		t.Fatalf("after execute: state %q, hold %v", st.State, st.HoldUntil)
	}

	// The host platform hears of the reset and the hold.
	d.waitHook("reset.executed", d.owner.id)
	d.waitHook("hold.set", d.owner.id)

	// The link goes to the e-mail of record; the chat that merely asked is told where it went.
	d.reenrollMail = d.waitMail(d.owner.email, "Set up two-factor authentication again", 1)
	m := accReenrollRE.FindStringSubmatch(d.reenrollMail.Body)
	if m == nil {
		t.Fatalf("%s holds no re-enrollment link", d.reenrollMail.label())
	}
	token := m[1]
	d.scan.secret("re-enrollment token", token, d.reenrollMail.label())
	d.waitBot(d.chat, "was sent to the e-mail address on your account")

	// The user re-enrolls on the new phone from the link.
	phone := d.actor("user u-1001 (new phone)")
	r := phone.get("/reenroll/"+token).expect(t, http.StatusOK, "")
	d.scan.allow(token, r.Label)
	r = phone.post("/reenroll/"+token, url.Values{"password": {d.owner.password}}).expect(t, http.StatusOK, "")
	d.scan.allow(token, r.Label) // the confirmation form posts to /reenroll/<token>/confirm
	mc := accManualCodeRE.FindStringSubmatch(r.Body)
	if mc == nil {
		t.Fatalf("%s: no manual code\n%s", r.Label, accTail(r.Body))
	}
	newSecret := strings.ReplaceAll(mc[1], " ", "")
	d.scan.secret("user TOTP secret", newSecret, r.Label)
	d.scan.secret("user TOTP secret (manual code)", mc[1], r.Label)
	newApp := &accTOTP{secret: newSecret}
	r = phone.post("/reenroll/"+token+"/confirm", url.Values{"code": {d.code(newApp)}}).expect(t, http.StatusOK, "")
	codes := accRecoveryCodeRE.FindAllStringSubmatch(r.Body, -1)
	if len(codes) != 10 || !strings.Contains(r.Body, "You are set up again") {
		t.Fatalf("%s: %d recovery codes\n%s", r.Label, len(codes), accTail(r.Body))
	}
	for _, c := range codes {
		d.scan.secret("recovery code", c[1], r.Label)
	}
	// The link worked once.
	phone.get("/reenroll/"+token).expect(t, http.StatusNotFound, "")

	// Login at the host: the new phone's code works, the old phone's does not.
	d.verify(d.owner, d.code(oldApp), "").expect(t, http.StatusUnauthorized, "")
	d.verify(d.owner, d.code(newApp), "").expect(t, http.StatusOK, "")
	// And on the pages, with the new phone.
	d.owner.app = newApp
	d.owner.signInPages()
	// What the agents can read about it — the outbox, the audit log and its export — is scanned
	// with everything else: no link, code or secret may be in it.
	d.agent1.signIn() // agent 1's session ended while the clock moved a day
	d.agent1.get("/console/outbox").expect(t, http.StatusOK, "")
	d.agent2.get("/console/audit").expect(t, http.StatusOK, "")
	d.agent2.get("/console/audit/export.jsonl").expect(t, http.StatusOK, "")
	d.agent2.get("/console/accounts?q="+d.owner.id).expect(t, http.StatusOK, "")
	d.finish()

	db := d.sqlDB()
	if got := accQuery(t, db, `SELECT state, outcome FROM tickets WHERE id = ?`, d.ticket); len(got) != 1 || got[0][0] != "closed" || got[0][1] != "reenrolled" {
		t.Errorf("ticket after re-enrollment: %v, want closed/reenrolled", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM factors f JOIN tickets t ON t.account_id = f.account_id
		WHERE t.id = ? AND f.state = 'active' AND f.enrolled_at > t.executed_at`, d.ticket); got != "1" {
		t.Errorf("the account is not re-enrolled after the execute (%s)", got)
	}
	// The chat was not linked before the ticket: it never got the link, only where it went.
	if got := accOne(t, db, `SELECT COUNT(*) FROM notices WHERE ticket_id = ? AND channel = 'telegram' AND kind = 'reenroll_link'`, d.ticket); got != "0" {
		t.Errorf("%s re-enrollment links went to the unlinked chat", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM notices WHERE ticket_id = ? AND channel = 'telegram' AND kind = 'link_sent_to_email'`, d.ticket); got != "1" {
		t.Errorf("%s 'link sent to e-mail' notices to the chat, want 1", got)
	}
	for _, action := range []string{"ticket.opened", "ticket.requested", "ticket.approved", "ticket.ready", "ticket.executed", "ticket.reenrolled", "ticket.closed"} {
		if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE ticket_id = ? AND action = ?`, d.ticket, action); got != "1" {
			t.Errorf("%s %s events for the ticket, want 1", got, action)
		}
	}
}
