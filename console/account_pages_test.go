package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// wantNoStore: every end-user page (and so each one that shows a secret or codes) is uncacheable.
func wantNoStore(t *testing.T, p page) {
	t.Helper()
	if got := p.header.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", got)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
}

func TestAccountEnableSignInAndCodes(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)

	// Without 2FA the password alone signs in.
	p := b.signIn(t).must(t, http.StatusOK, "Settings › Security", "Enable two-factor authentication")
	wantNoStore(t, p)

	// Enabling needs the password again.
	p = b.post(t, "/account/2fa/enable", url.Values{"password": {"wrong password!"}}).must(t, http.StatusUnauthorized)
	if !strings.Contains(p.body, "The password is not right") || strings.Contains(p.body, `id="manual-code"`) {
		t.Fatalf("wrong password page:\n%s", p.body)
	}
	p = b.post(t, "/account/2fa/enable", url.Values{"password": {userPassword}}).must(t, http.StatusOK,
		`id="qr" src="data:image/png;base64,`, `data-copy="manual-code"`, "Store it in a secure place", `src="/static/account.js"`)
	wantNoStore(t, p)
	manual, secret := secretOf(t, p)
	for _, g := range strings.Split(manual, " ") {
		if len(g) > 4 {
			t.Fatalf("manual code %q not in groups of four", manual)
		}
	}

	// A wrong confirmation explains time sync and does not show the secret again.
	p = b.post(t, "/account/2fa/confirm", url.Values{"code": {wrongCode(t, secret, e.clock.Now())}}).must(t, http.StatusUnauthorized, "Time correction for codes")
	if strings.Contains(p.body, secret[:8]) || strings.Contains(p.body, manual[:9]) || strings.Contains(p.body, `id="qr"`) {
		t.Fatalf("the retry page shows the secret:\n%s", p.body)
	}
	// A code a step late is accepted with the drift explained.
	confirmCode := codeAt(t, secret, e.clock.Now(), -1)
	p = b.post(t, "/account/2fa/confirm", url.Values{"code": {confirmCode}}).must(t, http.StatusOK,
		"about 30 seconds behind", "I have saved them", `download="recoverydesk-recovery-codes.txt"`, `href="data:text/plain;charset=utf-8;base64,`)
	wantNoStore(t, p)
	codes := recoveryCodesOf(t, p)

	// Never shown again: not on the security page, not by confirming or enabling again.
	p = b.get(t, "/account/security").must(t, http.StatusOK, "Recovery codes left: <strong>10</strong>", "Two-factor authentication was turned on")
	for _, s := range []string{secret[:8], manual[:9], codes[0], `id="qr"`} {
		if strings.Contains(p.body, s) {
			t.Fatalf("security page shows %q", s)
		}
	}
	p = b.post(t, "/account/2fa/enable", url.Values{"password": {userPassword}})
	if strings.Contains(p.body, `id="manual-code"`) || strings.Contains(p.body, `id="qr"`) {
		t.Fatalf("enabling again shows a secret:\n%s", p.body)
	}
	e.clock.Add(30 * time.Second)
	p = b.post(t, "/account/2fa/confirm", url.Values{"code": {codeAt(t, secret, e.clock.Now(), 0)}})
	if strings.Contains(p.body, codes[0]) || strings.Contains(p.body, `id="recovery-codes"`) || strings.Contains(p.body, `id="manual-code"`) {
		t.Fatalf("confirming again shows codes or the secret:\n%s", p.body)
	}

	b.post(t, "/account/signout", url.Values{}).must(t, http.StatusOK, "Sign in")
	if p := b.get(t, "/account/security"); !strings.Contains(p.body, `id="signin"`) {
		t.Fatalf("signed out, the security page still shows:\n%s", p.body)
	}

	// Sign in with a code: a password-only session opens nothing else.
	b.signIn(t).must(t, http.StatusOK, "6-digit code")
	if p := b.get(t, "/account/security"); strings.Contains(p.body, "Settings › Security") {
		t.Fatal("a password-only session reached the security page")
	}
	// Wrong, replayed and throttled codes all read the same.
	var msgs []string
	wrong := wrongCode(t, secret, e.clock.Now())
	used := codeAt(t, secret, e.clock.Now(), 0) // the refused confirmation above did not consume it: it signs in once
	p = b.post(t, "/account/code", url.Values{"code": {used}}).must(t, http.StatusOK, "Settings › Security")
	b.post(t, "/account/signout", url.Values{}).must(t, http.StatusOK)
	b.signIn(t).must(t, http.StatusOK, "6-digit code")
	msgs = append(msgs, errorOf(b.post(t, "/account/code", url.Values{"code": {used}}).must(t, http.StatusUnauthorized, "Time correction"))) // replayed
	for range 4 {
		msgs = append(msgs, errorOf(b.post(t, "/account/code", url.Values{"code": {wrong}}).must(t, http.StatusUnauthorized))) // wrong; the 5th starts a backoff
	}
	next := codeAt(t, secret, e.clock.Now(), 1)                                                 // valid and unused, but in the backoff
	p = b.post(t, "/account/code", url.Values{"code": {next}}).must(t, http.StatusUnauthorized) // throttled: not even checked
	msgs = append(msgs, errorOf(p), errorOf(b.post(t, "/account/code", url.Values{"code": {"12a456"}}).must(t, http.StatusUnauthorized)))
	for _, m := range msgs {
		if m == "" || m != msgs[0] {
			t.Fatalf("code refusals differ: %q", msgs)
		}
	}
	// The recovery code signs in although TOTP is in its backoff, and is one fewer.
	p = b.post(t, "/account/code", url.Values{"code": {strings.ToLower(codes[3])}, "kind": {"recovery"}}).must(t, http.StatusOK,
		"Recovery codes left: <strong>9</strong>", "A recovery code was used")

	// No secret, manual code or recovery code in any log line.
	e.logs.mu.Lock()
	logs := e.logs.buf.String()
	e.logs.mu.Unlock()
	for _, s := range append([]string{secret, manual, confirmCode}, codes...) {
		if strings.Contains(logs, s) {
			t.Fatalf("a log line holds %q", s)
		}
	}
}

func TestAccountSignInFailuresReadTheSame(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	var msgs []string
	for _, f := range []url.Values{
		{"email": {"nobody@example.com"}, "password": {userPassword}},
		{"email": {userEmail}, "password": {"wrong"}},
		{"email": {userEmail}, "password": {"wrong"}}, {"email": {userEmail}, "password": {"wrong"}},
		{"email": {userEmail}, "password": {"wrong"}}, {"email": {userEmail}, "password": {"wrong"}}, // the 5th starts a backoff
		{"email": {userEmail}, "password": {userPassword}},
	} {
		msgs = append(msgs, errorOf(b.post(t, "/account/signin", f).must(t, http.StatusUnauthorized)))
	}
	for _, m := range msgs {
		if m == "" || m != msgs[0] {
			t.Fatalf("sign-in refusals differ: %q", msgs)
		}
	}
	e.clock.Add(31 * time.Second)
	b.signIn(t).must(t, http.StatusOK, "Settings › Security")
}

func TestAccountSessionLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	b.signIn(t).must(t, http.StatusOK, "Settings › Security")
	e.clock.Add(29 * time.Minute)
	b.get(t, "/account/security").must(t, http.StatusOK, "Settings › Security")
	e.clock.Add(31 * time.Minute)
	if p := b.get(t, "/account/security"); !strings.Contains(p.body, `id="signin"`) {
		t.Fatal("an idle session still works")
	}
	b.signIn(t).must(t, http.StatusOK, "Settings › Security")
	for range 16 { // 8 h of activity every 29 minutes... then the absolute limit
		e.clock.Add(29 * time.Minute)
		b.get(t, "/account/security")
	}
	e.clock.Add(20 * time.Minute)
	if p := b.get(t, "/account/security"); !strings.Contains(p.body, `id="signin"`) {
		t.Fatal("a session older than 8 h still works")
	}
	// A reset ends the sessions.
	b.signIn(t).must(t, http.StatusOK, "Settings › Security")
	b.enable(t)
	b2 := e.browser(t)
	b2.signIn(t)
	e.desk(t, true)
	if p := b.get(t, "/account/security"); !strings.Contains(p.body, `id="signin"`) {
		t.Fatal("a reset left the session alive")
	}
}

func TestAccountCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	b.signIn(t).must(t, http.StatusOK)
	for _, path := range []string{"/account/signin", "/account/2fa/enable", "/account/signout", "/veto/abc", "/reenroll/abc"} {
		p := b.do(t, http.MethodPost, path, url.Values{"password": {userPassword}, "email": {userEmail}},
			http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}})
		if p.status != http.StatusForbidden {
			t.Fatalf("cross-origin POST %s: %d", path, p.status)
		}
	}
	// The session is untouched: still signed in, 2FA still off.
	b.get(t, "/account/security").must(t, http.StatusOK, "Enable two-factor authentication")
}

func TestAccountVetoAndLinks(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	b.signIn(t)
	b.enable(t)
	veto, _ := e.desk(t, false)

	// GET (a mail scanner) freezes nothing, however often.
	for range 3 {
		p := b.get(t, "/veto/"+veto).must(t, http.StatusOK, "I did not ask for this", `method="post"`)
		wantNoStore(t, p)
	}
	tickets, err := e.svc.Tickets(bgCtx, recovery.TicketFilter{AccountID: userID})
	if err != nil || len(tickets) != 1 || tickets[0].State != recovery.TicketCoolingOff {
		t.Fatalf("after GETs: %+v %v", tickets, err)
	}
	b.post(t, "/veto/"+veto, url.Values{}).must(t, http.StatusOK, "The request is frozen", "support team has been alerted")
	tickets, _ = e.svc.Tickets(bgCtx, recovery.TicketFilter{AccountID: userID})
	if tickets[0].State != recovery.TicketFrozen {
		t.Fatalf("after the veto: %s", tickets[0].State)
	}
	// Used, unknown and malformed links: one page.
	var bodies []string
	for _, path := range []string{"/veto/" + veto, "/veto/nope", "/reenroll/nope", "/reenroll/" + strings.Repeat("a", 300)} {
		bodies = append(bodies, b.get(t, path).must(t, http.StatusNotFound, "This link is not valid any more", "contact support").body)
	}
	bodies = append(bodies, b.post(t, "/veto/"+veto, url.Values{}).must(t, http.StatusNotFound).body)
	for _, body := range bodies {
		if body != bodies[0] {
			t.Fatal("bad links get different pages")
		}
	}
}

func TestAccountReenrollFromExecutedTicket(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	b.signIn(t)
	b.enable(t)
	_, token := e.desk(t, true)

	r := e.browser(t)
	r.get(t, "/reenroll/"+token).must(t, http.StatusOK, "enter the password")
	r.post(t, "/reenroll/"+token, url.Values{"password": {"nope nope nope"}}).must(t, http.StatusUnauthorized, "The password is not right")
	p := r.post(t, "/reenroll/"+token, url.Values{"password": {userPassword}}).must(t, http.StatusOK, `id="qr"`)
	wantNoStore(t, p)
	_, secret := secretOf(t, p)
	e.clock.Add(30 * time.Second)
	p = r.post(t, "/reenroll/"+token+"/confirm", url.Values{"code": {codeAt(t, secret, e.clock.Now(), 0)}}).must(t, http.StatusOK, "You are set up again")
	recoveryCodesOf(t, p)
	// The link is spent, the ticket closed, and the new secret signs in.
	r.get(t, "/reenroll/"+token).must(t, http.StatusNotFound, "not valid any more")
	tickets, _ := e.svc.Tickets(bgCtx, recovery.TicketFilter{AccountID: userID})
	if tickets[0].State != recovery.TicketClosed {
		t.Fatalf("ticket %s after re-enrollment", tickets[0].State)
	}
	r.signIn(t).must(t, http.StatusOK, "6-digit code")
	e.clock.Add(30 * time.Second)
	r.post(t, "/account/code", url.Values{"code": {codeAt(t, secret, e.clock.Now(), 0)}}).must(t, http.StatusOK,
		"Two-factor authentication was set up again after the reset", "Two-factor authentication was reset by support")
}

func TestAccountMoveAndTurnOff(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.user(t)
	b := e.browser(t)
	b.signIn(t)
	old, codes := b.enable(t)
	e.clock.Add(30 * time.Second)
	p := b.post(t, "/account/2fa/move", url.Values{"code": {codes[0]}}).must(t, http.StatusOK, "Move to a new phone", `id="qr"`)
	_, secret := secretOf(t, p)
	// The old phone still works until the new one is confirmed.
	if _, err := e.svc.Verify(bgCtx, hostActor, userID, codeAt(t, old, e.clock.Now(), 0)); err != nil {
		t.Fatalf("old phone before the swap: %v", err)
	}
	e.clock.Add(30 * time.Second)
	p = b.post(t, "/account/2fa/move/confirm", url.Values{"code": {codeAt(t, secret, e.clock.Now(), 0)}}).must(t, http.StatusOK, "Your new phone is set up")
	newCodes := recoveryCodesOf(t, p)
	e.clock.Add(30 * time.Second)
	if _, err := e.svc.Verify(bgCtx, hostActor, userID, codeAt(t, old, e.clock.Now(), 0)); err == nil {
		t.Fatal("the old phone still works after the move")
	}
	b.get(t, "/account/security").must(t, http.StatusOK, "moved to a new phone")

	// Turning off needs the password and a code.
	b.post(t, "/account/2fa/disable", url.Values{"password": {"wrong password"}, "code": {newCodes[0]}}).must(t, http.StatusUnauthorized)
	b.post(t, "/account/2fa/disable", url.Values{"password": {userPassword}, "code": {newCodes[1]}}).must(t, http.StatusOK,
		"Two-factor authentication is off", "Enable two-factor authentication", "was turned off")
	var kinds []string
	for _, n := range e.deliver(t) {
		kinds = append(kinds, n.Kind)
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "factor_moved") || !strings.Contains(got, "factor_disabled") {
		t.Fatalf("notices: %s", got)
	}
}
