package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// bkOpen opens the service on env's database as the program does. Close it before a restore:
// restore refuses a database another connection has open.
func bkOpen(t *testing.T, env map[string]string) (*recovery.Service, func()) {
	t.Helper()
	cfg, err := loadConfig(getenv(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{getenv: getenv(env), stdout: io.Discard, stderr: io.Discard, overlay: map[string]string{}, log: discardLogger()}
	o, err := a.open(context.Background(), cfg, openOpts{migrate: true, keys: keyCreate})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	closeFn := func() {
		if !closed {
			closed = true
			if err := o.store.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(closeFn)
	return o.svc, closeFn
}

var bkAPI = recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}

const bkPassword = "correct horse battery staple"

// bkCode is the TOTP code of secret at step.
func bkCode(t *testing.T, secret string, step int64) string {
	t.Helper()
	c, err := recovery.CodeAt(secret, step)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bkReenrollHash is how the domain stores a re-enrollment token (recovery's hashToken): the
// test writes the row an executed reset leaves, with a token it knows.
func bkReenrollHash(token string) string {
	h := sha256.Sum256([]byte("recoverydesk/token/v1\x00reenroll\x00" + token))
	return hex.EncodeToString(h[:])
}

var checkpointRE = regexp.MustCompile(`(?m)^Checkpoint \((\d+) events, head ([0-9a-f]{64})\) written to (\S+)\.$`)
var vkeyRE = regexp.MustCompile(`(?m)^Verifier key: (recoverydesk-audit\+[0-9a-f]{8}\+\S+)$`)

// TestRestore: a SQLite desk is backed up; afterwards a code is consumed and a checkpoint
// exported. restore FILE brings the backup back, and its last step makes the code a refused
// replay, ends the sessions that existed, kills the re-enrollment link issued before the
// backup, and leaves a chain that verifies against the new checkpoint (and not the old one).
func TestRestore(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	dir := filepath.Dir(env["RECOVERYDESK_DB"])
	mustRun(t, env, "migrate")
	// carol's 2FA was reset: the rows an executed reset leaves, with a link token we know.
	storetest.Exec(t, env["RECOVERYDESK_DB"], "INSERT INTO accounts (id, email, email_key, created_at, updated_at) VALUES ('carol', 'carol@example.com', 'carol@example.com', 1, 1)")
	storetest.Exec(t, env["RECOVERYDESK_DB"], "INSERT INTO factors (account_id, state, updated_at) VALUES ('carol', 'reset', 1)")
	link := "bk-reenroll-token-0123456789"
	storetest.Exec(t, env["RECOVERYDESK_DB"], "INSERT INTO reenroll_tokens (hash, account_id, ticket_id, created_at, expires_at) VALUES (?, 'carol', 'T-1', 1, 9000000000000000000)", bkReenrollHash(link))

	svc, closeSvc := bkOpen(t, env)
	// alice enrolls; the confirmation consumes the current step.
	if _, _, err := svc.UpsertAccount(ctx, bkAPI, "alice", recovery.AccountInput{Email: ptrTo("alice@example.com"), Password: ptrTo(bkPassword)}); err != nil {
		t.Fatal(err)
	}
	en, err := svc.BeginEnrollment(ctx, bkAPI, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	step := recovery.Step(svc.Now())
	if _, err := svc.ConfirmEnrollment(ctx, bkAPI, "alice", bkCode(t, en.Secret, step)); err != nil {
		t.Fatal(err)
	}
	// An end-user session and an agent's console session.
	us, err := svc.AccountSignIn(ctx, bkAPI, "alice@example.com", bkPassword)
	if err != nil {
		t.Fatal(err)
	}
	agent, setupLink, err := svc.CreateAgent(ctx, cliActor, "ann@desk.example", "Ann", recovery.RoleSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompleteSetup(ctx, setupLink[strings.LastIndex(setupLink, "/")+1:], bkPassword); err != nil {
		t.Fatal(err)
	}
	as, _, err := svc.StartAgentSession(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: agent.ID}, agent.Email, bkPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	// The link works (opening an enrollment with it does not use it up).
	if _, err := svc.BeginEnrollment(ctx, bkAPI, "carol", link); err != nil {
		t.Fatalf("re-enrollment link before the backup: %v", err)
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	m := backedUpRE.FindStringSubmatch(mustRun(t, env, "backup", backup))
	if m == nil {
		t.Fatal("no backup line")
	}
	// After the backup: alice signs in with the next step's code, which the backup has not seen.
	used := bkCode(t, en.Secret, step+1)
	if _, err := svc.Verify(ctx, bkAPI, "alice", used); err != nil {
		t.Fatalf("verify after the backup: %v", err)
	}
	closeSvc()
	_, oldCheckpoint, oldKey := export(t, env)

	out := mustRun(t, env, "restore", backup)
	for _, w := range []string{
		"Checked " + backup + ": integrity ok, schema version",
		"audit chain ok (" + m[3] + " events, head " + m[4] + ")",
		"the database it replaced is kept as " + env["RECOVERYDESK_DB"] + ".before-restore-",
		"sessions ended: 1 agent, 1 end-user",
		"reenroll_link 1",
		"Checkpoints taken before this restore no longer match",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("restore output lacks %q:\n%s", w, out)
		}
	}
	cp := checkpointRE.FindStringSubmatch(out)
	vk := vkeyRE.FindStringSubmatch(out)
	if cp == nil || vk == nil || atoi(t, cp[1]) != atoi(t, m[3])+1 {
		t.Fatalf("no checkpoint of %s+1 events in:\n%s", m[3], out)
	}
	if mode := fileMode(t, env["RECOVERYDESK_DB"]); mode != 0o600 {
		t.Errorf("restored database mode %o", mode)
	}
	if mode := fileMode(t, cp[3]); mode != 0o600 {
		t.Errorf("checkpoint mode %o", mode)
	}
	var aside string
	for _, n := range bkFiles(t, dir) {
		if strings.HasPrefix(n, "rd.db.before-restore-") && !strings.HasSuffix(n, "-wal") && !strings.HasSuffix(n, "-shm") {
			aside = filepath.Join(dir, n)
		}
		if strings.HasPrefix(n, ".rd.db.restore-") {
			t.Errorf("temporary file left behind: %s", n)
		}
	}
	if aside == "" {
		t.Fatalf("the replaced database was not kept: %v", bkFiles(t, dir))
	}

	// The chain verifies against the new checkpoint; the one exported after the backup no
	// longer matches (the chain was rolled back to the backup).
	if v := mustRun(t, env, "audit", "verify", "--checkpoint", cp[3], "--verifier-key", vk[1]); !strings.Contains(v, "checkpoint ok") {
		t.Errorf("audit verify with the new checkpoint:\n%s", v)
	}
	verifyFails(t, env, "chain was rewritten", "--checkpoint", oldCheckpoint, "--verifier-key", oldKey)

	svc, _ = bkOpen(t, env)
	if _, err := svc.Verify(ctx, bkAPI, "alice", used); !errors.Is(err, recovery.ErrInvalidCode) {
		t.Errorf("the code consumed after the backup, after the restore: %v, want a refused replay", err)
	}
	if _, err := svc.UserSession(ctx, us.Token); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Errorf("end-user session after the restore: %v", err)
	}
	if _, _, err := svc.AgentSession(ctx, as); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Errorf("agent session after the restore: %v", err)
	}
	if _, err := svc.BeginEnrollment(ctx, bkAPI, "carol", link); !errors.Is(err, recovery.ErrRecoveryRequired) {
		t.Errorf("re-enrollment link after the restore: %v, want it refused", err)
	}
	// The database moved aside still holds what happened after the backup.
	benv := map[string]string{"RECOVERYDESK_DB": aside}
	if a := okRE.FindStringSubmatch(mustRun(t, benv, "audit", "verify")); a == nil || atoi(t, a[1]) <= atoi(t, m[3]) {
		t.Errorf("the kept database's chain %v is not the newer one", a)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestRestoreRefuses: a missing, corrupt or foreign file, a broken chain, a database a server
// has open, PostgreSQL without --finish and an existing checkpoint file each stop the restore
// with one line, and leave the database and its directory as they were.
func TestRestoreRefuses(t *testing.T) {
	env := testEnv(t)
	db := env["RECOVERYDESK_DB"]
	dir := filepath.Dir(db)
	mustRun(t, env, "apikey", "add", "--name", "host")
	src := t.TempDir()
	good := filepath.Join(src, "good.db")
	mustRun(t, env, "backup", good)
	write := func(name string, edit func([]byte) []byte) string {
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := write("corrupt.db", func(b []byte) []byte {
		for i := 4096; i < 3*4096; i++ {
			b[i] = 0xA5
		}
		return b
	})
	junk := write("junk.db", func([]byte) []byte { return []byte(strings.Repeat("junk", 2000)) })
	broken := write("broken.db", func(b []byte) []byte { return b })
	storetest.DropAuditGuards(t, broken)
	storetest.Exec(t, broken, "UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 1")
	existingCP := filepath.Join(src, "taken.checkpoint")
	os.WriteFile(existingCP, []byte("x"), 0o600)
	fresh := t.TempDir() // a new machine: no database, no key file
	before := bkFiles(t, dir)
	headBefore := verifyOK(t, env, 1)

	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"missing", env, []string{"restore", filepath.Join(src, "missing.db")}, "restore: no backup at " + filepath.Join(src, "missing.db")},
		{"corrupt", env, []string{"restore", corrupt}, "restore: " + corrupt + ": not a sound SQLite database"},
		{"not a database", env, []string{"restore", junk}, "restore: " + junk + ": not a sound SQLite database: file is not a database"},
		{"broken chain", env, []string{"restore", broken}, "restore: " + broken + ": the audit chain does not verify: broken at seq 1"},
		{"no master key", with(env, "RECOVERYDESK_DB", filepath.Join(fresh, "rd.db")), []string{"restore", good}, "restore: master key file " + filepath.Join(fresh, masterKeyFile) + " is missing: put back the key file"},
		{"no database to finish", with(env, "RECOVERYDESK_DB", filepath.Join(fresh, "rd.db")), []string{"restore", "--finish"}, "no database at"},
		{"postgres", with(env, "RECOVERYDESK_DB", "postgres://root@127.0.0.1:1/x?sslmode=disable"), []string{"restore", good}, "pg_restore"},
		{"checkpoint exists", env, []string{"restore", good, "--checkpoint-out", existingCP}, "already exists"},
		{"no argument", env, []string{"restore"}, "restore: missing FILE"},
		{"argument and --finish", env, []string{"restore", "--finish", good}, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCmd(t, c.env, c.args...)
			if err == nil || !strings.HasPrefix(err.Error(), "restore") || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v\nwant one line with %q", err, c.want)
			}
		})
	}
	if left := bkFiles(t, fresh); len(left) != 0 {
		t.Errorf("a refused restore created %v on the new machine", left)
	}
	// A server has the database open: restore and restore --finish refuse.
	srv := startServer(t, env)
	for _, args := range [][]string{{"restore", good}, {"restore", "--finish"}} {
		_, _, err := runCmd(t, env, args...)
		if err == nil || !strings.Contains(err.Error(), "is open in another process: stop every recoverydesk server") {
			t.Errorf("%v while serving: %v", args, err)
		}
	}
	srv.stop(t)

	after := bkFiles(t, dir)
	for _, n := range after {
		if strings.Contains(n, "restore") {
			t.Errorf("a refused restore left %s (before: %v)", n, before)
		}
	}
	// serve appended the first admin's setup link event; nothing else changed the chain.
	if head := verifyOK(t, env, 2); head == headBefore {
		t.Error("the chain did not grow by the server's event")
	}
	out := mustRun(t, env, "restore", "--help")
	for _, w := range []string{"--finish", "--checkpoint-out", "pg_restore", "before-restore", "current step + 1", "Not undone"} {
		if !strings.Contains(out, w) {
			t.Errorf("restore --help lacks %q", w)
		}
	}
}

// TestRestoreFinishPostgres: after pg_restore (here: the database as it is), restore --finish
// runs the last step on PostgreSQL and writes a checkpoint that audit verify accepts.
func TestRestoreFinishPostgres(t *testing.T) {
	_, dsn := storetest.Postgres(t)
	seed := "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
	env := map[string]string{"RECOVERYDESK_DB": dsn, "RECOVERYDESK_KEYS": "k1:" + keyMaterial, "RECOVERYDESK_AUDIT_KEY": seed}
	mustRun(t, env, "agent", "add", "--email", "ann@desk.example", "--name", "Ann", "--role", "admin")
	svc, closeSvc := bkOpen(t, env)
	if _, _, err := svc.UpsertAccount(context.Background(), bkAPI, "bob", recovery.AccountInput{Email: ptrTo("bob@example.com"), Password: ptrTo(bkPassword)}); err != nil {
		t.Fatal(err)
	}
	us, err := svc.AccountSignIn(context.Background(), bkAPI, "bob@example.com", bkPassword)
	if err != nil {
		t.Fatal(err)
	}
	closeSvc()
	cpFile := filepath.Join(t.TempDir(), "restore.checkpoint")
	out := mustRun(t, env, "restore", "--finish", "--checkpoint-out", cpFile)
	for _, w := range []string{"sessions ended: 0 agent, 1 end-user", "agent_setup_link 1", "written to " + cpFile} {
		if !strings.Contains(out, w) {
			t.Errorf("restore --finish output lacks %q:\n%s", w, out)
		}
	}
	vk := vkeyRE.FindStringSubmatch(out)
	if vk == nil {
		t.Fatalf("no verifier key:\n%s", out)
	}
	if v := mustRun(t, env, "audit", "verify", "--checkpoint", cpFile, "--verifier-key", vk[1]); !strings.Contains(v, "checkpoint ok") {
		t.Errorf("audit verify:\n%s", v)
	}
	svc, _ = bkOpen(t, env)
	if _, err := svc.UserSession(context.Background(), us.Token); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Errorf("session after restore --finish: %v", err)
	}
	if strings.Contains(out, keyMaterial) || strings.Contains(out, seed) || strings.Contains(out, "root@") {
		t.Error("restore --finish printed a key or the DSN")
	}
}
