package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/console"
	"github.com/recoverydesk/recoverydesk/recovery"
)

func rank(role string) int {
	switch role {
	case recovery.RoleAgent:
		return 1
	case recovery.RoleSupervisor:
		return 2
	case recovery.RoleAdmin:
		return 3
	}
	return 0
}

// TestConsoleRoleRouteMatrix sends every console route as anonymous, agent, supervisor and
// admin: anonymous GETs go to sign-in and other methods get 401; a role below the route's gets
// 403; a role at or above it passes the gate (whatever the action then answers).
func TestConsoleRoleRouteMatrix(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	sup := e.addAgent(t, admin, "sup@example.com", "Sup", recovery.RoleSupervisor)
	ag := e.addAgent(t, admin, "agent@example.com", "Agent", recovery.RoleAgent)
	ticket := e.openTicket(t, ag, "acct-matrix")

	table := console.ConsoleRouteTable(console.Options{Service: e.svc})
	if len(table) < 10 {
		t.Fatalf("the route table has %d rows", len(table))
	}
	who := map[string]*agentBrowser{"": e.agentBrowser(t)}
	for _, a := range []consoleAgent{ag, sup, admin} {
		b := e.agentBrowser(t)
		b.signIn(t, a)
		who[a.Role] = b
	}
	for _, r := range table {
		path := strings.NewReplacer(":id", ticket, ":key", "x", ":token", "x").Replace(r.Path)
		for _, role := range []string{"", recovery.RoleAgent, recovery.RoleSupervisor, recovery.RoleAdmin} {
			var p agentPage
			if r.Method == http.MethodGet {
				p = who[role].get(t, path)
			} else {
				p = who[role].do(t, r.Method, path, url.Values{"version": {"999"}}, nil)
			}
			switch {
			case role == "" && r.Method == http.MethodGet:
				if p.status != http.StatusSeeOther || p.location != "/console/signin" {
					t.Errorf("anonymous %s %s: %d %q", r.Method, r.Path, p.status, p.location)
				}
			case role == "":
				if p.status != http.StatusUnauthorized {
					t.Errorf("anonymous %s %s: %d", r.Method, r.Path, p.status)
				}
			case rank(role) < rank(r.MinRole):
				if p.status != http.StatusForbidden {
					t.Errorf("%s %s %s: %d, want 403", role, r.Method, r.Path, p.status)
				}
			default:
				if p.status == http.StatusForbidden || p.status == http.StatusUnauthorized || p.location == "/console/signin" {
					t.Errorf("%s %s %s: %d %q, want past the gate", role, r.Method, r.Path, p.status, p.location)
				}
			}
		}
	}
}

// auditHead is the newest event's sequence number.
func auditHead(t *testing.T, e *env) int64 {
	t.Helper()
	pg, err := e.svc.AuditLog(context.Background(), recovery.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Events) == 0 {
		return 0
	}
	return pg.Events[0].Seq
}

func TestConsoleGETChangesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	ticket := e.openTicket(t, admin, "acct-get")
	b := e.agentBrowser(t)
	b.signIn(t, admin)
	before := auditHead(t, e)
	d0, _ := e.svc.TicketDetail(context.Background(), ticket)
	for _, r := range console.ConsoleRouteTable(console.Options{Service: e.svc}) {
		if r.Method != http.MethodGet {
			continue
		}
		path := strings.NewReplacer(":id", ticket, ":key", "x", ":token", "x").Replace(r.Path)
		b.get(t, path)
	}
	for _, p := range []string{"/console/signin", "/console/enroll", "/console/signin/totp"} {
		b.get(t, p)
	}
	if after := auditHead(t, e); after != before {
		t.Fatalf("GETs appended audit events: %d → %d", before, after)
	}
	d1, _ := e.svc.TicketDetail(context.Background(), ticket)
	if d1.Version != d0.Version || d1.AssigneeID != d0.AssigneeID {
		t.Fatal("GETs changed the ticket")
	}
}

func TestConsoleCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.firstAdmin(t, "admin@example.com")
	ticket := e.openTicket(t, admin, "acct-xo")
	b := e.agentBrowser(t)
	b.signIn(t, admin)
	d0, _ := e.svc.TicketDetail(context.Background(), ticket)
	before := auditHead(t, e)
	form := url.Values{"version": {"1"}, "body": {"hello"}}
	for _, path := range []string{"/console/tickets/" + ticket + "/assign", "/console/tickets/" + ticket + "/reply", "/console/signout"} {
		p := b.do(t, http.MethodPost, path, form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		if p.status != http.StatusForbidden {
			t.Fatalf("cross-origin POST %s: %d", path, p.status)
		}
	}
	d1, _ := e.svc.TicketDetail(context.Background(), ticket)
	if d1.Version != d0.Version || d1.AssigneeID != "" || len(d1.Messages) != len(d0.Messages) || auditHead(t, e) != before {
		t.Fatal("a cross-origin POST changed something")
	}
	// The same POST from our own origin works.
	if p := b.do(t, http.MethodPost, "/console/tickets/"+ticket+"/assign", form, map[string]string{"Sec-Fetch-Site": "same-origin"}); p.status != http.StatusSeeOther {
		t.Fatalf("same-origin assign: %d %s", p.status, p.body)
	}
	if p := b.get(t, "/console"); p.status != http.StatusOK {
		t.Fatal("the session did not survive")
	}
}
