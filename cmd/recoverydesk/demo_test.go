package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// demoAgentLine is one printed agent: role, e-mail, password and a base32 secret.
var demoAgentLine = regexp.MustCompile(`(?m)^\s+(admin|supervisor|agent)\s+(\S+@demo\.recoverydesk\.test)\s+(\S+)\s+([A-Z2-7]{32})\s*$`)

func TestDemoCommand(t *testing.T) {
	env := testEnv(t)
	out := mustRun(t, env, "demo")
	agents := demoAgentLine.FindAllStringSubmatch(out, -1)
	if len(agents) != 5 {
		t.Fatalf("printed %d agents:\n%s", len(agents), out)
	}
	for _, w := range []string{"open", "pending_approval", "cooling_off", "frozen", "oathtool --totp -b", "never seed a real desk"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// The printed credentials sign in and the printed secret gives a code the desk accepts.
	svc := openService(t, env)
	ctx := context.Background()
	for _, m := range agents {
		a, err := svc.AgentSignIn(ctx, cliActor, m[2], m[3])
		if err != nil {
			t.Fatalf("sign in as %s: %v", m[2], err)
		}
		code, _ := recovery.CodeAt(m[4], recovery.Step(time.Now()))
		if _, err := svc.AgentStepUp(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}, a.ID, code); err != nil {
			t.Fatalf("a code from the printed secret of %s: %v", m[2], err)
		}
	}
	verify := mustRun(t, env, "audit", "verify")
	again := mustRun(t, env, "demo")
	if !strings.Contains(again, "exists already") || demoAgentLine.MatchString(again) {
		t.Fatalf("second run:\n%s", again)
	}
	if v2 := mustRun(t, env, "audit", "verify"); v2 != verify {
		t.Fatalf("second run changed the chain:\n%s\n%s", verify, v2)
	}
	help := mustRun(t, env, "demo", "--help")
	if !strings.Contains(help, "Usage: recoverydesk demo") || !strings.Contains(help, "oathtool") {
		t.Fatalf("demo --help:\n%s", help)
	}
	if help := mustRun(t, env, "serve", "--help"); !strings.Contains(help, "--demo") {
		t.Fatalf("serve --help lacks --demo:\n%s", help)
	}
	if _, _, err := runCmd(t, env, "demo", "extra"); err == nil {
		t.Fatal("demo with an argument succeeded")
	}
}

func TestServeDemo(t *testing.T) {
	env := testEnv(t)
	s := startServer(t, env, "serve", "--demo")
	if out := s.stdout.String(); !strings.Contains(out, "Demo desk seeded") || len(demoAgentLine.FindAllString(out, -1)) != 5 {
		t.Fatalf("serve --demo printed:\n%s", out)
	}
	s.stop(t)
	s = startServer(t, env, "serve", "--demo")
	if out := s.stdout.String(); !strings.Contains(out, "exists already") {
		t.Fatalf("second serve --demo printed:\n%s", out)
	}
	s.stop(t)
}
