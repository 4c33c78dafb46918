package main

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// runRefused runs a command that must fail at start; a serve that starts anyway is stopped
// after 10 s instead of the test waiting for runCmd's minute.
func runRefused(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = run(ctx, append([]string{"recoverydesk"}, args...), getenv(env), &out, &errb)
	return out.String(), errb.String(), err
}

// addSealedAccount stores an account with facts, which are sealed under the sealing key.
func addSealedAccount(t *testing.T, env map[string]string, id string) {
	t.Helper()
	email := id + "@example.com"
	_, _, err := openService(t, env).UpsertAccount(context.Background(), recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}, id,
		recovery.AccountInput{Email: &email, Facts: map[string]any{"city": "Oslo"}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMissingKeyFileStopsStart: once the database exists, a deleted master key file is never
// replaced by a new key; every command that needs the key stops with one line that names the
// file and the way out.
func TestMissingKeyFileStopsStart(t *testing.T) {
	env := testEnv(t)
	dir := filepath.Dir(env["RECOVERYDESK_DB"])
	keyPath := filepath.Join(dir, masterKeyFile)
	mustRun(t, env, "migrate")
	mustRun(t, env, "apikey", "add", "--name", "host")
	addSealedAccount(t, env, "alice")
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"serve"}, {"migrate"}, {"migrate", "--reseal"}, {"apikey", "add", "--name", "other"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := runRefused(t, env, args...)
			if err == nil {
				t.Fatalf("ran without its key file:\n%s", out)
			}
			want := "master key file " + keyPath + " is missing, but the database " + env["RECOVERYDESK_DB"] + " already exists: " +
				"restore the key file from a backup, or set RECOVERYDESK_KEYS"
			if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q\nwant one line starting %q", err, want)
			}
			if strings.Contains(out+errOut, "Created") || strings.Contains(out, "listening") {
				t.Errorf("output:\n%s%s", out, errOut)
			}
			if _, err := os.Stat(keyPath); err == nil {
				t.Fatal("a new master key file was written")
			}
		})
	}
	// Commands that open no sealed value still work, and create no key file either.
	if out := mustRun(t, env, "audit", "verify"); !okRE.MatchString(out) {
		t.Errorf("audit verify:\n%s", out)
	}
	if out := mustRun(t, env, "apikey", "list"); !strings.Contains(out, "host") {
		t.Errorf("apikey list:\n%s", out)
	}
	if _, err := os.Stat(keyPath); err == nil {
		t.Fatal("a read command wrote a master key file")
	}
	// The key restored, everything runs again and the data opens.
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "migrate")
	svc := openService(t, env)
	a, err := svc.Account(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := svc.AccountFacts(a); err != nil || f["city"] != "Oslo" {
		t.Errorf("facts after the key file was restored: %v %v", f, err)
	}

	// A database file that exists but is empty (touched, never opened) holds nothing to lose:
	// the first start creates the key file beside it.
	env2 := testEnv(t)
	if err := os.WriteFile(env2["RECOVERYDESK_DB"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, env2, "migrate"); !strings.Contains(out, "Created master key file") {
		t.Errorf("migrate on an empty database file:\n%s", out)
	}
}

// TestKeysLackSealingID: keys that lack the id of a stored sealed value stop serve, migrate and
// apikey add with a message naming the id and where the keys came from.
func TestKeysLackSealingID(t *testing.T) {
	oldKey, _ := recovery.NewKey()
	newKey, _ := recovery.NewKey()
	oldRing, newRing := recovery.FormatKey("old", oldKey), recovery.FormatKey("new", newKey)
	env := with(testEnv(t), "RECOVERYDESK_KEYS", oldRing)
	mustRun(t, env, "migrate")
	addSealedAccount(t, env, "alice")

	secrets := []string{strings.TrimPrefix(oldRing, "old:"), strings.TrimPrefix(newRing, "new:")}
	check := func(t *testing.T, err error, out, wantPrefix string) {
		t.Helper()
		if !errors.Is(err, recovery.ErrMissingKey) {
			t.Fatalf("err = %v, want ErrMissingKey\n%s", err, out)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, wantPrefix) || !regexp.MustCompile(`key id\(s\) old\b`).MatchString(msg) || strings.Contains(msg, "\n") {
			t.Errorf("err = %q, want one line starting %q naming key id old", msg, wantPrefix)
		}
		for _, s := range secrets {
			if strings.Contains(msg+out, s) {
				t.Error("key material in the output")
			}
		}
	}
	for _, args := range [][]string{{"serve"}, {"migrate"}, {"migrate", "--reseal"}, {"apikey", "add", "--name", "x"}} {
		t.Run("env "+strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := runRefused(t, with(env, "RECOVERYDESK_KEYS", newRing), args...)
			check(t, err, out+errOut, "RECOVERYDESK_KEYS: ")
			if !strings.Contains(err.Error(), "add them to RECOVERYDESK_KEYS") {
				t.Errorf("err = %q does not say where to add the key", err)
			}
		})
	}
	t.Run("flag", func(t *testing.T) {
		out, errOut, err := runRefused(t, with(env, "RECOVERYDESK_KEYS", ""), "serve", "--keys", newRing)
		check(t, err, out+errOut, "--keys: ")
	})
	t.Run("key file", func(t *testing.T) {
		keyPath := filepath.Join(filepath.Dir(env["RECOVERYDESK_DB"]), masterKeyFile)
		if err := os.WriteFile(keyPath, []byte(newRing+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runRefused(t, with(env, "RECOVERYDESK_KEYS", ""), "serve")
		check(t, err, out+errOut, "master key file "+keyPath+": ")
		if !strings.Contains(err.Error(), "restore the key file that holds them") {
			t.Errorf("err = %q", err)
		}
	})
	// With both keys everything runs.
	mustRun(t, with(env, "RECOVERYDESK_KEYS", newRing+","+oldRing), "migrate")
}

// TestRevokeNeverEchoesKey: a whole API key pasted where its id belongs is refused without
// being printed.
func TestRevokeNeverEchoesKey(t *testing.T) {
	env := testEnv(t)
	out := mustRun(t, env, "apikey", "add", "--name", "host")
	m := regexp.MustCompile(`(?m)^(rdk_([0-9a-f]{16})_(\S+))$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("apikey add:\n%s", out)
	}
	key, id, secret := m[1], m[2], m[3]
	for i, args := range [][]string{
		{"apikey", "revoke", key},
		{"apikey", "revoke", id, key},
		{"apikey", "revoke", key, "--db", env["RECOVERYDESK_DB"]},
		{"apikey", "revoke", secret},
		{"apikey", "revoke", id, secret},
	} {
		t.Run(fmt.Sprint("case ", i+1), func(t *testing.T) {
			stdout, stderr, err := runCmd(t, env, args...)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if strings.Contains(err.Error()+stdout+stderr, secret) {
				t.Errorf("the key's secret is printed: %q", err)
			}
			if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "rdk_") }) && !strings.Contains(err.Error(), "pass the key's id (16 hex characters, see 'apikey list'), not the key itself") {
				t.Errorf("err = %q", err)
			}
		})
	}
	if list := mustRun(t, env, "apikey", "list"); !regexp.MustCompile(`(?m)^` + id + `\s+host\s+\S+\s+-$`).MatchString(list) {
		t.Errorf("a refused revoke revoked the key:\n%s", list)
	}
}

// TestReadCommandsNeedDatabase: commands that do not set a database up refuse a path where there
// is none, and leave nothing behind (no database, no key file).
func TestReadCommandsNeedDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nowhere.db")
	env := map[string]string{"RECOVERYDESK_DB": db}
	for _, args := range [][]string{
		{"apikey", "list"},
		{"apikey", "revoke", "0123456789abcdef"},
		{"audit", "verify"},
		{"audit", "export"},
		{"audit", "export", "--out", filepath.Join(t.TempDir(), "a.jsonl")},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := runCmd(t, env, args...)
			if err == nil || !strings.HasPrefix(err.Error(), "no database at "+db+" (RECOVERYDESK_DB)") {
				t.Errorf("err = %v", err)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
	// The flag is named when it gave the path.
	if _, _, err := runCmd(t, nil, "apikey", "list", "--db", db); err == nil || !strings.Contains(err.Error(), "(--db)") {
		t.Errorf("err = %v", err)
	}
	// apikey list and revoke do not migrate either: a database left behind by a migrate works.
	env = testEnv(t)
	mustRun(t, env, "migrate")
	if out := mustRun(t, env, "apikey", "list"); !strings.Contains(out, "No API keys stored") {
		t.Errorf("apikey list: %s", out)
	}
}

func TestRedactDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"recoverydesk.db", "recoverydesk.db"},
		{"/var/lib/rd/my db.db", "/var/lib/rd/my db.db"},
		{"file:rd.db?cache=shared&_busy_timeout=5000", "file:rd.db?cache=shared&_busy_timeout=5000"},
		{"file:rd.db?_auth&_auth_user=admin&_auth_pass=s3cr3t", "file:rd.db?_auth&_auth_user=admin&_auth_pass=xxxxx"},
		{"postgres://root@127.0.0.1:5432/test?sslmode=disable", "postgres://root@127.0.0.1:5432/test?sslmode=disable"},
		{"postgres://root:s3cr3t@db:5432/rd?sslmode=require", "postgres://root:xxxxx@db:5432/rd?sslmode=require"},
		{"postgres://db/rd?user=rd&password=s3cr3t&sslmode=verify-full", "postgres://db/rd?user=rd&password=xxxxx&sslmode=verify-full"},
		{"postgresql://rd:s3cr3t@db/rd?sslpassword=s3cr3t&PassWord=s3cr3t&sslkey=/k.pem", "postgresql://rd:xxxxx@db/rd?sslpassword=xxxxx&PassWord=xxxxx&sslkey=/k.pem"},
		{"postgres://db/rd?ssl%70assword=s3cr3t", "postgres://db/rd?ssl%70assword=xxxxx"},
		{"postgres://rd:s3%zzcr3t@db/rd", "(a DSN that does not parse as a URL; not shown)"},
		{"host=db user=rd password=s3cr3t dbname=rd", "host=db user=rd password=xxxxx dbname=rd"},
		{"host=db password='s3 cr3t' dbname=rd", "host=db password=xxxxx dbname=rd"},
	}
	for _, c := range cases {
		got := redactDSN(c.in)
		if got != c.want {
			t.Errorf("redactDSN(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "s3 cr3t") || strings.Contains(got, "zzcr3t") {
			t.Errorf("redactDSN(%q) leaks the password", c.in)
		}
	}
}

// TestServiceClock: cmd owns the clock, so every recovery.Options it builds names Now: a.now, the
// one clock of the process (real, or the test clock of an rdtest build).
func TestServiceClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	isIdent := func(e ast.Expr, name string) bool { id, ok := e.(*ast.Ident); return ok && id.Name == name }
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, ok := lit.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Options" || !isIdent(sel.X, "recovery") {
				return true
			}
			found++
			for _, e := range lit.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Now") {
					if s, ok := kv.Value.(*ast.SelectorExpr); ok && s.Sel.Name == "now" && isIdent(s.X, "a") {
						return true
					}
				}
			}
			t.Errorf("%s: recovery.Options without Now: a.now", fset.Position(lit.Pos()))
			return true
		})
	}
	if found == 0 {
		t.Error("no recovery.Options literal found")
	}
}
