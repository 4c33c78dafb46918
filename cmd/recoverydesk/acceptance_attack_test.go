package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The attack scenarios of the acceptance suite, each with the outcome security.md fixes.

// accRetryAfter reads a 429's Retry-After header and checks that the body says the same.
func accRetryAfter(t *testing.T, r accResp) time.Duration {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: %d, want 429\n%s", r.Label, r.Status, accTail(r.Body))
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	var body struct {
		Error             string `json:"error"`
		RetryAfterSeconds int    `json:"retry_after_seconds"`
	}
	if err != nil || json.Unmarshal([]byte(r.Body), &body) != nil || body.Error != "too_many_attempts" || body.RetryAfterSeconds != secs {
		t.Fatalf("%s: Retry-After %q, body %s", r.Label, r.Header.Get("Retry-After"), r.Body)
	}
	return time.Duration(secs) * time.Second
}

// accBackoff is security.md's wait after the n-th consecutive failure.
func accBackoff(n int) time.Duration {
	if n < 5 {
		return 0
	}
	d := 30 * time.Second
	for i := 5; i < n; i++ {
		d = min(2*d, time.Hour)
	}
	return d
}

// accBruteForce: wrong codes against one account, through the pages and the host API (one
// counter): the 5th failure starts a 30 s backoff answered with 429 and Retry-After, attempts
// during it are not evaluated (a valid code too) nor counted, each further failure doubles it
// up to an hour, and the 20th suspends the factor (423, a valid code too) until a recovery
// code lifts it.
func accBruteForce(t *testing.T) {
	d := accStart(t)
	u := d.user("u-2001", "bob@example.com")
	d.enrollAPI(u)

	// Failures 1 and 2 on the sign-in page (the user's browser), 3 to 5 at the host API.
	u.post("/account/signin", url.Values{"email": {u.email}, "password": {u.password}}).expect(t, http.StatusSeeOther, "/account/code")
	for range 2 {
		r := u.post("/account/code", url.Values{"code": {d.wrongCode(u.app)}}).expect(t, http.StatusUnauthorized, "")
		if !strings.Contains(r.Body, "That code did not work") {
			t.Fatalf("%s: not the generic refusal\n%s", r.Label, accTail(r.Body))
		}
	}
	for n := 3; n <= 5; n++ {
		d.verify(u, d.wrongCode(u.app), "").expect(t, http.StatusUnauthorized, "")
	}
	// The 5th started the backoff: even the right code is refused unchecked.
	if wait := accRetryAfter(t, d.verify(u, d.codeStill(u.app), "")); wait < 25*time.Second || wait > 30*time.Second {
		t.Fatalf("Retry-After after the 5th failure: %v, want ≈ 30 s", wait)
	}
	for n := 6; n <= 19; n++ {
		d.advance(accBackoff(n-1) + time.Second)
		d.verify(u, d.wrongCode(u.app), "").expect(t, http.StatusUnauthorized, "")
		want := accBackoff(n)
		if wait := accRetryAfter(t, d.verify(u, d.wrongCode(u.app), "")); wait < want-5*time.Second || wait > want {
			t.Fatalf("Retry-After after failure %d: %v, want ≈ %v", n, wait, want)
		}
	}
	d.advance(time.Hour + time.Second)
	d.verify(u, d.wrongCode(u.app), "").expect(t, http.StatusUnauthorized, "") // the 20th
	if r := d.verify(u, d.code(u.app), ""); r.Status != http.StatusLocked || !strings.Contains(r.Body, `"suspended"`) {
		t.Fatalf("%s: a valid code after the 20th failure: %d %s, want 423", r.Label, r.Status, r.Body)
	}
	d.waitHook("factor.suspended", u.id)
	d.advance(time.Hour + time.Second) // past any backoff: still suspended
	d.verify(u, d.code(u.app), "").expect(t, http.StatusLocked, "")
	var st struct {
		State string `json:"state"`
	}
	d.host.api(http.MethodGet, "/accounts/"+u.id+"/2fa", nil, &st).expect(t, http.StatusOK, "")
	if st.State != "suspended" {
		t.Fatalf("state %q after 20 failures, want suspended", st.State)
	}
	// The owner's recovery code lifts the suspension.
	d.host.api(http.MethodPost, "/accounts/"+u.id+"/2fa/recovery-code", map[string]any{"code": strings.ToLower(u.codes[0])}, nil).
		expect(t, http.StatusOK, "")
	d.verify(u, d.code(u.app), "").expect(t, http.StatusOK, "")
	d.finish()

	db := d.sqlDB()
	// Exactly 20 failures were counted: the attempts answered 429 were not.
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = 'totp.failed' AND target_id = ?`, u.id); got != "20" {
		t.Errorf("%s totp.failed events, want 20", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = 'factor.suspended' AND target_id = ?`, u.id); got != "1" {
		t.Errorf("%s factor.suspended events, want 1", got)
	}
	if got := accQuery(t, db, `SELECT state, failures FROM factors WHERE account_id = ?`, u.id); len(got) != 1 || got[0][0] != "active" || got[0][1] != "0" {
		t.Errorf("factor after the recovery code and a good code: %v, want active with 0 failures", got)
	}
}

// accIPSpray: one client address spraying wrong codes over ten accounts through the host API's
// "ip" field: at 30 failures in a minute that address gets 429 for 5 minutes (even with a
// valid code), while no account is locked: valid codes from another address work.
func accIPSpray(t *testing.T) {
	d := accStart(t)
	const attacker, other = "203.0.113.7", "198.51.100.20"
	var users []*accUser
	for i := range 10 {
		u := d.user("u-30"+strconv.Itoa(10+i), "spray"+strconv.Itoa(i)+"@example.com")
		d.enrollAPI(u)
		users = append(users, u)
	}
	for round := range 3 {
		for _, u := range users {
			if r := d.verify(u, d.wrongCode(u.app), attacker); r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: failure %d of %s: %d, want 401", r.Label, round+1, u.id, r.Status)
			}
		}
	}
	// 30 failures: the address is blocked, for the right code too.
	if wait := accRetryAfter(t, d.verify(users[0], d.codeStill(users[0].app), attacker)); wait < 290*time.Second || wait > 300*time.Second {
		t.Fatalf("Retry-After for the blocked address: %v, want ≈ 5 min", wait)
	}
	accRetryAfter(t, d.verify(users[5], d.wrongCode(users[5].app), attacker))
	// No account is locked: each works from another address, and from the host without one.
	for i, u := range users {
		var st struct {
			State string `json:"state"`
		}
		d.host.api(http.MethodGet, "/accounts/"+u.id+"/2fa", nil, &st).expect(t, http.StatusOK, "")
		if st.State != "active" {
			t.Fatalf("%s is %s after the spray", u.id, st.State)
		}
		ip := other
		if i%2 == 1 {
			ip = ""
		}
		d.verify(u, d.code(u.app), ip).expect(t, http.StatusOK, "")
	}
	accRetryAfter(t, d.verify(users[1], d.code(users[1].app), attacker)) // still within the 5 minutes
	d.advance(5*time.Minute + time.Second)
	d.verify(users[1], d.code(users[1].app), attacker).expect(t, http.StatusOK, "")
	d.finish()

	db := d.sqlDB()
	if got := accQuery(t, db, `SELECT ip, blocked_until IS NOT NULL FROM ip_throttles`); len(got) != 1 || got[0][0] != attacker || got[0][1] != "1" {
		t.Errorf("ip_throttles: %v, want only the attacker's address, blocked", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = 'ip.blocked' AND target_id = ?`, attacker); got != "1" {
		t.Errorf("%s ip.blocked events for the attacker's address, want 1", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action IN ('factor.suspended', 'ip.blocked') AND target_id != ?`, attacker); got != "0" {
		t.Errorf("%s suspensions or other blocked addresses, want 0", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM factors WHERE state != 'active' OR failures != 0 OR blocked_until IS NOT NULL`); got != "0" {
		t.Errorf("%s factors locked, suspended or with failures left", got)
	}
}

// accXFFSpoof: a client that is not a trusted proxy sends X-Forwarded-For with a new address on
// every failed sign-in. The header is ignored: the failures count against the real remote
// address, which is blocked at 30 (even for the right password and a fresh spoofed header),
// while another client address signs in.
func accXFFSpoof(t *testing.T) {
	d := accStart(t)
	victim := d.user("u-4001", "carol@example.com")
	attacker := d.actor("attacker")
	for i := 1; i <= 30; i++ {
		form := url.Values{"email": {"nobody" + strconv.Itoa(i) + "@example.com"}, "password": {"guess-" + strconv.Itoa(i)}}
		attacker.do(http.MethodPost, "/account/signin", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded",
			map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i)}).expect(t, http.StatusUnauthorized, "")
	}
	right := url.Values{"email": {victim.email}, "password": {victim.password}}
	// The real address is blocked: a fresh spoofed address does not help, nor the right password.
	r := attacker.do(http.MethodPost, "/account/signin", strings.NewReader(right.Encode()), "application/x-www-form-urlencoded",
		map[string]string{"X-Forwarded-For": "203.0.113.99"}).expect(t, http.StatusUnauthorized, "")
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "rd_account" && c.Value != "" {
			t.Fatalf("%s: a session was started from the blocked address", r.Label)
		}
	}
	victim.post("/account/signin", right).expect(t, http.StatusUnauthorized, "") // same address, same block
	// Another client address is not affected.
	elsewhere := d.actorFrom("user u-4001 (other network)", "127.0.0.2")
	elsewhere.post("/account/signin", right).expect(t, http.StatusSeeOther, "/account/security")
	d.finish()

	db := d.sqlDB()
	if got := accQuery(t, db, `SELECT ip, blocked_until IS NOT NULL FROM ip_throttles`); len(got) != 1 || got[0][0] != "127.0.0.1" || got[0][1] != "1" {
		t.Errorf("ip_throttles: %v, want only 127.0.0.1, blocked", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE details LIKE '%198.51.100.%' OR details LIKE '%203.0.113.%' OR target_id LIKE '198.51.100.%'`); got != "0" {
		t.Errorf("%s audit events name a spoofed address", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = 'account.sign_in_failed' AND details LIKE '%"ip":"127.0.0.1"%'`); got != "30" {
		t.Errorf("%s failed sign-ins recorded for 127.0.0.1, want 30", got)
	}
	if log := d.p.Stderr.String(); strings.Contains(log, "198.51.100.") || strings.Contains(log, "203.0.113.") {
		t.Error("the request log names a spoofed address")
	}
}

// accCrossOrigin: forms posted from another site with the victims' cookies — a supervisor's
// approval and an end user's "turn off 2FA" — get 403 and change nothing; the same forms from
// the desk's own origin work.
func accCrossOrigin(t *testing.T) {
	d := accToPendingApproval(t)
	a2, owner := d.agent2, d.owner
	a2.stepUp(d.ticket)
	_, version, _ := a2.ticket(d.ticket)
	approve := url.Values{"version": {version}, "reason": {"looks fine"}}.Encode()
	disable := url.Values{"password": {owner.password}, "code": {d.code(owner.app)}}.Encode()
	const form = "application/x-www-form-urlencoded"
	db := d.sqlDB()
	before := accOne(t, db, `SELECT MAX(seq) FROM audit_events`)
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
	} {
		a2.do(http.MethodPost, "/console/tickets/"+d.ticket+"/approve", strings.NewReader(approve), form, h).expect(t, http.StatusForbidden, "")
		owner.do(http.MethodPost, "/account/2fa/disable", strings.NewReader(disable), form, h).expect(t, http.StatusForbidden, "")
	}
	// Nothing changed: the ticket and the account are as they were, and nothing was recorded.
	if st, v, _ := a2.ticket(d.ticket); st != "pending_approval" || v != version {
		t.Fatalf("after the cross-origin approvals the ticket is %s (version %s, was %s)", st, v, version)
	}
	var st struct {
		State string `json:"state"`
	}
	d.host.api(http.MethodGet, "/accounts/"+owner.id+"/2fa", nil, &st).expect(t, http.StatusOK, "")
	if st.State != "active" {
		t.Fatalf("after the cross-origin turn-off the 2FA is %s", st.State)
	}
	// Background deliveries (notice.*) may go on; nothing else is recorded.
	if got := accQuery(t, db, `SELECT action FROM audit_events WHERE seq > ? AND action NOT LIKE 'notice.%'`, before); len(got) != 0 {
		t.Fatalf("the refused requests left audit events: %v", got)
	}
	// The same forms from the desk's own pages are accepted.
	same := map[string]string{"Origin": d.base, "Sec-Fetch-Site": "same-origin"}
	if r := a2.do(http.MethodPost, "/console/tickets/"+d.ticket+"/approve", strings.NewReader(approve), form, same); r.Status != http.StatusSeeOther || r.flash() != "approved" {
		t.Fatalf("%s: the same-origin approval: %d %q", r.Label, r.Status, r.flash())
	}
	if r := owner.do(http.MethodPost, "/account/2fa/disable", strings.NewReader(disable), form, same); r.Status != http.StatusOK || !strings.Contains(r.Body, "Two-factor authentication is off") {
		t.Fatalf("%s: the same-origin turn-off: %d\n%s", r.Label, r.Status, accTail(r.Body))
	}
	d.finish()
}

// accVeto: during the cooling-off the owner opens the veto link from the mail and confirms: the
// ticket freezes, execute is refused after the cooling-off too, and the old phone still works.
func accVeto(t *testing.T) {
	d := accToCoolingOff(t)
	owner := d.actor("user u-1001 (mail client)")
	r := owner.get("/veto/"+d.vetoToken).expect(t, http.StatusOK, "")
	d.scan.allow(d.vetoToken, r.Label) // the form posts back to its own link
	r = owner.post("/veto/"+d.vetoToken, url.Values{}).expect(t, http.StatusOK, "")
	if !strings.Contains(r.Body, "The request is frozen") {
		t.Fatalf("%s: no confirmation\n%s", r.Label, accTail(r.Body))
	}
	if st, _, _ := d.agent2.ticket(d.ticket); st != "frozen" {
		t.Fatalf("after the veto the ticket is %s", st)
	}
	// The requester's chat is told the request is on hold, and /status says why.
	d.waitBotAfter(d.chat, 0, "is on hold while our team checks it")
	before := len(d.tg.SentTo(d.chat))
	d.tg.SendText(d.chat, "alice", "/status")
	d.waitBotAfter(d.chat, before, "is paused: someone said it was not them")
	owner.post("/veto/"+d.vetoToken, url.Values{}).expect(t, http.StatusNotFound, "") // single use

	d.advance(24*time.Hour + time.Minute)
	if r := d.execute(); r.Status != http.StatusConflict || !strings.Contains(r.Body, "does not allow this") {
		t.Fatalf("%s: execute of a vetoed ticket: %d, want 409\n%s", r.Label, r.Status, accTail(r.Body))
	}
	if st, _, _ := d.agent2.ticket(d.ticket); st != "frozen" {
		t.Fatalf("after the refused execute the ticket is %s", st)
	}
	// The owner's phone was never reset.
	d.verify(d.owner, d.code(d.owner.app), "").expect(t, http.StatusOK, "")
	d.finish()

	db := d.sqlDB()
	if got := accQuery(t, db, `SELECT state, executed_at IS NULL, (SELECT COUNT(*) FROM audit_events WHERE ticket_id = ? AND action = 'ticket.vetoed')
		FROM tickets WHERE id = ?`, d.ticket, d.ticket); len(got) != 1 || got[0][0] != "frozen" || got[0][1] != "1" || got[0][2] != "1" {
		t.Errorf("ticket after the veto: %v, want frozen, never executed, one ticket.vetoed event", got)
	}
	if got := accOne(t, db, `SELECT state FROM factors WHERE account_id = ?`, d.owner.id); got != "active" {
		t.Errorf("the owner's factor is %s, want active", got)
	}
}

// accSecondTicket: a second request for an account with an active ticket — from another
// Telegram chat, with the address in capitals, and from an agent opening one for a caller —
// joins the first: the bot and the console report the existing ticket, the chat that joined
// cannot withdraw it, and SQL holds one, still open.
func accSecondTicket(t *testing.T) {
	d := accStart(t)
	agent := d.agent("ann@desk.example", "Ann Agent", "agent")
	owner := d.user("u-5001", "dave@example.com")
	d.enrollAPI(owner)
	first := d.openViaBot(6001, "dave", owner.email)
	if again := d.openViaBot(6002, "someone", strings.ToUpper(owner.email)); again != first {
		t.Fatalf("the second chat was told of request %s, want the existing %s", again, first)
	}
	// The chat that joined cannot withdraw the owner's request (it only stops following it).
	before := len(d.tg.SentTo(6002))
	d.tg.SendText(6002, "someone", "/cancel")
	d.waitBotAfter(6002, before, "is withdrawn")
	r := agent.post("/console/tickets", url.Values{"claimed": {owner.email}, "message": {"Caller says he lost his phone."}})
	if r.Status != http.StatusSeeOther || r.Loc != "/console/tickets/"+first {
		t.Fatalf("%s: opening a ticket for a caller: %d → %q, want the existing %s", r.Label, r.Status, r.Loc, first)
	}
	if _, _, page := agent.ticket(first); !strings.Contains(page.Body, "Caller says he lost his phone.") {
		t.Fatalf("%s: the caller's message is not in the existing ticket", page.Label)
	}
	d.finish()

	db := d.sqlDB()
	if got := accQuery(t, db, `SELECT state FROM tickets WHERE account_id = ?`, owner.id); len(got) != 1 || got[0][0] != "open" {
		t.Errorf("tickets for the account: %v, want one, open", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE ticket_id = ? AND action = 'ticket.joined'`, first); got != "2" {
		t.Errorf("%s ticket.joined events, want 2", got)
	}
	if got := accOne(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = 'ticket.opened'`); got != "1" {
		t.Errorf("%s ticket.opened events, want 1", got)
	}
}
