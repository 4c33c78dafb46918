package main

import (
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartupErrorsOneLine runs the real binary with configurations that cannot start. Each
// exits non-zero and ends stderr with one line "recoverydesk: …" that is its only line that is
// not the JSON log: no stack trace, no panic, and never the secret it was given.
func TestStartupErrorsOneLine(t *testing.T) {
	bin := rdtestBinary(t)
	// A key whose value the output must never show: 16 bytes where 32 are needed.
	shortKey := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		want   string // in the last line
		secret string // must appear nowhere
	}{
		{"unreachable postgres", map[string]string{
			"RECOVERYDESK_DB":        "postgres://root:hunter2pass@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
			"RECOVERYDESK_KEYS":      "k1:" + keyMaterial,
			"RECOVERYDESK_AUDIT_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		}, []string{"serve"}, "open database postgres://root:xxxxx@127.0.0.1:1/x", "hunter2pass"},
		{"malformed keys", map[string]string{"RECOVERYDESK_KEYS": "k1:" + shortKey}, []string{"serve"},
			"RECOVERYDESK_KEYS: ", shortKey},
		{"malformed audit key", map[string]string{"RECOVERYDESK_AUDIT_KEY": shortKey}, []string{"serve"},
			"RECOVERYDESK_AUDIT_KEY: is 16 bytes", shortKey},
		{"bad address", map[string]string{"RECOVERYDESK_ADDR": "127.0.0.1:99999"}, []string{"serve"},
			"RECOVERYDESK_ADDR: \"127.0.0.1:99999\" has no valid port", ""},
		{"address that cannot be bound", map[string]string{"RECOVERYDESK_ADDR": "192.0.2.1:0"}, []string{"serve"},
			"listen on 192.0.2.1:0: ", ""},
		{"unknown flag", nil, []string{"serve", "--no-such-flag"}, "serve: unknown flag -no-such-flag", ""},
		{"malformed trusted proxies", map[string]string{"RECOVERYDESK_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33"}, []string{"serve"},
			"RECOVERYDESK_TRUSTED_PROXIES: entry 2", ""},
		{"missing policy file", map[string]string{"RECOVERYDESK_POLICY_FILE": "/nonexistent/policy.json"}, []string{"serve"},
			"RECOVERYDESK_POLICY_FILE: cannot read /nonexistent/policy.json", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"RECOVERYDESK_DB": filepath.Join(dir, "rd.db"), "RECOVERYDESK_ADDR": "127.0.0.1:0"}
			for k, v := range c.env {
				env[k] = v
			}
			p := startProc(t, bin, dir, env, false, c.args...)
			err, ok := p.Wait(30 * time.Second)
			if !ok {
				t.Fatalf("still running after 30 s\nstdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
			}
			if _, isExit := err.(*exec.ExitError); !isExit {
				t.Fatalf("exit: %v, want a non-zero status\nstdout:\n%s\nstderr:\n%s", err, p.Stdout, p.Stderr)
			}
			stderr := strings.TrimRight(p.Stderr.String(), "\n")
			lines := strings.Split(stderr, "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "recoverydesk: ") || !strings.Contains(last, c.want) {
				t.Errorf("last stderr line %q, want recoverydesk: … %q", last, c.want)
			}
			for _, l := range lines[:len(lines)-1] {
				if !json.Valid([]byte(l)) {
					t.Errorf("stderr line that is neither the log nor the error: %q", l)
				}
			}
			all := p.Stdout.String() + p.Stderr.String()
			for _, bad := range []string{"goroutine", "panic"} {
				if strings.Contains(all, bad) {
					t.Errorf("output contains %q:\n%s", bad, all)
				}
			}
			if c.secret != "" && strings.Contains(all, c.secret) {
				t.Errorf("output shows the secret:\n%s", all)
			}
		})
	}
}
