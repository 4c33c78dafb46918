package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

var setupLinkRE = regexp.MustCompile(`(?m)^(\S+/setup/([A-Za-z0-9_-]{22}))$`)

const cliPassword = "a long enough passphrase"

// TestAgentAdd creates an agent with the command and completes its setup with the printed link.
func TestAgentAdd(t *testing.T) {
	env := with(testEnv(t), "RECOVERYDESK_BASE_URL", "https://desk.example.com/")
	ctx := context.Background()
	start := time.Now()
	out := mustRun(t, env, "agent", "add", "--email", "Ann@Desk.example", "--name", "Ann Agent", "--role", "supervisor")
	m := setupLinkRE.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], "https://desk.example.com/setup/") {
		t.Fatalf("no setup link on the configured base URL in:\n%s", out)
	}
	exp := regexp.MustCompile(`expires (\S+)\)`).FindStringSubmatch(out)
	if exp == nil {
		t.Fatalf("no expiry in:\n%s", out)
	}
	expires, err := time.Parse(time.RFC3339, exp[1])
	if err != nil || expires.Before(start.Add(24*time.Hour-time.Second)) || expires.After(time.Now().Add(24*time.Hour)) {
		t.Fatalf("expiry %s is not 24 h from now (%v)", exp[1], err)
	}
	if !strings.Contains(out, "Created supervisor Ann Agent <Ann@Desk.example> (id agt_") {
		t.Errorf("output does not name the agent:\n%s", out)
	}

	svc := openService(t, env)
	tok := m[2]
	a, err := svc.SetupLink(ctx, tok)
	if err != nil || a.Email != "Ann@Desk.example" || a.Role != recovery.RoleSupervisor || a.PasswordSet {
		t.Fatalf("SetupLink = %+v, %v", a, err)
	}
	if _, err := svc.CompleteSetup(ctx, tok, cliPassword); err != nil {
		t.Fatalf("CompleteSetup with the printed link: %v", err)
	}
	if _, err := svc.CompleteSetup(ctx, tok, cliPassword); !errors.Is(err, recovery.ErrNotFound) {
		t.Fatalf("the link worked twice: %v", err)
	}
	got, err := svc.AgentSignIn(ctx, recovery.Actor{}, "ann@desk.example", cliPassword)
	if err != nil || got.ID != a.ID {
		t.Fatalf("sign-in after setup = %+v, %v", got, err)
	}

	// The same e-mail again, in another case, is refused.
	_, _, err = runCmd(t, env, "agent", "add", "--email", "ANN@desk.example", "--name", "Ann 2", "--role", "agent")
	if err == nil || !strings.Contains(err.Error(), "an agent with this e-mail exists already") || exitCode(err, io.Discard) != 1 {
		t.Fatalf("duplicate e-mail: %v", err)
	}
	agents, err := svc.Agents(ctx)
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents = %+v, %v", agents, err)
	}
	// The audit names the command line as the creator and holds no token.
	var buf bytes.Buffer
	if _, err := svc.ExportAudit(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"action":"agent.created","actor_id":"cli","actor_type":"system"`).Match(buf.Bytes()) {
		t.Errorf("no agent.created by the command line in the audit:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), cliPassword) {
		t.Error("the audit holds the setup token or the password")
	}
}

func TestAgentAddBadInput(t *testing.T) {
	env := testEnv(t)
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"agent"}, "agent: missing command: add", 2},
		{[]string{"agent", "remove"}, "agent: unknown command: use add", 2},
		{[]string{"agent", "add"}, "agent add: --email is required", 2},
		{[]string{"agent", "add", "--email", "a@b.example"}, "agent add: --name is required", 2},
		{[]string{"agent", "add", "--email", "a@b.example", "--name", "A"}, "agent add: --role is required: agent, supervisor or admin", 2},
		{[]string{"agent", "add", "--email", "a@b.example", "--name", "A", "--role", "root"}, "agent add: --role must be agent, supervisor or admin", 2},
		{[]string{"agent", "add", "--email", "a@b.example", "--name", "A", "--role", "agent", "extra"}, "agent add: unexpected argument #1 (it takes 0)", 2},
		{[]string{"agent", "add", "--mail", "a@b.example"}, "agent add: unknown flag -mail", 2},
		{[]string{"agent", "add", "--email", "not-an-email", "--name", "A", "--role", "agent"}, "agent add: email is not an e-mail address", 2},
		{[]string{"agent", "add", "--email", "a@b.example", "--name", "   ", "--role", "agent"}, "agent add: name is required", 2},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, _, err := runCmd(t, env, c.args...)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err = %v, want prefix %q", err, c.want)
			}
			if code := exitCode(err, io.Discard); code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			if out != "" {
				t.Errorf("stdout not empty: %s", out)
			}
		})
	}
	if _, err := os.Stat(env["RECOVERYDESK_DB"]); err == nil {
		t.Error("bad input created the database")
	}
	for _, args := range [][]string{{"agent", "--help"}, {"agent", "add", "--help"}, {"help", "agent", "add"}} {
		out := mustRun(t, env, args...)
		for _, want := range []string{"Usage: recoverydesk agent", "agent add", "--email", "--role"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
	}
	if out := mustRun(t, env, "agent", "add", "--help"); !strings.Contains(out, "24 hours") || !strings.Contains(out, "supervisor") {
		t.Errorf("agent add --help does not explain the link and the roles:\n%s", out)
	}
	if out := mustRun(t, env, "--help"); !strings.Contains(out, "agent add --email E --name N --role R") {
		t.Errorf("the command list lacks agent add:\n%s", out)
	}
}

var firstAdminRE = regexp.MustCompile(`No agents yet: create the first admin at (\S+/setup/([A-Za-z0-9_-]{22})) \(one use, expires \S+; a restart replaces this link\)\.\n`)

// TestAnnounceFirstAdmin starts serve on an empty database twice (each start prints a new
// first-admin link and kills the last), creates the admin with the second link, and starts once
// more: no link then.
func TestAnnounceFirstAdmin(t *testing.T) {
	env := testEnv(t)
	ctx := context.Background()
	srv := startServer(t, env)
	m1 := firstAdminRE.FindStringSubmatch(srv.stdout.String())
	if m1 == nil || !strings.HasPrefix(m1[1], srv.base+"/setup/") {
		t.Fatalf("no first-admin link on %s in:\n%s", srv.base, srv.stdout.String())
	}
	if strings.Contains(srv.stderr.String(), m1[2]) {
		t.Error("the first-admin token is in the log")
	}
	srv.stop(t)
	srv = startServer(t, env)
	m2 := firstAdminRE.FindStringSubmatch(srv.stdout.String())
	if m2 == nil || m2[2] == m1[2] {
		t.Fatalf("the restart printed no new link:\n%s", srv.stdout.String())
	}
	srv.stop(t)

	svc := openService(t, env)
	if _, err := svc.SetupLink(ctx, m1[2]); !errors.Is(err, recovery.ErrNotFound) {
		t.Fatalf("the first start's link still works: %v", err)
	}
	admin, err := svc.CompleteFirstAdmin(ctx, m2[2], "root@desk.example", "Root", cliPassword)
	if err != nil || admin.Role != recovery.RoleAdmin {
		t.Fatalf("CompleteFirstAdmin = %+v, %v", admin, err)
	}

	srv = startServer(t, env)
	if strings.Contains(srv.stdout.String(), "first admin") {
		t.Errorf("a link was printed with an admin present:\n%s", srv.stdout.String())
	}
	srv.stop(t)
}
