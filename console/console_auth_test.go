package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

func TestConsoleSignInRotatesSessionAndLogsOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	b := e.agentBrowser(t)

	// Anonymous: pages redirect to sign-in, actions are refused.
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther || p.location != "/console/signin" {
		t.Fatalf("anonymous queue: %d %q", p.status, p.location)
	}
	// A planted session id (fixation) is not honoured and is replaced at sign-in.
	u, _ := url.Parse(e.srv.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "rd_console", Value: "planted-by-attacker", Path: "/"}})
	p := b.post(t, "/console/signin", url.Values{"email": {admin.Email}, "password": {agentPassword}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("password step: %d %s", p.status, p.body)
	}
	pending := b.session(t)
	if pending == "" || pending == "planted-by-attacker" {
		t.Fatalf("session id after the password: %q", pending)
	}
	if !strings.Contains(p.header.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(p.header.Get("Set-Cookie"), "SameSite=Strict") {
		t.Fatalf("cookie attributes: %q", p.header.Get("Set-Cookie"))
	}
	// The password alone does not open the console.
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("queue with a password-only session: %d", p.status)
	}
	p = b.post(t, "/console/signin/totp", url.Values{"code": {codeAt(t, admin.secret, e.clock.Now(), 0)}})
	if p.status != http.StatusSeeOther || p.location != "/console" {
		t.Fatalf("TOTP step: %d %s", p.status, p.body)
	}
	full := b.session(t)
	if full == "" || full == pending {
		t.Fatalf("the session id did not change at the TOTP step")
	}
	if p := b.get(t, "/console"); p.status != http.StatusOK || !strings.Contains(p.body, "Recovery queue") {
		t.Fatalf("queue: %d", p.status)
	}
	// The pending id is dead.
	old := e.agentBrowser(t)
	old.client.Jar.SetCookies(u, []*http.Cookie{{Name: "rd_console", Value: pending, Path: "/"}})
	if p := old.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("old pending id still admitted: %d", p.status)
	}

	// Logout ends the session server-side: replaying the cookie does not work.
	if p := b.post(t, "/console/signout", nil); p.status != http.StatusSeeOther {
		t.Fatalf("signout: %d", p.status)
	}
	replay := e.agentBrowser(t)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: "rd_console", Value: full, Path: "/"}})
	if p := replay.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("session alive after logout: %d", p.status)
	}
}

func TestConsoleSignInRefusalsLookTheSame(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	b := e.agentBrowser(t)
	wrong := b.post(t, "/console/signin", url.Values{"email": {admin.Email}, "password": {"not the password at all"}})
	unknown := b.post(t, "/console/signin", url.Values{"email": {"nobody@example.com"}, "password": {"not the password at all"}})
	if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized {
		t.Fatalf("statuses %d %d", wrong.status, unknown.status)
	}
	strip := func(s string) string { return strings.ReplaceAll(s, "nobody@example.com", admin.Email) }
	if strip(unknown.body) != wrong.body {
		t.Fatal("an unknown agent and a wrong password answer differently")
	}
	if b.session(t) != "" {
		t.Fatal("a refused sign-in set a session")
	}
	// A wrong TOTP keeps the session pending.
	b.post(t, "/console/signin", url.Values{"email": {admin.Email}, "password": {agentPassword}})
	p := b.post(t, "/console/signin/totp", url.Values{"code": {wrongCode(t, admin.secret, e.clock.Now())}})
	if p.status != http.StatusUnauthorized {
		t.Fatalf("wrong TOTP: %d", p.status)
	}
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("wrong TOTP opened the console: %d", p.status)
	}
}

func TestConsoleSessionIdleAbsoluteAndEpoch(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	sup := e.addAgent(t, admin, "sup@example.com", "Sup", recovery.RoleSupervisor)

	// Idle: 29 minutes is fine and refreshes the clock; 30 minutes without a request ends it.
	b := e.agentBrowser(t)
	b.signIn(t, sup)
	e.clock.Add(29 * time.Minute)
	if p := b.get(t, "/console"); p.status != http.StatusOK {
		t.Fatalf("after 29 min: %d", p.status)
	}
	e.clock.Add(29 * time.Minute)
	if p := b.get(t, "/console"); p.status != http.StatusOK {
		t.Fatalf("29 min after the last request: %d", p.status)
	}
	e.clock.Add(30 * time.Minute)
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("after 30 idle minutes: %d", p.status)
	}

	// Absolute: 12 h even when used every 20 minutes.
	b = e.agentBrowser(t)
	b.signIn(t, sup)
	for i := 0; i < 35; i++ { // 35 × 20 min = 11 h 40 min
		e.clock.Add(20 * time.Minute)
		if p := b.get(t, "/console"); p.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, p.status)
		}
	}
	e.clock.Add(20 * time.Minute)
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("after 12 h: %d", p.status)
	}

	// A role change (epoch) ends the session at once; so does disabling.
	b = e.agentBrowser(t)
	b.signIn(t, sup)
	if _, err := e.svc.SetAgentRole(context.Background(), recovery.Actor{Type: recovery.ActorAgent, ID: admin.ID}, admin.ID, sup.ID, recovery.RoleAgent); err != nil {
		t.Fatal(err)
	}
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("after a role change: %d", p.status)
	}
	b.signIn(t, sup)
	if _, err := e.svc.DisableAgent(context.Background(), recovery.Actor{Type: recovery.ActorAgent, ID: admin.ID}, admin.ID, sup.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get(t, "/console"); p.status != http.StatusSeeOther {
		t.Fatalf("after disabling: %d", p.status)
	}
}

func TestConsoleFirstEnrollment(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	link, _, err := e.svc.IssueFirstAdminLink(ctx, sysActor())
	if err != nil {
		t.Fatal(err)
	}
	b := e.agentBrowser(t)
	if p := b.get(t, "/setup/"+tokenOf(link)); p.status != http.StatusOK || !strings.Contains(p.body, "Create the first admin") {
		t.Fatalf("setup page: %d", p.status)
	}
	p := b.post(t, "/setup/"+tokenOf(link), url.Values{"email": {"root@example.com"}, "name": {"Root"},
		"password": {agentPassword}, "password2": {agentPassword}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", p.status, p.body)
	}
	if p := b.get(t, "/setup/"+tokenOf(link)); p.status != http.StatusNotFound {
		t.Fatalf("used setup link: %d", p.status)
	}
	b.post(t, "/console/signin", url.Values{"email": {"root@example.com"}, "password": {agentPassword}})
	if p := b.get(t, "/console/signin/totp"); p.status != http.StatusSeeOther || p.location != "/console/enroll" {
		t.Fatalf("not enrolled → enroll: %d %q", p.status, p.location)
	}
	// GET shows no secret; the POST does.
	if p := b.get(t, "/console/enroll"); strings.Contains(p.body, "manual-code") {
		t.Fatal("GET created an enrollment")
	}
	p = b.post(t, "/console/enroll", url.Values{"step": {"begin"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Fatalf("enroll: %d", p.status)
	}
	i := strings.Index(p.body, `<code id="manual-code">`)
	manual := p.body[i+len(`<code id="manual-code">`):]
	manual = strings.ReplaceAll(manual[:strings.Index(manual, "<")], " ", "")
	p = b.post(t, "/console/enroll", url.Values{"step": {"confirm"}, "code": {codeAt(t, manual, e.clock.Now(), 0)}})
	if p.status != http.StatusSeeOther || p.location != "/console" {
		t.Fatalf("confirm: %d %s", p.status, p.body)
	}
	if p := b.get(t, "/console"); p.status != http.StatusOK {
		t.Fatalf("queue after enrollment: %d", p.status)
	}
}
