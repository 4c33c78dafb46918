package console_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// demoDesk is a console over the seeded demo desk, with a signed-in browser per demo agent.
type demoDesk struct {
	e        *env
	res      recovery.DemoResult
	browsers map[string]*agentBrowser // by role: admin, supervisor, agent
	ids      map[string]string        // agent id by role
}

func newDemoDesk(t *testing.T) *demoDesk {
	t.Helper()
	s := sqliteStore(t)
	e := newEnv(t, envOptions{store: s})
	res, err := recovery.SeedDemo(context.Background(), s, recovery.Options{Now: e.clock.Now, Keys: testKeyring(t), BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	d := &demoDesk{e: e, res: res, browsers: map[string]*agentBrowser{}, ids: map[string]string{}}
	for _, a := range res.Agents {
		if _, ok := d.browsers[a.Role]; ok {
			continue
		}
		b := e.agentBrowser(t)
		p := b.post(t, "/console/signin", url.Values{"email": {a.Email}, "password": {a.Password}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("password step of %s: %d %s", a.Email, p.status, p.body)
		}
		if p = b.post(t, "/console/signin/totp", url.Values{"code": {codeAt(t, a.Secret, e.clock.Now(), 0)}}); p.status != http.StatusSeeOther {
			t.Fatalf("TOTP step of %s: %d %s", a.Email, p.status, p.body)
		}
		ag, err := e.svc.Agents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ag {
			if x.Email == a.Email {
				d.ids[a.Role] = x.ID
			}
		}
		d.browsers[a.Role] = b
	}
	return d
}

var linkToken = regexp.MustCompile(`/(veto|reenroll|setup)/[A-Za-z0-9_-]{16,}`)

// noSecrets fails if the page shows a demo password, a TOTP secret, a stored fact or a live
// link token.
func (d *demoDesk) noSecrets(t *testing.T, path, body string) {
	t.Helper()
	for _, a := range d.res.Agents {
		if strings.Contains(body, a.Secret) || strings.Contains(body, a.Password) {
			t.Errorf("%s shows %s's secret or password", path, a.Email)
		}
	}
	for _, c := range d.res.Customers {
		if (c.Secret != "" && strings.Contains(body, c.Secret)) || (c.Password != "" && strings.Contains(body, c.Password)) {
			t.Errorf("%s shows customer %s's secret or password", path, c.ID)
		}
	}
	for _, w := range []string{" EUR", "$argon2", "otpauth://"} {
		if strings.Contains(body, w) {
			t.Errorf("%s shows %q", path, w)
		}
	}
	if m := linkToken.FindString(body); m != "" {
		t.Errorf("%s shows a link token: %s", path, m)
	}
}

func TestConsole2RoleMatrix(t *testing.T) {
	d := newDemoDesk(t)
	pages := []struct {
		path    string
		minRole string
	}{
		{"/console/approvals", recovery.RoleSupervisor},
		{"/console/accounts?q=demo-mia", recovery.RoleAgent},
		{"/console/audit", recovery.RoleSupervisor},
		{"/console/audit/export.jsonl", recovery.RoleSupervisor},
		{"/console/audit/export.csv", recovery.RoleSupervisor},
		{"/console/outbox", recovery.RoleAgent},
		{"/console/dashboard", recovery.RoleAgent},
		{"/console/agents", recovery.RoleAdmin},
	}
	rank := map[string]int{recovery.RoleAgent: 1, recovery.RoleSupervisor: 2, recovery.RoleAdmin: 3}
	for _, p := range pages {
		for role, b := range d.browsers {
			got := b.get(t, p.path)
			want := http.StatusOK
			if rank[role] < rank[p.minRole] {
				want = http.StatusForbidden
			}
			if got.status != want {
				t.Errorf("%s as %s: %d, want %d", p.path, role, got.status, want)
			}
			if want == http.StatusOK && !strings.HasSuffix(p.path, ".jsonl") && !strings.HasSuffix(p.path, ".csv") {
				if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || got.header.Get("Cache-Control") != "no-store" ||
					!strings.Contains(got.header.Get("Content-Security-Policy"), "script-src 'self'") {
					t.Errorf("%s headers: %v", p.path, got.header)
				}
			}
			if got.status == http.StatusOK {
				d.noSecrets(t, p.path, got.body)
			}
		}
		// Without a session: GET goes to sign-in.
		anon := d.e.agentBrowser(t).get(t, p.path)
		if anon.status != http.StatusSeeOther || anon.location != "/console/signin" {
			t.Errorf("%s without a session: %d %q", p.path, anon.status, anon.location)
		}
	}
	// Admin POSTs: an agent and a supervisor are refused and nothing changes.
	target := d.ids[recovery.RoleAgent]
	for _, role := range []string{recovery.RoleAgent, recovery.RoleSupervisor} {
		if p := d.browsers[role].post(t, "/console/agents/"+target+"/disable", nil); p.status != http.StatusForbidden {
			t.Errorf("disable as %s: %d", role, p.status)
		}
	}
	if a, _ := d.e.svc.Agent(context.Background(), target); a.Disabled {
		t.Fatal("a refused disable disabled the agent")
	}
}

func TestConsole2Pages(t *testing.T) {
	d := newDemoDesk(t)
	sup, admin := d.browsers[recovery.RoleSupervisor], d.browsers[recovery.RoleAdmin]
	ctx := context.Background()

	// Approvals: the two pending demo tickets, oldest first.
	p := sup.get(t, "/console/approvals")
	pending, _ := d.e.svc.PendingApprovals(ctx, 10)
	if len(pending) < 2 {
		t.Fatalf("demo has %d pending tickets", len(pending))
	}
	i0, i1 := strings.Index(p.body, pending[0].ID), strings.Index(p.body, pending[1].ID)
	if i0 < 0 || i1 < 0 || i0 > i1 {
		t.Fatalf("approvals inbox lacks or misorders %s, %s", pending[0].ID, pending[1].ID)
	}

	// Account lookup: masked contact data, 2FA state, the timeline in words.
	var mia recovery.DemoCustomer
	for _, c := range d.res.Customers {
		if c.ID == "demo-mia" {
			mia = c
		}
	}
	p = d.browsers[recovery.RoleAgent].get(t, "/console/accounts?q="+url.QueryEscape(strings.ToUpper(mia.Email)))
	if p.status != http.StatusOK || strings.Contains(p.body, mia.Email) || !strings.Contains(p.body, recovery.MaskEmail(mia.Email)) ||
		!strings.Contains(p.body, "Two-factor authentication turned on") || !strings.Contains(p.body, ">active<") {
		t.Fatalf("lookup of mia: %d\n%s", p.status, p.body)
	}
	if p = sup.get(t, "/console/accounts?q=nobody%40example.com"); p.status != http.StatusNotFound {
		t.Fatalf("unknown account: %d", p.status)
	}

	// Audit log: filter, keyset paging, verify status.
	p = sup.get(t, "/console/audit?action=ticket.approved")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Chain verified") {
		t.Fatalf("audit page: %d", p.status)
	}
	if n := strings.Count(p.body, "<td>ticket.approved</td>"); n == 0 || strings.Contains(p.body, "<td>ticket.opened</td>") {
		t.Fatalf("action filter: %d approved rows, or other actions shown", n)
	}
	next := regexp.MustCompile(`href="(/console/audit\?[^"]*before=\d+[^"]*)" id="older"`)
	p = sup.get(t, "/console/audit")
	m := next.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("first audit page has no link to older events")
	}
	older := sup.get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
	firstSeq := regexp.MustCompile(`<tr>\s*<td>(\d+)</td>`)
	a, b := firstSeq.FindStringSubmatch(p.body), firstSeq.FindStringSubmatch(older.body)
	if a == nil || b == nil || a[1] == b[1] {
		t.Fatalf("paging did not move: %v %v", a, b)
	}
	if p = sup.get(t, "/console/audit?from=yesterday"); p.status != http.StatusBadRequest {
		t.Fatalf("bad time filter: %d", p.status)
	}

	// JSONL export: the chain's own lines, which verify as a chain.
	p = sup.get(t, "/console/audit/export.jsonl")
	if p.status != http.StatusOK || !strings.Contains(p.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("jsonl export: %d %v", p.status, p.header)
	}
	v := recovery.NewChainVerifier()
	sc := bufio.NewScanner(strings.NewReader(p.body))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		e, err := recovery.ParseEventJSONL(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !v.Add(e) {
			t.Fatalf("exported chain breaks: %+v", v.Report())
		}
		lines++
	}
	rep, _ := d.e.svc.VerifyAudit(ctx, nil)
	if int64(lines) < rep.Count-20 || lines == 0 {
		t.Fatalf("jsonl export has %d of %d events", lines, rep.Count)
	}
	d.noSecrets(t, "export.jsonl", p.body)
	// CSV export with a filter: the header and one row per matching event.
	p = sup.get(t, "/console/audit/export.csv?action=ticket.")
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil || len(rows) < 2 || rows[0][0] != "seq" || rows[0][4] != "action" {
		t.Fatalf("csv: %v %v", err, rows[:min(len(rows), 2)])
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[4], "ticket.") {
			t.Fatalf("csv row outside the filter: %v", r)
		}
	}

	// Outbox: masked bodies only.
	p = d.browsers[recovery.RoleAgent].get(t, "/console/outbox?channel=email")
	if p.status != http.StatusOK || !strings.Contains(p.body, recovery.MaskMark) || !strings.Contains(p.body, "veto request") {
		t.Fatalf("outbox: %d", p.status)
	}
	if p = sup.get(t, "/console/outbox?state=bogus"); p.status != http.StatusBadRequest {
		t.Fatalf("bad outbox filter: %d", p.status)
	}

	// Dashboard: SVG charts with bars, no script.
	p = d.browsers[recovery.RoleAgent].get(t, "/console/dashboard")
	if p.status != http.StatusOK || strings.Count(p.body, "<svg") != 4 || strings.Count(p.body, "<rect") < 20 || strings.Contains(p.body, "<script") {
		t.Fatalf("dashboard: %d, %d svg, %d rect", p.status, strings.Count(p.body, "<svg"), strings.Count(p.body, "<rect"))
	}
	// Category labels sit under the baseline of their chart, not at its top.
	if n, m := strings.Count(p.body, `class="label"`), strings.Count(p.body, `class="label" x=`); n == 0 || n != m ||
		strings.Contains(p.body, `class="label" x="0" y=""`) || regexp.MustCompile(`class="label" x="\d+" y=""`).MatchString(p.body) {
		t.Fatal("dashboard labels have no baseline")
	}

	// Agents admin: add shows the setup link once.
	p = admin.post(t, "/console/agents", url.Values{"email": {"new@desk.test"}, "name": {"New Agent"}, "role": {"agent"}})
	link := regexp.MustCompile(`/setup/[A-Za-z0-9_-]{16,}`).FindString(p.body)
	if p.status != http.StatusCreated || link == "" {
		t.Fatalf("add agent: %d", p.status)
	}
	if again := admin.get(t, "/console/agents"); strings.Contains(again.body, link) {
		t.Fatal("the setup link is shown again")
	}
	if _, err := d.e.svc.SetupLink(ctx, tokenOf(link)); err != nil {
		t.Fatalf("the shown setup link does not work: %v", err)
	}
	if p = admin.post(t, "/console/agents", url.Values{"email": {"NEW@desk.test"}, "name": {"Twin"}, "role": {"agent"}}); p.status != http.StatusConflict {
		t.Fatalf("duplicate e-mail: %d", p.status)
	}
	// Role change, disable, enable, 2FA reset and a new link, on another agent.
	target := d.ids[recovery.RoleAgent]
	steps := []struct {
		path  string
		form  url.Values
		check func(recovery.Agent) bool
	}{
		{"/role", url.Values{"role": {"supervisor"}}, func(a recovery.Agent) bool { return a.Role == recovery.RoleSupervisor }},
		{"/disable", nil, func(a recovery.Agent) bool { return a.Disabled }},
		{"/enable", nil, func(a recovery.Agent) bool { return !a.Disabled }},
		{"/reset-2fa", nil, func(a recovery.Agent) bool { return true }},
	}
	for _, s := range steps {
		if p := admin.post(t, "/console/agents/"+target+s.path, s.form); p.status != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", s.path, p.status, p.body)
		}
		if a, _ := d.e.svc.Agent(ctx, target); !s.check(a) {
			t.Fatalf("%s did not take: %+v", s.path, a)
		}
	}
	if st, _ := d.e.svc.AgentTwoFactorStatus(ctx, target); st.State == recovery.StateActive {
		t.Fatal("2FA still active after the reset")
	}
	if p = admin.post(t, "/console/agents/"+target+"/setup-link", nil); p.status != http.StatusOK || !strings.Contains(p.body, "/setup/") {
		t.Fatalf("new setup link: %d", p.status)
	}
	// An admin never acts on themselves.
	me := d.ids[recovery.RoleAdmin]
	if p = admin.post(t, "/console/agents/"+me+"/disable", nil); p.status != http.StatusForbidden || !strings.Contains(p.body, "own account") {
		t.Fatalf("self-disable: %d", p.status)
	}
	// A cross-origin POST is refused and changes nothing.
	p = admin.do(t, http.MethodPost, "/console/agents/"+target+"/disable", url.Values{}, map[string]string{
		"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if a, _ := d.e.svc.Agent(ctx, target); p.status != http.StatusForbidden || a.Disabled {
		t.Fatalf("cross-origin disable: %d, disabled %v", p.status, a.Disabled)
	}
}

// User-controlled text (a display name, a reason) is rendered inert on the secondary pages.
func TestConsole2EscapesUserText(t *testing.T) {
	d := newDemoDesk(t)
	ctx := context.Background()
	evil := "<script>alert(1)</script>\u202egnp.exe"
	name := evil
	if _, _, err := d.e.svc.UpsertAccount(ctx, recovery.Actor{Type: recovery.ActorAPIKey, ID: "t"}, "demo-mia", recovery.AccountInput{DisplayName: &name}); err != nil {
		t.Fatal(err)
	}
	p := d.browsers[recovery.RoleAgent].get(t, "/console/accounts?q=demo-mia")
	if strings.Contains(p.body, "<script>alert") || !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("display name not escaped:\n%s", p.body)
	}
	pending, _ := d.e.svc.PendingApprovals(ctx, 1)
	if err := d.e.svc.Reject(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: d.ids[recovery.RoleAgent]}, pending[0].ID, pending[0].Version, evil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/audit?action=ticket.rejected", "/console/accounts?q=" + pending[0].AccountID} {
		p = d.browsers[recovery.RoleSupervisor].get(t, path)
		if p.status != http.StatusOK || strings.Contains(p.body, "<script>alert") || !strings.Contains(p.body, "&lt;script&gt;") {
			t.Fatalf("%s: reason not escaped (%d)", path, p.status)
		}
	}
	// A reason that a spreadsheet would evaluate is defused in the CSV.
	formula := "=HYPERLINK(\"http://evil.example\")"
	pending, _ = d.e.svc.PendingApprovals(ctx, 1)
	if err := d.e.svc.Reject(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: d.ids[recovery.RoleAgent]}, pending[0].ID, pending[0].Version, formula); err != nil {
		t.Fatal(err)
	}
	p = d.browsers[recovery.RoleSupervisor].get(t, "/console/audit/export.csv?action=ticket.rejected")
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows[1:] {
		if strings.Contains(r[8], "HYPERLINK") {
			found = true
			if !strings.HasPrefix(r[8], "'=") {
				t.Fatalf("formula not defused: %q", r[8])
			}
		}
	}
	if !found {
		t.Fatal("the rejection is not in the CSV")
	}
}
