package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// syncBuffer is an io.Writer safe for the server goroutine and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls buf until re matches and returns the submatches.
func waitFor(t *testing.T, buf *syncBuffer, re *regexp.Regexp, done <-chan error) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before %q appeared: %v\noutput:\n%s", re, err, buf.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%q did not appear within 30 s; output:\n%s", re, buf.String())
	return nil
}

// testEnv is the environment of a fresh installation in a temporary directory.
func testEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	return map[string]string{
		"RECOVERYDESK_DB":   filepath.Join(dir, "rd.db"),
		"RECOVERYDESK_ADDR": "127.0.0.1:0",
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// runCmd runs the program in-process to completion.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = run(ctx, append([]string{"recoverydesk"}, args...), getenv(env), &out, &errb)
	return out.String(), errb.String(), err
}

// mustRun runs the program and fails the test on an error.
func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, err := runCmd(t, env, args...)
	if err != nil {
		t.Fatalf("recoverydesk %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// openService opens the test database as the program would (same configuration and keys).
func openService(t *testing.T, env map[string]string) *recovery.Service {
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
	t.Cleanup(func() { o.store.Close() })
	return o.svc
}

func openStore(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{Migrate: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func httpGet(t *testing.T, url, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var listeningRE = regexp.MustCompile(`RecoveryDesk listening on (http://\S+)`)

// server is the program serving in the background of a test.
type server struct {
	base           string // http://127.0.0.1:port
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// startServer runs the program with env until stop is called or the test ends.
func startServer(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, append([]string{"recoverydesk"}, args...), getenv(env), s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
		}
	})
	s.base = waitFor(t, s.stdout, listeningRE, s.done)[1]
	return s
}

// stop cancels the program's context and checks that it returns nil promptly, saying so.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run after cancel: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of cancel")
	}
	if !strings.Contains(s.stderr.String(), `"msg":"shut down"`) {
		t.Errorf("log lacks shut down:\n%s", s.stderr.String())
	}
	s.done <- nil // for the cleanup
}

// TestServe starts the program on a fresh directory, talks to it, adds an API key with the CLI
// while it runs, and stops it by cancelling its context.
func TestServe(t *testing.T) {
	env := testEnv(t)
	srv := startServer(t, env)
	base, stdout, stderr := srv.base, srv.stdout, srv.stderr

	dir := filepath.Dir(env["RECOVERYDESK_DB"])
	for _, name := range []string{masterKeyFile, auditKeyFile} {
		if m := fileMode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, m)
		}
	}
	keyFile, _ := os.ReadFile(filepath.Join(dir, masterKeyFile))
	if _, err := recovery.ParseKeys(strings.TrimSpace(string(keyFile))); err != nil || !strings.HasPrefix(string(keyFile), "k1:") {
		t.Errorf("key file does not hold one k1 key: %v", err)
	}
	if !strings.Contains(stdout.String(), "Created master key file "+filepath.Join(dir, masterKeyFile)) {
		t.Errorf("stdout does not announce the new key file:\n%s", stdout.String())
	}
	for _, line := range []string{`"msg":"listening"`, `"msg":"telegram bot disabled: RECOVERYDESK_TELEGRAM_TOKEN is not set"`} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, stderr.String())
		}
	}
	if strings.Contains(stderr.String()+stdout.String(), strings.TrimSpace(strings.TrimPrefix(string(keyFile), "k1:"))) {
		t.Error("the master key appears in the output")
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpGet(t, base+path, ""); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
	// The test clock's control exists only in a binary built with -tags rdtest.
	if code := httpGet(t, base+"/test/clock", ""); code != http.StatusNotFound {
		t.Errorf("GET /test/clock on a production build = %d, want 404", code)
	}

	// A key added with the CLI while the server runs authenticates against the server.
	out := mustRun(t, env, "apikey", "add", "--name", "host")
	key := regexp.MustCompile(`(?m)^rdk_\S+$`).FindString(out)
	if key == "" {
		t.Fatalf("no key in apikey add output:\n%s", out)
	}
	if code := httpGet(t, base+"/api/v1/accounts/nobody/2fa", key); code != http.StatusNotFound {
		t.Errorf("GET with the new key = %d, want 404 (authenticated, no such account)", code)
	}
	if code := httpGet(t, base+"/api/v1/accounts/nobody/2fa", key+"x"); code != http.StatusUnauthorized {
		t.Errorf("GET with a wrong key = %d, want 401", code)
	}

	srv.stop(t)

	// A second start reuses the key files and says nothing about creating them.
	stdout2, _, err := runCmd(t, env, "migrate")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout2, "Created") {
		t.Errorf("second start created a key file again:\n%s", stdout2)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, masterKeyFile)); !bytes.Equal(again, keyFile) {
		t.Error("the key file changed on the second start")
	}
}

// TestProcessSIGTERM builds the production binary and stops it with a real SIGTERM.
func TestProcessSIGTERM(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds the binary (runs without -short, and always under CI=true)")
	}
	dir := t.TempDir()
	bin, err := goBuild(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	// RECOVERYDESK_DB: the default, in dir.
	p := startProc(t, bin, dir, map[string]string{"RECOVERYDESK_ADDR": "127.0.0.1:0"}, true, "serve")
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpGet(t, p.Base+path, ""); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
	// The test clock's control exists only in a binary built with -tags rdtest.
	if code := httpGet(t, p.Base+"/test/clock", ""); code != http.StatusNotFound {
		t.Errorf("GET /test/clock on a production build = %d, want 404", code)
	}
	for _, name := range []string{"recoverydesk.db", masterKeyFile, auditKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("default path: %v", err)
		}
	}
	p.Stop(t) // SIGTERM; fails unless it exits cleanly within 20 s
	if !strings.Contains(p.Stderr.String(), `"msg":"shut down"`) {
		t.Errorf("log lacks shut down:\n%s", p.Stderr)
	}
}

// TestExitCodes maps errors to process statuses.
func TestExitCodes(t *testing.T) {
	var b bytes.Buffer
	if c := exitCode(nil, &b); c != 0 || b.Len() != 0 {
		t.Errorf("nil: %d %q", c, b.String())
	}
	if c := exitCode(usagef("serve", "bad"), &b); c != 2 {
		t.Errorf("usage error: %d", c)
	}
	if c := exitCode(errors.New("boom"), &b); c != 1 || !strings.Contains(b.String(), "recoverydesk: boom") {
		t.Errorf("error: %d %q", c, b.String())
	}
}

// TestServePostgres serves from a fresh PostgreSQL database with the keys from the environment.
func TestServePostgres(t *testing.T) {
	_, dsn := storetest.Postgres(t)
	seed := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	env := map[string]string{"RECOVERYDESK_DB": dsn, "RECOVERYDESK_ADDR": "127.0.0.1:0",
		"RECOVERYDESK_KEYS": "k1:" + keyMaterial, "RECOVERYDESK_AUDIT_KEY": seed}
	srv := startServer(t, env)
	if !strings.Contains(srv.stderr.String(), `"dialect":"postgres"`) || strings.Contains(srv.stdout.String(), "Created") {
		t.Errorf("start on PostgreSQL:\n%s\n%s", srv.stdout.String(), srv.stderr.String())
	}
	if code := httpGet(t, srv.base+"/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz = %d", code)
	}
	key := regexp.MustCompile(`(?m)^rdk_\S+$`).FindString(mustRun(t, env, "apikey", "add", "--name", "host"))
	if code := httpGet(t, srv.base+"/api/v1/accounts/nobody/2fa", key); code != http.StatusNotFound {
		t.Errorf("GET with the new key = %d, want 404", code)
	}
	srv.stop(t)
	verifyOK(t, env, 2) // the first admin's setup link and the API key
}

// TestServeSettings: a set metrics token is never shown; the base URL follows the flag; a busy
// address is one clear error.
func TestServeSettings(t *testing.T) {
	env := with(testEnv(t), "RECOVERYDESK_METRICS_TOKEN", "metrics-token-value",
		"RECOVERYDESK_MAIL_FROM", "desk@example.com", "RECOVERYDESK_TRUSTED_PROXIES", "10.0.0.0/8")
	srv := startServer(t, env, "--base-url", "https://2fa.example.com")
	log := srv.stderr.String()
	if !strings.Contains(log, `"msg":"outbox dispatchers started","email":"files in `) ||
		!strings.Contains(log, `"base_url":"https://2fa.example.com"`) ||
		!strings.Contains(srv.stdout.String(), "Public URL (used in links): https://2fa.example.com\n") {
		t.Errorf("start with these settings:\n%s\n%s", srv.stdout.String(), log)
	}
	if strings.Contains(log+srv.stdout.String(), "metrics-token-value") {
		t.Error("the metrics token appears in the output")
	}
	// A second server on the same address fails with one line.
	addr := strings.TrimPrefix(srv.base, "http://")
	_, _, err := runCmd(t, with(env, "RECOVERYDESK_ADDR", addr), "serve")
	if err == nil || !strings.HasPrefix(err.Error(), "listen on "+addr+": ") {
		t.Errorf("busy address: %v", err)
	}
	srv.stop(t)
}
