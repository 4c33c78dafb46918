package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const agentPassword = "correct horse battery staple"

// consoleAgent is an agent with a password and an active TOTP enrollment.
type consoleAgent struct {
	recovery.Agent
	secret string
}

func sysActor() recovery.Actor { return recovery.Actor{Type: recovery.ActorSystem, ID: "test"} }

func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// firstAdmin creates the first admin through the first-admin link and enrolls their TOTP.
func (e *env) firstAdmin(t testing.TB, email string) consoleAgent {
	t.Helper()
	ctx := context.Background()
	link, _, err := e.svc.IssueFirstAdminLink(ctx, sysActor())
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.CompleteFirstAdmin(ctx, tokenOf(link), email, "Admin "+email, agentPassword)
	if err != nil {
		t.Fatal(err)
	}
	return e.enrollAgent(t, a)
}

// addAgent creates an agent of role (by admin), sets the password and enrolls their TOTP.
func (e *env) addAgent(t testing.TB, admin consoleAgent, email, name, role string) consoleAgent {
	t.Helper()
	ctx := context.Background()
	a, link, err := e.svc.CreateAgent(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: admin.ID}, email, name, role)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = e.svc.CompleteSetup(ctx, tokenOf(link), agentPassword); err != nil {
		t.Fatal(err)
	}
	return e.enrollAgent(t, a)
}

func (e *env) enrollAgent(t testing.TB, a recovery.Agent) consoleAgent {
	t.Helper()
	ctx := context.Background()
	actor := recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}
	en, err := e.svc.AgentBeginEnrollment(ctx, actor, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AgentConfirmEnrollment(ctx, actor, a.ID, codeAt(t, en.Secret, e.clock.Now(), 0)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(30 * time.Second) // the confirmation consumed this step
	return consoleAgent{Agent: a, secret: en.Secret}
}

// agentBrowser is an HTTP client with a cookie jar that does not follow redirects.
type agentBrowser struct {
	e      *env
	client *http.Client
}

func (e *env) agentBrowser(t testing.TB) *agentBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agentBrowser{e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type agentPage struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *agentBrowser) do(t testing.TB, method, path string, form url.Values, header map[string]string) agentPage {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := b.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return agentPage{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(raw), header: resp.Header}
}

func (b *agentBrowser) get(t testing.TB, path string) agentPage {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil, nil)
}

func (b *agentBrowser) post(t testing.TB, path string, form url.Values) agentPage {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return b.do(t, http.MethodPost, path, form, nil)
}

// session is the browser's current console session cookie ("" if none).
func (b *agentBrowser) session(t testing.TB) string {
	t.Helper()
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "rd_console" {
			return c.Value
		}
	}
	return ""
}

// signIn walks the password and TOTP steps and fails the test unless both succeed.
func (b *agentBrowser) signIn(t testing.TB, a consoleAgent) {
	t.Helper()
	p := b.post(t, "/console/signin", url.Values{"email": {a.Email}, "password": {agentPassword}})
	if p.status != http.StatusSeeOther || p.location != "/console/signin/totp" {
		t.Fatalf("password step: %d %q %s", p.status, p.location, p.body)
	}
	p = b.post(t, "/console/signin/totp", url.Values{"code": {codeAt(t, a.secret, b.e.clock.Now(), 0)}})
	if p.status != http.StatusSeeOther || p.location != "/console" {
		t.Fatalf("TOTP step: %d %q %s", p.status, p.location, p.body)
	}
	b.e.clock.Add(30 * time.Second) // the sign-in consumed this step
}

// openTicket opens a console ticket for a new account and returns its id.
func (e *env) openTicket(t testing.TB, by consoleAgent, accountID string) string {
	t.Helper()
	e.createAccount(t, accountID)
	op, err := e.svc.OpenTicket(context.Background(), recovery.Actor{Type: recovery.ActorAgent, ID: by.ID},
		recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: accountID, Message: "I lost my phone"})
	if err != nil {
		t.Fatal(err)
	}
	return op.TicketID
}
