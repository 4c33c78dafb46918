package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"
)

// backedUpRE is backup's report: the file, its size and the chain at the moment of the copy.
var backedUpRE = regexp.MustCompile(`Backed up \S+ to (\S+) \((\d+) bytes, schema version \d+, mode 0600\): (\d+) events?, head ([0-9a-f]{64})\.`)

// bkFiles lists the names in dir.
func bkFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestBackupWhileServing: the backup command, as its own process, copies the database of a
// server process while HTTP clients write through it. The copy passes integrity_check and
// audit verify, ends exactly where backup said, and the writes went on during the copy.
func TestBackupWhileServing(t *testing.T) {
	bin := rdtestBinary(t)
	dir := t.TempDir()
	env := map[string]string{"RECOVERYDESK_DB": filepath.Join(dir, "rd.db"), "RECOVERYDESK_ADDR": "127.0.0.1:0"}
	key := regexp.MustCompile(`(?m)^rdk_\S+$`).FindString(mustRun(t, env, "apikey", "add", "--name", "host"))
	p := startProc(t, bin, dir, env, true, "serve")

	// Four clients upsert accounts (each upsert is a write with an audit event) until told to stop.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"email":"u%d-%d@example.com"}`, c, i)
				req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/api/v1/accounts/u%d-%d", p.Base, c, i), strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("PUT account: %d", resp.StatusCode)
					return
				}
				written.Add(1)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for written.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	before := written.Load()
	cmd := exec.Command(bin, "backup", backup)
	cmd.Env = procEnv(map[string]string{"RECOVERYDESK_DB": env["RECOVERYDESK_DB"]})
	out, err := cmd.CombinedOutput()
	after := written.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	m := backedUpRE.FindStringSubmatch(string(out))
	if m == nil || m[1] != backup {
		t.Fatalf("backup output:\n%s", out)
	}
	if after == before {
		t.Fatalf("no write committed while the backup ran (%d before and after): the test proved nothing", before)
	}
	if mode := fileMode(t, backup); mode != 0o600 {
		t.Errorf("backup mode %o", mode)
	}
	if !strings.Contains(string(out), "does not hold the master key") {
		t.Errorf("backup does not say the key is not in it:\n%s", out)
	}
	var ok string
	if err := bkSQLite(t, backup).QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	benv := map[string]string{"RECOVERYDESK_DB": backup}
	if head := verifyOK(t, benv, atoi(t, m[3])); head != m[4] {
		t.Errorf("the backup's head %s, backup said %s", head, m[4])
	}
	p.Stop(t)
	// The live chain went on past the backup, and is intact.
	if live := okRE.FindStringSubmatch(mustRun(t, env, "audit", "verify")); live == nil || atoi(t, live[1]) <= atoi(t, m[3]) {
		t.Errorf("live chain %v is not longer than the backup's %s events", live, m[3])
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupRefuses: an existing file, PostgreSQL, a missing database, a missing argument.
func TestBackupRefuses(t *testing.T) {
	env := testEnv(t)
	mustRun(t, env, "migrate")
	dir := filepath.Dir(env["RECOVERYDESK_DB"])
	existing := filepath.Join(dir, "existing.db")
	os.WriteFile(existing, []byte("keep"), 0o600)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"existing file", env, []string{"backup", existing}, "already exists: a backup never overwrites a file"},
		{"postgres", with(env, "RECOVERYDESK_DB", "postgres://root@127.0.0.1:1/x?sslmode=disable"), []string{"backup", filepath.Join(dir, "pg.db")}, "pg_dump"},
		{"no database", with(env, "RECOVERYDESK_DB", filepath.Join(dir, "none.db")), []string{"backup", filepath.Join(dir, "b.db")}, "no database at"},
		{"no file", env, []string{"backup"}, "backup: missing FILE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCmd(t, c.env, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line with %q", err, c.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("backup changed an existing file")
	}
	for _, n := range bkFiles(t, dir) {
		if n != "rd.db" && n != "existing.db" && n != masterKeyFile && !strings.HasPrefix(n, "rd.db-") {
			t.Errorf("left behind: %s", n)
		}
	}
	out := mustRun(t, env, "backup", "--help")
	for _, w := range []string{"VACUUM INTO", "NOT the keys", "recoverydesk.key", "pg_dump", "never overwrites"} {
		if !strings.Contains(out, w) {
			t.Errorf("backup --help lacks %q", w)
		}
	}
	if out := mustRun(t, env, "--help"); !strings.Contains(out, "backup FILE") || !strings.Contains(out, "restore FILE | --finish") {
		t.Errorf("--help lacks backup or restore:\n%s", out)
	}
}

// bkSQLite opens the SQLite file at path read-only with database/sql, closed at cleanup.
func bkSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
