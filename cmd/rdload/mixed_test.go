package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/recovery"
)

func TestParseWeights(t *testing.T) {
	w, err := parseWeights(defaultMixWeights)
	if err != nil {
		t.Fatalf("default weights: %v", err)
	}
	for _, k := range mixKinds {
		if w[k] <= 0 {
			t.Errorf("default weights leave out %s", k)
		}
	}
	w, err = parseWeights(" verify=3, bot=0 ,queue=1")
	if err != nil || len(w) != 2 || w[kindVerify] != 3 || w[kindQueue] != 1 {
		t.Errorf("parseWeights = %v, %v; want verify=3 queue=1 (bot=0 dropped)", w, err)
	}
	for _, bad := range []string{"", "verify=0", "verify", "verify=x", "verify=-1", "verify=1001", "login=3", "verify=1,verify=2"} {
		if _, err := parseWeights(bad); err == nil {
			t.Errorf("parseWeights(%q) accepted", bad)
		}
	}
}

// TestPicker: over one full cycle of the random source every kind is picked exactly its weight
// times, and kinds of weight 0 never.
func TestPicker(t *testing.T) {
	w := map[string]int{kindVerify: 7, kindTicket: 2, kindBot: 1}
	p := newPicker(w)
	got := map[string]int{}
	for r := range 10 {
		got[p.pick(func(n int) int {
			if n != 10 {
				t.Fatalf("intn(%d), want intn(10)", n)
			}
			return r
		})]++
	}
	if len(got) != 3 || got[kindVerify] != 7 || got[kindTicket] != 2 || got[kindBot] != 1 {
		t.Errorf("picks over one cycle = %v, want the weights %v", got, w)
	}
}

func TestMixFlags(t *testing.T) {
	env := map[string]string{
		"RDLOAD_API_KEY": "k", "RDLOAD_AGENT_PASSWORD": "pw-secret-1", "RDLOAD_AGENT_TOTP_SECRET": "JBSWY3DPEHPK3PXP",
		"RDLOAD_TELEGRAM_SECRET": "tg",
	}
	getenv := func(k string) string { return env[k] }
	var stderr bytes.Buffer
	c, err := parseFlags([]string{"--mix", "--agent-email", "a@example.com", "--duration", "60s"}, getenv, &stderr)
	if err != nil {
		t.Fatalf("mix flags: %v\n%s", err, stderr.String())
	}
	if c.mix == nil || c.mix.agent.password != "pw-secret-1" || c.mix.tgSecret != "tg" || c.mix.chats != 8*32 ||
		c.accounts != defaultMixAccounts(32, 60*time.Second, 0.8, 0.7) {
		t.Fatalf("mix config: %+v accounts=%d", c.mix, c.accounts)
	}
	if c, _ := parseFlags(nil, getenv, &stderr); c.mix != nil {
		t.Fatal("verify mode got a mix config")
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--mix"}, env}, // console kinds without an agent e-mail
		{[]string{"--mix", "--agent-email", "a@example.com"}, map[string]string{"RDLOAD_API_KEY": "k", "RDLOAD_TELEGRAM_SECRET": "tg"}},
		{[]string{"--mix", "--mix-weights", "bot=1"}, map[string]string{"RDLOAD_API_KEY": "k"}}, // no webhook secret
		{[]string{"--mix", "--mix-weights", "nothing=1"}, env},
		{[]string{"--mix", "--agent-email", "a@example.com", "--agent-totp-secret", "not base32 ~pw"}, env},
	} {
		stderr.Reset()
		_, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", tc.args, err)
		}
		if strings.Contains(stderr.String(), "pw-secret-1") || strings.Contains(stderr.String(), "~pw") {
			t.Errorf("parseFlags(%q) printed a credential: %s", tc.args, stderr.String())
		}
	}
	if _, err := parseFlags([]string{"--mix", "--mix-weights", "verify=1,bot=1"}, getenv, &stderr); err != nil {
		t.Errorf("a mix without console kinds needs no agent: %v", err)
	}
}

// TestFakeBotAPIWithClient drives the fake with the client library the bot uses: every method
// the server calls succeeds and decodes, unknown methods and wrong tokens are refused as
// Telegram refuses them, and the calls are counted.
func TestFakeBotAPIWithClient(t *testing.T) {
	f := newFakeBotAPI("42:right")
	srv := httptest.NewServer(f)
	defer srv.Close()
	api, err := tgbotapi.NewBotAPIWithClient("42:right", srv.URL+"/bot%s/%s", srv.Client())
	if err != nil {
		t.Fatalf("getMe: %v", err)
	}
	if api.Self.UserName != fakeBotName || !api.Self.IsBot {
		t.Errorf("getMe = %+v", api.Self)
	}
	msg := tgbotapi.NewMessage(5_000_000_123, "Hello")
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData("I lost my authenticator", "lost")))
	sent, err := api.Send(msg)
	if err != nil || sent.MessageID <= 0 || sent.Chat == nil || sent.Chat.ID != 5_000_000_123 || sent.Text != "Hello" {
		t.Fatalf("sendMessage = %+v, %v", sent, err)
	}
	if _, err := api.Send(tgbotapi.NewEditMessageText(5_000_000_123, sent.MessageID, "Hello again")); err != nil {
		t.Errorf("editMessageText: %v", err)
	}
	if _, err := api.Request(tgbotapi.NewCallback("77", "")); err != nil {
		t.Errorf("answerCallbackQuery: %v", err)
	}
	if _, err := api.MakeRequest("setWebhook", tgbotapi.Params{"url": "http://127.0.0.1:1/telegram/webhook", "secret_token": "s"}); err != nil {
		t.Errorf("setWebhook: %v", err)
	}
	if _, err := api.Request(tgbotapi.DeleteWebhookConfig{}); err != nil {
		t.Errorf("deleteWebhook: %v", err)
	}
	if _, err := api.MakeRequest("sendPhoto", tgbotapi.Params{"chat_id": "1"}); err == nil {
		t.Error("an unknown method succeeded")
	}
	if _, err := tgbotapi.NewBotAPIWithClient("42:wrong", srv.URL+"/bot%s/%s", srv.Client()); err == nil {
		t.Error("a wrong token was accepted")
	}
	want := map[string]int{"getMe": 1, "sendMessage": 1, "editMessageText": 1, "answerCallbackQuery": 1,
		"setWebhook": 1, "deleteWebhook": 1, "unknown": 1, "unauthorized": 1}
	got := f.Counts()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("count of %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if s := f.summary(); !strings.HasSuffix(s, " total=8") || strings.Contains(s, "right") {
		t.Errorf("summary %q", s)
	}
}

// TestConversationParses: the updates rdload sends decode with the library and parse with the
// bot's own parser into the conversation's steps; update_ids increase; a chat's messages carry
// increasing message ids.
func TestConversationParses(t *testing.T) {
	l := &loader{cfg: config{base: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}}
	b := newBotClient(l, "s")
	chats := b.makeChats(2, []*account{{id: "load-000001"}})
	even, odd := <-chats, <-chats
	if even.email != "load-000001@load.example" || !strings.HasSuffix(odd.email, "@unknown.example") {
		t.Fatalf("e-mails: %q %q", even.email, odd.email)
	}
	var lastUpdate int64
	for round := range 2 {
		for i, step := range conversation {
			var u tgbotapi.Update
			if err := json.Unmarshal(b.update(even, time.Now()), &u); err != nil {
				t.Fatal(err)
			}
			in, answer := bot.Parse(u)
			if in.UpdateID <= lastUpdate || in.ChatID != even.id || in.UserID != even.id || in.ChatType != recovery.ChatPrivate {
				t.Fatalf("round %d step %d: %+v after update %d", round, i, in, lastUpdate)
			}
			lastUpdate = in.UpdateID
			switch {
			case step.button != "":
				if in.Button != step.button || answer == "" {
					t.Errorf("step %d: button %q answer %q", i, in.Button, answer)
				}
			case step.text == "\x00email":
				if in.Text != even.email {
					t.Errorf("step %d: text %q, want the chat's e-mail", i, in.Text)
				}
			default:
				if in.Text != step.text {
					t.Errorf("step %d: text %q, want %q", i, in.Text, step.text)
				}
				if strings.HasPrefix(step.text, "/") && !u.Message.IsCommand() {
					t.Errorf("step %d: %q is not marked as a command", i, step.text)
				}
			}
		}
	}
}

// ---- against the real server ----

var mixKindLine = regexp.MustCompile(`(?m)^mix_kind: kind=(\w+) requests=(\d+) rps=\d+ p50_ms=[\d.]+ p99_ms=[\d.]+ errors=(\d+)$`)
var mixResultLine = regexp.MustCompile(`^mix_rps=\d+ verify_rps=\d+ console_rps=\d+ bot_rps=\d+ p99_ms=\d+\.\d{2} errors=(\d+)$`)

// mixKindCounts reads the per-kind lines: kind → [requests, errors].
func mixKindCounts(t *testing.T, out string) map[string][2]int {
	t.Helper()
	got := map[string][2]int{}
	for _, m := range mixKindLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		e, _ := strconv.Atoi(m[3])
		got[m[1]] = [2]int{n, e}
	}
	return got
}

// mixServer is a recoverydesk process built from this checkout, with the demo desk, an API key
// and the bot in webhook mode against an in-process fake Bot API.
type mixServer struct {
	base, apiKey, tgSecret string
	agents                 map[string][2]string // supervisor e-mail → password, TOTP secret
	fake                   *fakeBotAPI
	stderr                 *mixSyncBuffer
}

type mixSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *mixSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *mixSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startMixServer(t *testing.T) *mixServer {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the real server (runs without -short, and always under CI=true)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "recoverydesk")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/recoverydesk/recoverydesk/cmd/recoverydesk").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ms := &mixServer{tgSecret: "mix-test-secret-0123456789", agents: map[string][2]string{}, fake: newFakeBotAPI("100:mixtest"),
		stderr: &mixSyncBuffer{}}

	ctx, cancel := context.WithCancel(context.Background())
	fakeURL := make(chan string, 1)
	fakeDone := make(chan error, 1)
	go func() { fakeDone <- serveFakeBotAPI(ctx, "127.0.0.1:0", ms.fake, func(u string) { fakeURL <- u }) }()
	var fakeBase string
	select {
	case fakeBase = <-fakeURL:
	case err := <-fakeDone:
		t.Fatalf("fake Bot API: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-fakeDone; err != nil {
			t.Errorf("fake Bot API: %v", err)
		}
	})

	env := []string{"RECOVERYDESK_DB=" + filepath.Join(dir, "rd.db"), "RECOVERYDESK_ADDR=127.0.0.1:0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RECOVERYDESK_") {
			env = append(env, kv)
		}
	}
	command := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("recoverydesk %s: %v\n%s", args[0], err, stderr.String())
		}
		return string(out)
	}
	for _, line := range strings.Split(command("demo"), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "supervisor" {
			ms.agents[f[1]] = [2]string{f[2], f[3]}
		}
	}
	if len(ms.agents) < 2 {
		t.Fatalf("the demo printed %d supervisors, want 2", len(ms.agents))
	}
	if m := regexp.MustCompile(`(?m)^(rdk_\S+)$`).FindStringSubmatch(command("apikey", "add", "--name", "load")); m != nil {
		ms.apiKey = m[1]
	} else {
		t.Fatal("apikey add printed no key")
	}

	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(env, "RECOVERYDESK_TELEGRAM_TOKEN=100:mixtest", "RECOVERYDESK_TELEGRAM_API="+fakeBase+"/bot%s/%s",
		"RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET="+ms.tgSecret)
	cmd.Stderr = ms.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "RecoveryDesk listening on "); ok {
				listening <- strings.TrimSpace(rest)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("server exit after SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("server did not stop within 20 s of SIGTERM")
		}
		// The log is JSON lines; an ERROR means the server itself failed somewhere.
		if strings.Contains(ms.stderr.String(), `"level":"ERROR"`) {
			t.Errorf("the server logged errors:\n%s", tail(ms.stderr.String()))
		}
	})
	select {
	case ms.base = <-listening:
	case err := <-waited:
		t.Fatalf("server ended before listening: %v\n%s", err, tail(ms.stderr.String()))
	case <-time.After(60 * time.Second):
		t.Fatalf("server not listening within 60 s\n%s", tail(ms.stderr.String()))
	}
	return ms
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// runMixAgainst runs the mix mode (without the wait for a fresh step) and returns its stdout,
// stderr and error.
func (ms *mixServer) runMixAgainst(t *testing.T, target, agent, tgSecret string, extra ...string) (string, string, error) {
	t.Helper()
	cred := ms.agents[agent]
	env := map[string]string{"RDLOAD_API_KEY": ms.apiKey, "RDLOAD_AGENT_PASSWORD": cred[0], "RDLOAD_AGENT_TOTP_SECRET": cred[1],
		"RDLOAD_TELEGRAM_SECRET": tgSecret}
	args := append([]string{"--url", target, "--mix", "--agent-email", agent, "--clients", "4", "--duration", "2s",
		"--allow-short", "--accounts", "100", "--chats", "16",
		"--mix-weights", "verify=15,queue=10,ticket=15,audit=5,dashboard=5,note=10,bot=40"}, extra...)
	var stdout, stderr bytes.Buffer
	cfg, err := parseFlags(args, func(k string) string { return env[k] }, &stderr)
	if err != nil {
		t.Fatalf("flags: %v\n%s", err, stderr.String())
	}
	cfg.waitStep = false // up to 30 s otherwise; the accounts then start with one unused code
	err = executeMix(context.Background(), cfg, &stdout, &stderr)
	for _, secret := range []string{cred[0], cred[1], tgSecret, ms.apiKey} {
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Errorf("rdload printed a credential")
		}
	}
	return stdout.String(), stderr.String(), err
}

// TestMixAgainstServer runs the mix mode for 3 s against the real server (SQLite, the demo desk,
// the bot in webhook mode against the fake Bot API): every kind is sent and answered as expected
// (0 errors, which for verify means no valid code was refused as a replay and no wrong one
// accepted), the bot's replies reach the fake Bot API, and the result line has its shape. Then
// the same run through a proxy that fails the dashboard with 500, and with a wrong webhook
// secret (the real server answers 403): exactly those requests are counted as errors and the
// run fails.
func TestMixAgainstServer(t *testing.T) {
	ms := startMixServer(t)
	var agents []string
	for a := range ms.agents {
		agents = append(agents, a)
	}

	stdout, stderr, err := ms.runMixAgainst(t, ms.base, agents[0], ms.tgSecret)
	if err != nil {
		t.Fatalf("mix run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if m := mixResultLine.FindStringSubmatch(lines[len(lines)-1]); m == nil || m[1] != "0" {
		t.Fatalf("last line %q: want the mix result line with errors=0\n%s", lines[len(lines)-1], stdout)
	}
	counts := mixKindCounts(t, stdout)
	for _, k := range mixKinds {
		if c := counts[k]; c[0] == 0 || c[1] != 0 {
			t.Errorf("kind %s: requests=%d errors=%d, want some and 0 errors\n%s", k, c[0], c[1], stdout)
		}
	}
	// The server answered the button presses in the webhook request, and its dispatcher delivers
	// the replies after it: wait for the first.
	deadline := time.Now().Add(15 * time.Second)
	for ms.fake.Counts()["sendMessage"] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	fc := ms.fake.Counts()
	if fc["getMe"] < 1 || fc["setWebhook"] < 1 || fc["answerCallbackQuery"] < 1 || fc["sendMessage"] < 1 {
		t.Errorf("fake Bot API calls %v: want getMe, setWebhook, answerCallbackQuery and sendMessage", fc)
	}
	t.Logf("clean run:\n%s", stdout)

	// Injected faults: a proxy fails the dashboard; the webhook secret is wrong.
	target, _ := url.Parse(ms.base)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console/dashboard" {
			http.Error(w, "injected", http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	stdout, stderr, err = ms.runMixAgainst(t, proxy.URL, agents[1], "wrong-"+ms.tgSecret)
	if !errors.Is(err, errFailedRun) {
		t.Fatalf("faulty run = %v, want errFailedRun\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	counts = mixKindCounts(t, stdout)
	wantErrs := 0
	for _, k := range mixKinds {
		c := counts[k]
		switch k {
		case kindDashboard, kindBot:
			if c[0] == 0 || c[1] != c[0] {
				t.Errorf("kind %s: requests=%d errors=%d, want every request counted as an error", k, c[0], c[1])
			}
			wantErrs += c[1]
		default:
			if c[0] == 0 || c[1] != 0 {
				t.Errorf("kind %s: requests=%d errors=%d, want some and 0 errors", k, c[0], c[1])
			}
		}
	}
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	if m := mixResultLine.FindStringSubmatch(lines[len(lines)-1]); m == nil || m[1] != strconv.Itoa(wantErrs) {
		t.Errorf("last line %q: want errors=%d", lines[len(lines)-1], wantErrs)
	}
	for _, want := range []string{"console dashboard answered HTTP 500 (want 200)", "bot update answered HTTP 403 (want 200)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not report %q:\n%s", want, stderr)
		}
	}
	t.Logf("faulty run:\n%s", stdout)
}
