package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
	userID       = "user-1"
	userEmail    = "alice@example.com"
	userPassword = "correct horse battery"
)

var (
	bgCtx     = context.Background()
	hostActor = recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}
)

// user creates the end user of the account pages, with a password and the facts the default
// policy's knowledge items compare.
func (e *env) user(t testing.TB) {
	t.Helper()
	_, _, err := e.svc.UpsertAccount(bgCtx, hostActor, userID, recovery.AccountInput{
		Email: ptr(userEmail), DisplayName: ptr("Alice"), Password: ptr(userPassword),
		Facts: map[string]any{"last_deposit_amount": "1,234.50 EUR", "signup_country": "Germany"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar, as a browser would be.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser(t testing.TB) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.logs.mu.Lock()
			t.Logf("server log:\n%s", e.logs.buf.String())
			e.logs.mu.Unlock()
		}
	})
	return &browser{e: e, client: &http.Client{Jar: jar}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(t testing.TB, path string) page {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil, nil)
}

func (b *browser) post(t testing.TB, path string, form url.Values) page {
	t.Helper()
	return b.do(t, http.MethodPost, path, form, nil)
}

func (b *browser) do(t testing.TB, method, path string, form url.Values, hdr http.Header) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (p page) must(t testing.TB, status int, contains ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; page:\n%s", p.status, status, p.body)
	}
	for _, s := range contains {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
	return p
}

var (
	manualCodeRE = regexp.MustCompile(`<code id="manual-code">([A-Z2-7 ]+)</code>`)
	codesRE      = regexp.MustCompile(`<li><code>([0-9A-Z-]{19})</code></li>`)
	errorRE      = regexp.MustCompile(`<p class="error" id="error" role="alert">([^<]*)</p>`)
)

// secretOf reads the manual setup code from an enrollment page and returns the secret.
func secretOf(t testing.TB, p page) (manual, secret string) {
	t.Helper()
	m := manualCodeRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no manual code on the page:\n%s", p.body)
	}
	return m[1], strings.ReplaceAll(m[1], " ", "")
}

func recoveryCodesOf(t testing.TB, p page) []string {
	t.Helper()
	var out []string
	for _, m := range codesRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	if len(out) != recovery.RecoveryCodeCount {
		t.Fatalf("%d recovery codes on the page, want %d:\n%s", len(out), recovery.RecoveryCodeCount, p.body)
	}
	return out
}

func errorOf(p page) string {
	if m := errorRE.FindStringSubmatch(p.body); m != nil {
		return m[1]
	}
	return ""
}

// signIn signs the browser in with the password only.
func (b *browser) signIn(t testing.TB) page {
	t.Helper()
	return b.post(t, "/account/signin", url.Values{"email": {userEmail}, "password": {userPassword}})
}

// enable runs the enable-2FA steps on the pages and returns the secret and recovery codes.
func (b *browser) enable(t testing.TB) (secret string, codes []string) {
	t.Helper()
	p := b.post(t, "/account/2fa/enable", url.Values{"password": {userPassword}}).must(t, http.StatusOK, `id="qr"`)
	_, secret = secretOf(t, p)
	p = b.post(t, "/account/2fa/confirm", url.Values{"code": {codeAt(t, secret, b.e.clock.Now(), 0)}}).must(t, http.StatusOK)
	return secret, recoveryCodesOf(t, p)
}

// desk drives a recovery ticket for the user through the domain: agents, checklist, request,
// approval and (with execute) the reset after the cooling-off. It returns the veto token and,
// with execute, the re-enrollment token, read from the e-mails the outbox delivers.
func (e *env) desk(t testing.TB, execute bool) (veto, reenroll string) {
	t.Helper()
	sys := recovery.Actor{Type: recovery.ActorSystem, ID: "test"}
	agent := func(email, role string) recovery.Actor {
		a, _, err := e.svc.CreateAgent(bgCtx, sys, email, strings.Split(email, "@")[0], role)
		if err != nil {
			t.Fatal(err)
		}
		return recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}
	}
	ag, sup := agent("agent@desk.example", recovery.RoleAgent), agent("sup@desk.example", recovery.RoleSupervisor)
	o, err := e.svc.OpenTicket(bgCtx, ag, recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: userEmail, Message: "I lost my phone"})
	if err != nil {
		t.Fatal(err)
	}
	id := o.TicketID
	version := func() int64 {
		td, err := e.svc.TicketDetail(bgCtx, id)
		if err != nil {
			t.Fatal(err)
		}
		return td.Version
	}
	if err := e.svc.SendEmailCode(bgCtx, ag, id, version(), "email_code"); err != nil {
		t.Fatal(err)
	}
	var code string
	for _, n := range e.deliver(t) {
		if m := regexp.MustCompile(`code is (\d{6})`).FindStringSubmatch(n.Body); m != nil {
			code = m[1]
		}
	}
	if ok, err := e.svc.CheckEmailCode(bgCtx, ag, id, version(), "email_code", code); err != nil || !ok {
		t.Fatalf("email code: %v %v", ok, err)
	}
	for key, answer := range map[string]string{"knowledge_last_deposit": "1234.50 EUR", "knowledge_signup_country": "Germany"} {
		if ok, err := e.svc.CheckKnowledge(bgCtx, ag, id, version(), key, answer); err != nil || !ok {
			t.Fatalf("knowledge %s: %v %v", key, ok, err)
		}
	}
	if err := e.svc.RequestReset(bgCtx, ag, id, version(), "identity verified by e-mail code and knowledge"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Approve(bgCtx, sup, id, version(), e.clock.Now().Add(-time.Minute), "checked"); err != nil {
		t.Fatal(err)
	}
	veto = tokenIn(t, e.deliver(t), `/veto/([A-Za-z0-9_-]+)`)
	if !execute {
		return veto, ""
	}
	e.clock.Add(recovery.CoolingOff + time.Minute)
	if err := e.svc.Execute(bgCtx, sup, id, version(), e.clock.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	return veto, tokenIn(t, e.deliver(t), `/reenroll/([A-Za-z0-9_-]+)`)
}

// deliver hands every due e-mail to the test, as the mail dispatcher would.
func (e *env) deliver(t testing.TB) []recovery.Notice {
	t.Helper()
	var got []recovery.Notice
	for {
		n, err := e.svc.DispatchDue(bgCtx, recovery.NoticeEmail, 100, func(_ context.Context, n recovery.Notice) error {
			got = append(got, n)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return got
		}
	}
}

func tokenIn(t testing.TB, ns []recovery.Notice, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for _, n := range ns {
		if m := re.FindStringSubmatch(n.Body); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no link matching %s among %d notices", pattern, len(ns))
	return ""
}
