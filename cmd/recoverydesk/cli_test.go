package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestHelp(t *testing.T) {
	env := testEnv(t)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "migrate [--reseal]", "apikey add --name NAME", "apikey list", "apikey revoke ID",
			"audit verify [--checkpoint FILE]", "audit export", "--telegram-api", "RECOVERYDESK_TELEGRAM_API", "127.0.0.1:8080"}},
		{[]string{"-h"}, []string{"Commands:"}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"serve", "--help"}, []string{"Usage: recoverydesk serve", "SIGTERM", "recoverydesk.key"}},
		{[]string{"migrate", "--help"}, []string{"Usage: recoverydesk migrate", "--reseal", "rotation"}},
		{[]string{"apikey", "--help"}, []string{"apikey add --name NAME", "apikey list", "apikey revoke ID"}},
		{[]string{"apikey", "add", "--help"}, []string{"--name", "shown again"}},
		{[]string{"apikey", "list", "-help"}, []string{"Usage: recoverydesk apikey list"}},
		{[]string{"apikey", "revoke", "--help"}, []string{"Usage: recoverydesk apikey revoke ID"}},
		{[]string{"audit", "--help"}, []string{"audit verify", "audit export"}},
		{[]string{"audit", "verify", "--help"}, []string{"--checkpoint FILE", "--verifier-key KEY", "truncated"}},
		{[]string{"audit", "export", "--help"}, []string{"--out FILE", "--checkpoint FILE", "verifier key"}},
		{[]string{"help", "audit", "verify"}, []string{"--checkpoint FILE"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, err := runCmd(t, env, c.args...)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
			if errOut != "" {
				t.Errorf("stderr not empty: %s", errOut)
			}
			if n := strings.Count(out, "Usage:"); n != 1 {
				t.Errorf("help printed %d times", n)
			}
		})
	}
	out := mustRun(t, env, "--help")
	for _, s := range settings {
		if !strings.Contains(out, s.env) || !strings.Contains(out, "--"+flagName(s.env)) {
			t.Errorf("help lacks %s", s.env)
		}
	}
	// No help run touched the database.
	if _, err := os.Stat(env["RECOVERYDESK_DB"]); err == nil {
		t.Error("--help created the database")
	}
}

func TestBadCommandLine(t *testing.T) {
	env := testEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"--bogus"}, "unknown flag -bogus"},
		{[]string{"serve", "--bogus"}, "serve: unknown flag -bogus (see 'recoverydesk serve --help')"},
		{[]string{"apikey", "revoke", "-0AhJUA7OxwtZL_Maw2yG-mEsIAAMM2e7RgtgPoX"}, "apikey revoke: an argument starting with '-' is not a known flag"},
		{[]string{"serve", "extra"}, `unexpected argument #1 (it takes 0)`},
		{[]string{"--db"}, "flag needs an argument: -db"},
		{[]string{"migrate", "--reseal=maybe"}, "invalid boolean value"},
		{[]string{"apikey"}, "missing command: add, list or revoke"},
		{[]string{"apikey", "frob"}, `unknown command "frob"`},
		{[]string{"apikey", "add"}, "--name is required"},
		{[]string{"apikey", "add", "--name"}, "flag needs an argument: -name"},
		{[]string{"apikey", "revoke"}, "missing ID"},
		{[]string{"apikey", "revoke", "a", "b"}, "takes one ID, got 2 arguments"},
		{[]string{"apikey", "revoke", "nothex"}, "is not a key id"},
		{[]string{"audit"}, "missing command: verify or export"},
		{[]string{"audit", "frob"}, `unknown command "frob"`},
		{[]string{"audit", "verify", "--verifier-key", "x"}, "--verifier-key needs --checkpoint"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, err := runCmd(t, env, c.args...)
			if out != "" || errOut != "" {
				t.Errorf("a usage error printed (run's caller prints it):\n%s%s", out, errOut)
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), `"extra"`) {
				t.Errorf("err = %q quotes a stray argument back (it may be a secret that lost its flag)", err)
			}
			if exitCode(err, io.Discard) != 2 {
				t.Error("exit code is not 2")
			}
		})
	}
	if _, err := os.Stat(env["RECOVERYDESK_DB"]); err == nil {
		t.Error("a bad command line created the database")
	}
}

func TestConfig(t *testing.T) {
	t.Run("precedence", func(t *testing.T) {
		env := map[string]string{"RECOVERYDESK_ADDR": "127.0.0.1:9001", "RECOVERYDESK_ISSUER": "FromEnv"}
		c, err := loadConfig(getenv(env), map[string]string{"issuer": "FromFlag"})
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:9001" || c.Issuer != "FromFlag" || c.DB != "recoverydesk.db" || c.TelegramAPI != DefaultTelegramAPI {
			t.Errorf("got addr %q issuer %q db %q telegram %q", c.Addr, c.Issuer, c.DB, c.TelegramAPI)
		}
		if c.resolveBaseURL("127.0.0.1:9001") != "http://127.0.0.1:9001" || c.resolveBaseURL("[::]:80") != "http://127.0.0.1:80" {
			t.Error("default base URL does not follow the listen address")
		}
		c, _ = loadConfig(getenv(map[string]string{"RECOVERYDESK_BASE_URL": "https://2fa.example.com/"}), nil)
		if c.resolveBaseURL("127.0.0.1:1") != "https://2fa.example.com" {
			t.Error("configured base URL not used")
		}
	})
	t.Run("flags through run", func(t *testing.T) {
		dir := t.TempDir()
		// Flags before and after the command; the flag beats the environment.
		env := map[string]string{"RECOVERYDESK_DB": filepath.Join(dir, "env.db")}
		mustRun(t, env, "--db", filepath.Join(dir, "flag.db"), "migrate", "--issuer", "X")
		if _, err := os.Stat(filepath.Join(dir, "flag.db")); err != nil {
			t.Error("--db was not used")
		}
		if _, err := os.Stat(filepath.Join(dir, "env.db")); err == nil {
			t.Error("the environment beat the flag")
		}
	})
	t.Run("parsed lists", func(t *testing.T) {
		key := strings.Repeat("a", 32)
		env := map[string]string{
			"RECOVERYDESK_API_KEYS":        "host=" + key + ", ci = " + key + "b",
			"RECOVERYDESK_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7, 2001:db8::/32",
			"RECOVERYDESK_TELEGRAM_TOKEN":  "123:abc",
			"RECOVERYDESK_METRICS_TOKEN":   "metrics-token",
		}
		c, err := loadConfig(getenv(env), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.StaticAPIKeys["host"] != key || c.StaticAPIKeys["ci"] != key+"b" || len(c.StaticAPIKeys) != 2 {
			t.Errorf("static keys: %d", len(c.StaticAPIKeys))
		}
		if strings.Join(c.TrustedProxyCIDRs, " ") != "10.0.0.0/8 192.168.1.7/32 2001:db8::/32" {
			t.Errorf("proxies: %v", c.TrustedProxyCIDRs)
		}
	})
	secret := "s3cr3t-" + strings.Repeat("z", 20)
	bad := []struct {
		env, value, flag string
		want             string
	}{
		{"RECOVERYDESK_ADDR", "nope", "", `RECOVERYDESK_ADDR: "nope" is not host:port`},
		{"RECOVERYDESK_ADDR", "", "127.0.0.1:99999", "--addr: "},
		{"RECOVERYDESK_BASE_URL", "ftp://x", "", "RECOVERYDESK_BASE_URL: "},
		{"RECOVERYDESK_BASE_URL", "https://admin:" + secret + "@2fa.example.com", "", "RECOVERYDESK_BASE_URL: is not an http:// or https:// URL without user"},
		{"RECOVERYDESK_ISSUER", "Acme:2FA", "", "colon"},
		{"RECOVERYDESK_API_KEYS", "host=" + secret, "", "RECOVERYDESK_API_KEYS: entry 1: key is 27 characters, at least 32 are needed"},
		// Written the wrong way round (key=name): the key stands where the name belongs.
		{"RECOVERYDESK_API_KEYS", secret + "=host", "", "RECOVERYDESK_API_KEYS: entry 1: key is 4 characters"},
		{"RECOVERYDESK_API_KEYS", "a=" + strings.Repeat("k", 32) + "," + secret + "=b", "", "RECOVERYDESK_API_KEYS: entry 2: key is 1 characters"},
		{"RECOVERYDESK_API_KEYS", secret + "=" + strings.Repeat("k", 32) + "," + secret + "=" + strings.Repeat("k", 33), "",
			"RECOVERYDESK_API_KEYS: entry 2 has the same name as entry 1"},
		{"RECOVERYDESK_API_KEYS", secret + "=" + strings.Repeat("k", 31) + " x", "", "RECOVERYDESK_API_KEYS: entry 1: key contains spaces or control characters"},
		{"RECOVERYDESK_API_KEYS", "a=" + strings.Repeat("k", 32) + "," + secret, "", "RECOVERYDESK_API_KEYS: entry 2 is not name=key"},
		{"RECOVERYDESK_API_KEYS", "", "a=" + strings.Repeat("k", 32) + ",a=" + strings.Repeat("k", 33), "--api-keys: entry 2 has the same name as entry 1"},
		{"RECOVERYDESK_TRUSTED_PROXIES", "10.0.0.0/8,10.1.0.0/33", "", `RECOVERYDESK_TRUSTED_PROXIES: entry 2 "10.1.0.0/33" is not a CIDR`},
		{"RECOVERYDESK_TRUSTED_PROXIES", "", "localhost", `--trusted-proxies: entry 1 "localhost" is not a CIDR`},
		{"RECOVERYDESK_TELEGRAM_API", "https://example.com/bot%s", "", "two %s"},
		{"RECOVERYDESK_TELEGRAM_API", "https://api.telegram.org/bot" + secret + "/%s", "", "RECOVERYDESK_TELEGRAM_API: is not an http(s) URL with two %s"},
		{"RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET", "has space", "", "Telegram's secret_token alphabet"},
		{"RECOVERYDESK_SMTP_URL", "http://user:" + secret + "@mail", "", "RECOVERYDESK_SMTP_URL: is not an smtp://"},
		{"RECOVERYDESK_MAIL_FROM", "not an address", "", "is not an e-mail address"},
		{"RECOVERYDESK_HOST_WEBHOOK_URL", "ftp://h", "", "is not an http:// or https:// URL"},
		{"RECOVERYDESK_HOST_WEBHOOK_URL", "hooks.example.com/" + secret, "", "RECOVERYDESK_HOST_WEBHOOK_URL: is not an http:// or https:// URL"},
		{"RECOVERYDESK_POLICY_FILE", "/nonexistent/policy.yaml", "", "cannot read /nonexistent/policy.yaml"},
		{"RECOVERYDESK_DB", "", " ", "--db: empty database path"},
		{"RECOVERYDESK_DB", "", ":memory:", "--db: give SQLite a plain file path"},
		{"RECOVERYDESK_DB", "", "file:x.db?mode=rwc", "--db: give SQLite a plain file path"},
	}
	for _, c := range bad {
		t.Run(c.env+"="+c.value+c.flag, func(t *testing.T) {
			overlay := map[string]string{}
			if c.flag != "" {
				overlay[flagName(c.env)] = c.flag
			}
			_, err := loadConfig(getenv(map[string]string{c.env: c.value}), overlay)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line free of the secret: %q", err)
			}
		})
	}
}

// keyMaterial is 32 bytes whose base64 the tests look for in every output.
var keyMaterial = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestKeys(t *testing.T) {
	type tc struct {
		name string
		env  map[string]string
		file string // content written to recoverydesk.key first
		want string
	}
	short := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) // 16 bytes
	cases := []tc{
		{name: "not base64", env: map[string]string{"RECOVERYDESK_KEYS": "k1:" + keyMaterial[:20] + "!!" + keyMaterial[22:]},
			want: "RECOVERYDESK_KEYS: keys: entry 1 is not valid base64"},
		{name: "short key", env: map[string]string{"RECOVERYDESK_KEYS": "k1:" + short},
			want: "RECOVERYDESK_KEYS: keyring: key 1 is 16 bytes, want 32"},
		{name: "no id", env: map[string]string{"RECOVERYDESK_KEYS": keyMaterial},
			want: "RECOVERYDESK_KEYS: keys: entry 1 is not id:base64"},
		{name: "second entry", env: map[string]string{"RECOVERYDESK_KEYS": "new:" + keyMaterial + ",old"},
			want: "RECOVERYDESK_KEYS: keys: entry 2 is not id:base64"},
		{name: "malformed key file", file: "k1:" + short + "\n",
			want: "master key file "},
		{name: "empty key file", file: "\n", want: "is empty"},
		{name: "audit key", env: map[string]string{"RECOVERYDESK_AUDIT_KEY": short},
			want: "RECOVERYDESK_AUDIT_KEY: is 16 bytes, want the base64 of a 32-byte Ed25519 seed"},
		{name: "audit key not base64", env: map[string]string{"RECOVERYDESK_AUDIT_KEY": "%%" + keyMaterial},
			want: "RECOVERYDESK_AUDIT_KEY: is not base64"},
		{name: "postgres without keys", env: map[string]string{"RECOVERYDESK_DB": "postgres://root:pw@127.0.0.1:1/x?sslmode=disable"},
			want: "RECOVERYDESK_KEYS is required with PostgreSQL (all replicas must share it)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testEnv(t)
			for k, v := range c.env {
				env[k] = v
			}
			if c.file != "" {
				if err := os.WriteFile(filepath.Join(filepath.Dir(env["RECOVERYDESK_DB"]), masterKeyFile), []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, errOut, err := runCmd(t, env, "serve")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			all := err.Error() + out + errOut
			for _, m := range []string{keyMaterial, keyMaterial[:20], short, "pw@"} {
				if strings.Contains(all, m) {
					t.Errorf("key material %q appears in %q", m, all)
				}
			}
			if _, err := os.Stat(env["RECOVERYDESK_DB"]); err == nil {
				t.Error("the database was created although the keys were refused")
			}
		})
	}

	t.Run("group-readable key file warns", func(t *testing.T) {
		env := testEnv(t)
		mustRun(t, env, "migrate")
		path := filepath.Join(filepath.Dir(env["RECOVERYDESK_DB"]), masterKeyFile)
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runCmd(t, env, "migrate")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "master key file is readable by group or others") || !strings.Contains(errOut, path) {
			t.Errorf("no warning:\n%s", errOut)
		}
	})

	t.Run("postgres without audit key", func(t *testing.T) {
		env := map[string]string{"RECOVERYDESK_DB": "postgres://root@127.0.0.1:1/x", "RECOVERYDESK_KEYS": "k1:" + keyMaterial}
		_, _, err := runCmd(t, env, "audit", "export", "--out", filepath.Join(t.TempDir(), "a.jsonl"))
		if err == nil || !strings.Contains(err.Error(), "RECOVERYDESK_AUDIT_KEY is required with PostgreSQL") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("postgres unreachable", func(t *testing.T) {
		env := map[string]string{"RECOVERYDESK_DB": "postgres://root:hunter2secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=5",
			"RECOVERYDESK_KEYS": "k1:" + keyMaterial, "RECOVERYDESK_ADDR": "127.0.0.1:0"}
		_, errOut, err := runCmd(t, env, "serve")
		if err == nil || !strings.HasPrefix(err.Error(), "open database postgres://root:xxxxx@127.0.0.1:1/x") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error()+errOut, "hunter2secret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error leaks the password or is not one line: %q", err)
		}
	})
}

func TestAPIKeyCommands(t *testing.T) {
	env := testEnv(t)
	static := strings.Repeat("S", 40)
	env["RECOVERYDESK_API_KEYS"] = "ci=" + static

	out := mustRun(t, env, "apikey", "add", "--name", "host")
	m := regexp.MustCompile(`(?m)^Created API key "host" \(id ([0-9a-f]{16})\):\n(rdk_[0-9a-f]{16}_\S+)\n`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "will not be shown again") {
		t.Fatalf("apikey add output:\n%s", out)
	}
	id, key := m[1], m[2]
	if !strings.HasPrefix(key, "rdk_"+id+"_") {
		t.Errorf("key %q does not carry id %s", key[:21], id)
	}
	out2 := mustRun(t, env, "apikey", "add", "--name", "other")
	key2 := regexp.MustCompile(`(?m)^rdk_\S+$`).FindString(out2)

	svc := openService(t, env)
	ctx := context.Background()
	for k, want := range map[string]string{key: "host", key2: "other", static: "ci"} {
		if name, err := svc.AuthenticateAPIKey(ctx, k); err != nil || name != want {
			t.Errorf("AuthenticateAPIKey = %q, %v; want %q", name, err, want)
		}
	}
	stored, err := svc.APIKeys(ctx)
	if err != nil || len(stored) != 2 {
		t.Fatalf("APIKeys = %v, %v", len(stored), err)
	}

	list := mustRun(t, env, "apikey", "list")
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+CREATED\s+REVOKED$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^`+id+`\s+host\s+\d{4}-\d\d-\d\dT\S+Z\s+-$`).MatchString(list) ||
		!strings.Contains(list, "Also accepted from RECOVERYDESK_API_KEYS: ci") {
		t.Errorf("apikey list:\n%s", list)
	}
	secretPart := key[len("rdk_"+id+"_"):]
	for _, s := range append([]string{secretPart, static, strings.TrimPrefix(key2, "rdk_")}, stored[0].Hash, stored[1].Hash) {
		if strings.Contains(list, s) {
			t.Errorf("apikey list shows a secret or hash")
		}
	}

	out = mustRun(t, env, "apikey", "revoke", id)
	if !strings.Contains(out, "Revoked API key "+id) {
		t.Errorf("revoke output: %s", out)
	}
	// A service that has not seen the key in the last 2 s (here: a fresh one) refuses it at once;
	// recovery's tests cover the running service's short cache.
	if _, err := openService(t, env).AuthenticateAPIKey(ctx, key); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Errorf("revoked key: err = %v", err)
	}
	if name, err := svc.AuthenticateAPIKey(ctx, key2); err != nil || name != "other" {
		t.Errorf("other key after revoke: %q %v", name, err)
	}
	list = mustRun(t, env, "apikey", "list")
	if !regexp.MustCompile(`(?m)^` + id + `\s+host\s+\S+Z\s+\d{4}-\S+Z$`).MatchString(list) {
		t.Errorf("list does not show the revocation:\n%s", list)
	}
	if out := mustRun(t, env, "apikey", "revoke", id, "--issuer", "flags-after-args"); !strings.Contains(out, "already revoked") {
		t.Errorf("second revoke: %s", out)
	}
	if _, _, err := runCmd(t, env, "apikey", "revoke", "0123456789abcdef"); err == nil || !strings.Contains(err.Error(), "no API key with id 0123456789abcdef") {
		t.Errorf("unknown id: %v", err)
	}
	if _, _, err := runCmd(t, env, "apikey", "add", "--name", "bad name"); err == nil || !strings.Contains(err.Error(), "name must be") {
		t.Errorf("bad name: %v", err)
	}
}
