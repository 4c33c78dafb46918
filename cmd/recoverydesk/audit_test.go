package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// auditDB is a database with an audit chain of auditEvents events, on one dialect.
type auditDB struct {
	env map[string]string
	dsn string
	// tamper runs raw SQL with the append-only triggers dropped.
	tamper func(t *testing.T, queries ...string)
}

const auditEvents = 12

// dialects are the databases the audit tests run on; PostgreSQL only when
// RECOVERYDESK_TEST_POSTGRES is set (storetest.Postgres skips otherwise).
var dialects = []struct {
	name string
	open func(t *testing.T) auditDB
}{
	{"sqlite", func(t *testing.T) auditDB {
		env := testEnv(t)
		dsn := env["RECOVERYDESK_DB"]
		return auditDB{env: env, dsn: dsn, tamper: func(t *testing.T, qs ...string) {
			t.Helper()
			storetest.DropAuditGuards(t, dsn)
			for _, q := range qs {
				storetest.Exec(t, dsn, q)
			}
		}}
	}},
	{"postgres", func(t *testing.T) auditDB {
		_, dsn := storetest.Postgres(t)
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		env := map[string]string{
			"RECOVERYDESK_DB":        dsn,
			"RECOVERYDESK_KEYS":      "k1:" + keyMaterial,
			"RECOVERYDESK_AUDIT_KEY": base64.StdEncoding.EncodeToString(seed),
		}
		return auditDB{env: env, dsn: dsn, tamper: func(t *testing.T, qs ...string) {
			t.Helper()
			storetest.DropAuditGuards(t, dsn)
			for _, q := range qs {
				storetest.Exec(t, dsn, q)
			}
		}}
	}},
}

// newAuditDB makes a database with auditEvents events: API keys and accounts created through
// the service.
func newAuditDB(t *testing.T, open func(t *testing.T) auditDB) auditDB {
	t.Helper()
	db := open(t)
	svc := openService(t, db.env)
	addEvents(t, svc, "a", auditEvents)
	return db
}

func addEvents(t *testing.T, svc *recovery.Service, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	actor := recovery.Actor{Type: recovery.ActorAPIKey, ID: "test", RequestID: "req-1"}
	for i := range n {
		var err error
		if i%3 == 0 {
			_, _, err = svc.CreateAPIKey(ctx, cliActor, fmt.Sprintf("%s-key-%d", prefix, i))
		} else {
			email := fmt.Sprintf("%s-%d@example.com", prefix, i)
			_, _, err = svc.UpsertAccount(ctx, actor, fmt.Sprintf("%s-%d", prefix, i), recovery.AccountInput{Email: &email})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// verifyFails runs audit verify and checks that it fails with want in its message.
func verifyFails(t *testing.T, env map[string]string, want string, args ...string) {
	t.Helper()
	out, _, err := runCmd(t, env, append([]string{"audit", "verify"}, args...)...)
	if err == nil {
		t.Fatalf("audit verify passed:\n%s", out)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("audit verify: %q, want %q", err, want)
	}
	if _, ok := err.(usageError); ok {
		t.Error("a broken chain is reported as a usage error")
	}
}

var okRE = regexp.MustCompile(`(?m)^ok: (\d+) events?, head ([0-9a-f]{64})$`)

func verifyOK(t *testing.T, env map[string]string, events int, args ...string) string {
	t.Helper()
	out := mustRun(t, env, append([]string{"audit", "verify"}, args...)...)
	m := okRE.FindStringSubmatch(out)
	if m == nil || m[1] != fmt.Sprint(events) {
		t.Fatalf("audit verify output, want %d events:\n%s", events, out)
	}
	return m[2]
}

// export writes the chain and its checkpoint into a new directory and returns the file paths.
func export(t *testing.T, env map[string]string) (jsonl, checkpoint, vkey string) {
	t.Helper()
	jsonl = filepath.Join(t.TempDir(), "audit.jsonl")
	out := mustRun(t, env, "audit", "export", "--out", jsonl)
	m := regexp.MustCompile(`(?m)^Verifier key: (recoverydesk-audit\+[0-9a-f]{8}\+\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no verifier key in:\n%s", out)
	}
	return jsonl, jsonl + ".checkpoint", m[1]
}

func TestAuditVerifyAndExport(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db := newAuditDB(t, d.open)
			head := verifyOK(t, db.env, auditEvents)

			jsonl, cp, vkey := export(t, db.env)
			for _, f := range []string{jsonl, cp} {
				if m := fileMode(t, f); m != 0o600 {
					t.Errorf("%s has mode %04o", f, m)
				}
			}
			// The JSONL re-verifies on its own, line by line.
			data, err := os.ReadFile(jsonl)
			if err != nil {
				t.Fatal(err)
			}
			v := recovery.NewChainVerifier()
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				e, err := recovery.ParseEventJSONL(sc.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if !v.Add(e) {
					t.Fatalf("exported line %d does not verify: %s", e.Seq, v.Report().Problem)
				}
			}
			if r := v.Report(); r.Count != auditEvents || r.Head != head {
				t.Errorf("JSONL chain: %d events head %s; want %d, %s", r.Count, r.Head, auditEvents, head)
			}
			// The checkpoint is a signed note with count and head.
			note, _ := os.ReadFile(cp)
			if want := fmt.Sprintf("recoverydesk audit\n%d\n%s\n\n— recoverydesk-audit ", auditEvents, head); !strings.HasPrefix(string(note), want) {
				t.Errorf("checkpoint:\n%s", note)
			}

			// With the checkpoint: by the configured audit key, and by the printed verifier key alone.
			out := mustRun(t, db.env, "audit", "verify", "--checkpoint", cp)
			if !strings.Contains(out, fmt.Sprintf("checkpoint ok: the chain still holds the %d events of %s (0 added since)", auditEvents, cp)) {
				t.Errorf("verify --checkpoint:\n%s", out)
			}
			noKey := with(db.env, "RECOVERYDESK_AUDIT_KEY", "", "RECOVERYDESK_KEYS", "")
			restore := map[string][]byte{}
			if d.name == "sqlite" {
				for _, name := range []string{auditKeyFile, masterKeyFile} {
					path := filepath.Join(filepath.Dir(db.dsn), name)
					restore[path], _ = os.ReadFile(path)
					os.Remove(path)
				}
			}
			verifyOK(t, noKey, auditEvents, "--checkpoint", cp, "--verifier-key", vkey)
			verifyFails(t, noKey, "no audit key to check the checkpoint with", "--checkpoint", cp)
			for path, data := range restore {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("audit verify created %s", path)
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			// The chain grows: the old checkpoint still holds.
			addEvents(t, openService(t, db.env), "b", 2)
			verifyOK(t, db.env, auditEvents+2, "--checkpoint", cp, "--verifier-key", vkey)

			// Export to stdout: JSONL only on stdout; the signed checkpoint and the messages on
			// stderr. The checkpoint as printed verifies.
			stdout, stderr, err := runCmd(t, db.env, "audit", "export")
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(stdout, "\n"); n != auditEvents+2 || !strings.HasPrefix(stdout, `{"action":`) {
				t.Errorf("stdout export has %d lines:\n%s", n, stdout)
			}
			m := regexp.MustCompile(`(?s)Checkpoint \(keep it off this machine\):\n(recoverydesk audit\n.*?\n— recoverydesk-audit \S+\n)` +
				`.*?(?m:^Verifier key: (\S+)$)`).FindStringSubmatch(stderr)
			if m == nil || m[2] != vkey {
				t.Fatalf("stdout export: no checkpoint by %s on stderr:\n%s", vkey, stderr)
			}
			printed := filepath.Join(t.TempDir(), "printed.checkpoint")
			if err := os.WriteFile(printed, []byte(m[1]), 0o600); err != nil {
				t.Fatal(err)
			}
			out = mustRun(t, noKey, "audit", "verify", "--checkpoint", printed, "--verifier-key", vkey)
			if !strings.Contains(out, fmt.Sprintf("checkpoint ok: the chain still holds the %d events", auditEvents+2)) {
				t.Errorf("verify with the printed checkpoint:\n%s", out)
			}
		})
	}
}

func TestAuditTamper(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Run("edited row", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				db.tamper(t, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 5")
				verifyFails(t, db.env, "audit chain broken at seq 5: hash does not match the event's content (edited row); the 4 events before it verified")
			})
			t.Run("edited details", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				db.tamper(t, `UPDATE audit_events SET details = '{"name":"x"}' WHERE seq = 7`)
				verifyFails(t, db.env, "audit chain broken at seq 7: hash does not match")
			})
			t.Run("deleted middle row", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				db.tamper(t, "DELETE FROM audit_events WHERE seq = 6")
				verifyFails(t, db.env, "audit chain broken at seq 6: expected seq 6, found seq 7 (missing, inserted or reordered rows)")
			})
			t.Run("reordered rows", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				db.tamper(t,
					"UPDATE audit_events SET seq = 1000 WHERE seq = 4",
					"UPDATE audit_events SET seq = 4 WHERE seq = 5",
					"UPDATE audit_events SET seq = 5 WHERE seq = 1000")
				verifyFails(t, db.env, "audit chain broken at seq 4: prev_hash does not match the hash of seq 3")
			})
			t.Run("swapped contents", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				db.tamper(t,
					"UPDATE audit_events SET target_id = 'a-8' WHERE seq = 8 AND target_id = 'a-7'",
					"UPDATE audit_events SET target_id = 'a-7' WHERE seq = 9 AND target_id = 'a-8'")
				verifyFails(t, db.env, "audit chain broken at seq 8: hash does not match")
			})
			t.Run("truncated tail", func(t *testing.T) {
				db := newAuditDB(t, d.open)
				_, cp, vkey := export(t, db.env)
				db.tamper(t, fmt.Sprintf("DELETE FROM audit_events WHERE seq > %d", auditEvents-3))
				verifyOK(t, db.env, auditEvents-3) // the rest of the chain is intact
				verifyFails(t, db.env, fmt.Sprintf("chain has %d events but the checkpoint recorded %d: the tail was truncated", auditEvents-3, auditEvents),
					"--checkpoint", cp)
				verifyFails(t, db.env, "the tail was truncated", "--checkpoint", cp, "--verifier-key", vkey)
			})
			t.Run("rewritten tail", func(t *testing.T) {
				// The tail is cut and new events appended: as long as before, consistent, but not the same.
				db := newAuditDB(t, d.open)
				_, cp, _ := export(t, db.env)
				db.tamper(t, fmt.Sprintf("DELETE FROM audit_events WHERE seq > %d", auditEvents-2))
				addEvents(t, openService(t, db.env), "c", 3)
				verifyOK(t, db.env, auditEvents+1)
				verifyFails(t, db.env, fmt.Sprintf("seq %d does not carry the checkpoint's head hash: the chain was rewritten", auditEvents), "--checkpoint", cp)
			})
			t.Run("rewritten history with recomputed hashes", func(t *testing.T) {
				// An attacker who edits a row and recomputes every later hash passes a plain verify;
				// the checkpoint kept elsewhere catches it.
				db := newAuditDB(t, d.open)
				jsonl, cp, _ := export(t, db.env)
				data, _ := os.ReadFile(jsonl)
				var evs []recovery.Event
				for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
					e, err := recovery.ParseEventJSONL(line)
					if err != nil {
						t.Fatal(err)
					}
					evs = append(evs, e)
				}
				evs[4].Reason = "rewritten"
				var qs []string
				for i := 4; i < len(evs); i++ {
					evs[i].PrevHash = evs[i-1].Hash
					h, err := evs[i].ComputeHash()
					if err != nil {
						t.Fatal(err)
					}
					evs[i].Hash = h
					qs = append(qs, fmt.Sprintf("UPDATE audit_events SET reason = '%s', prev_hash = '%s', hash = '%s' WHERE seq = %d",
						evs[i].Reason, evs[i].PrevHash, evs[i].Hash, evs[i].Seq))
				}
				db.tamper(t, qs...)
				verifyOK(t, db.env, auditEvents)
				verifyFails(t, db.env, fmt.Sprintf("seq %d does not carry the checkpoint's head hash: the chain was rewritten", auditEvents), "--checkpoint", cp)
			})
		})
	}
}

func TestAuditCheckpointRefused(t *testing.T) {
	db := newAuditDB(t, dialects[0].open)
	_, cp, vkey := export(t, db.env)
	valid, _ := os.ReadFile(cp)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherVkey, _ := auditVerifierKey(other)
	head := verifyOK(t, db.env, auditEvents)
	forged, _, err := signCheckpoint(other, recovery.Checkpoint{Count: auditEvents, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(valid, []byte(fmt.Sprintf("\n%d\n", auditEvents)), []byte(fmt.Sprintf("\n%d\n", auditEvents-1)), 1)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"signed by another key", []string{"--checkpoint", write("forged", forged)}, "not signed by the audit key " + vkey},
		{"altered text", []string{"--checkpoint", write("altered", altered)}, "the signature does not verify: the checkpoint was altered or forged"},
		{"other verifier key", []string{"--checkpoint", cp, "--verifier-key", otherVkey}, "not signed by the audit key " + otherVkey},
		{"malformed verifier key", []string{"--checkpoint", cp, "--verifier-key", "nonsense"}, `the verifier key is malformed`},
		{"not a note", []string{"--checkpoint", write("garbage", []byte("hello\n"))}, "not a signed checkpoint"},
		{"missing file", []string{"--checkpoint", filepath.Join(dir, "absent")}, "read checkpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { verifyFails(t, db.env, c.want, c.args...) })
	}
	// A private key passed as the verifier key by mistake is never printed back.
	seed := "PRIVATE+KEY+recoverydesk-audit+00000000+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"
	_, errOut, err := runCmd(t, db.env, "audit", "verify", "--checkpoint", cp, "--verifier-key", seed)
	if err == nil || strings.Contains(err.Error()+errOut, "AQIDBAUGBwgJ") {
		t.Errorf("a private key given as --verifier-key: err %v, stderr %q", err, errOut)
	}
	// The forged checkpoint is accepted by its own key only: the refusal is about the key.
	verifyOK(t, db.env, auditEvents, "--checkpoint", filepath.Join(dir, "forged"), "--verifier-key", otherVkey)
}

func TestAuditMissingDatabase(t *testing.T) {
	env := testEnv(t)
	_, _, err := runCmd(t, env, "audit", "verify")
	if err == nil || !strings.HasPrefix(err.Error(), "no database at "+env["RECOVERYDESK_DB"]) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(env["RECOVERYDESK_DB"]); err == nil {
		t.Error("audit verify created the database")
	}
	// An empty chain verifies.
	mustRun(t, env, "migrate")
	if out := mustRun(t, env, "audit", "verify"); out != "ok: 0 events, head "+recovery.ZeroHash+"\n" {
		t.Errorf("empty chain: %q", out)
	}
}

// TestAuditREADMEScript runs the README's Python verifier on a real export, so that the README's
// account of the canonical form stays true (including a display name with characters that JSON
// encoders treat differently).
func TestAuditREADMEScript(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not found: under CI=true the README's verifier script must run (.ci/run installs python3)")
		}
		t.Skip("python3 not found")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no python block")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "verify.py")
	if err := os.WriteFile(script, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	db := newAuditDB(t, dialects[0].open)
	svc := openService(t, db.env)
	name := "Bjørn <Ærø> & \"Co\" \u2028\u2029 \U0001F600 \\ /"
	email := "bjorn@example.com"
	if _, _, err := svc.UpsertAccount(context.Background(), recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}, "bjorn",
		recovery.AccountInput{Email: &email, DisplayName: &name}); err != nil {
		t.Fatal(err)
	}
	jsonl, _, _ := export(t, db.env)
	head := verifyOK(t, db.env, auditEvents+1)
	out, err := exec.Command(python, script, jsonl).CombinedOutput()
	if err != nil || string(out) != fmt.Sprintf("ok: %d events, head %s\n", auditEvents+1, head) {
		t.Fatalf("README script: %v\n%s", err, out)
	}
	// And it catches an edit.
	data, _ := os.ReadFile(jsonl)
	edited := filepath.Join(dir, "edited.jsonl")
	os.WriteFile(edited, bytes.Replace(data, []byte(`"seq":3,`), []byte(`"seq":3,"x":1,`), 1), 0o600)
	if out, err := exec.Command(python, script, edited).CombinedOutput(); err == nil || !strings.Contains(string(out), "audit chain broken at seq 3") {
		t.Errorf("README script on an edited export: %v %s", err, out)
	}
}
