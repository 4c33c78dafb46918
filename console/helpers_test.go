package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/console"
	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// t0 is 10 s into a TOTP step, so codes of the steps either side are far from a boundary.
var t0 = time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)

// clock is a fixed test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer collects the handler's JSON log lines; the server writes from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns each log line decoded.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type envOptions struct {
	store   recovery.Store // default: a fresh SQLite store
	now     func() time.Time
	static  map[string]string
	proxies []string
	maxBody int64
	botName string // the Telegram bot's username; "" hides the account page's Telegram section
}

// env is a real HTTP server over the real console, service and store.
type env struct {
	clock *clock
	svc   *recovery.Service
	srv   *httptest.Server
	key   string // a stored API key
	logs  *logBuffer
}

func testKeyring(t testing.TB) *recovery.Keyring {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(7 + i)
	}
	k, err := recovery.NewKeyring([]string{"k1"}, [][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sqliteStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, _ := storetest.SQLite(t)
	return s
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{clock: &clock{t: t0}, logs: &logBuffer{}}
	if o.store == nil {
		o.store = sqliteStore(t)
	}
	if o.now == nil {
		o.now = e.clock.Now
	}
	svc, err := recovery.New(o.store, recovery.Options{Now: o.now, Keys: testKeyring(t), Issuer: "RecoveryDesk", StaticAPIKeys: o.static})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	h, err := console.New(console.Options{
		Service:         svc,
		Logger:          slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TrustedProxies:  o.proxies,
		BaseURL:         "http://127.0.0.1:8080",
		MaxBodyBytes:    o.maxBody,
		TelegramBotName: o.botName,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	_, e.key, err = svc.CreateAPIKey(context.Background(), recovery.Actor{Type: recovery.ActorSystem, ID: "test"}, "host")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// response is an answer as the test reads it.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) str(field string) string {
	s, _ := r.body[field].(string)
	return s
}

func (r response) num(field string) float64 {
	n, _ := r.body[field].(float64)
	return n
}

// req is one request; body is JSON-encoded unless it is a string or []byte (sent as is).
type req struct {
	method, path string
	body         any
	key          *string // nil: the env's key; "" : no Authorization header
	header       map[string]string
}

func (e *env) do(t testing.TB, r req) response {
	t.Helper()
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	key := e.key
	if r.key != nil {
		key = *r.key
	}
	if key != "" {
		hr.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", r.method, r.path, raw)
		}
	}
	return out
}

// expect fails unless the answer has the status and, for errors, the error code.
func expect(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	if code != "" {
		if got := r.str("error"); got != code {
			t.Fatalf("error %q, want %q; body %s", got, code, r.raw)
		}
		if r.str("message") == "" {
			t.Fatalf("error body without message: %s", r.raw)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func accountPath(id string) string { return "/api/v1/accounts/" + id }
func twoFA(id, rest string) string { return "/api/v1/accounts/" + id + "/2fa" + rest }

// createAccount upserts an account with an e-mail derived from its id.
func (e *env) createAccount(t testing.TB, id string) {
	t.Helper()
	r := e.do(t, req{method: http.MethodPut, path: accountPath(id), body: map[string]any{
		"email": id + "@example.com", "display_name": "User " + id,
	}})
	expect(t, r, http.StatusCreated, "")
}

// begin starts an enrollment and returns its secret.
func (e *env) begin(t testing.TB, id string) string {
	t.Helper()
	r := e.do(t, req{method: http.MethodPost, path: twoFA(id, "/enrollment")})
	expect(t, r, http.StatusCreated, "")
	return r.str("secret")
}

// enroll creates an account with active 2FA (its confirmation consumed the current step) and
// returns its secret and recovery codes.
func (e *env) enroll(t testing.TB, id string) (string, []string) {
	t.Helper()
	e.createAccount(t, id)
	secret := e.begin(t, id)
	r := e.do(t, req{method: http.MethodPost, path: twoFA(id, "/enrollment/confirm"), body: map[string]any{"code": codeAt(t, secret, e.clock.Now(), 0)}})
	expect(t, r, http.StatusOK, "")
	var codes []string
	for _, c := range r.body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return secret, codes
}

// codeAt is the code of the step offset steps away from now's.
func codeAt(t testing.TB, secret string, now time.Time, offset int64) string {
	t.Helper()
	c, err := recovery.CodeAt(secret, recovery.Step(now)+offset)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a 6-digit code that matches none of the steps the server accepts at now.
func wrongCode(t testing.TB, secret string, now time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for off := int64(-1); off <= 1; off++ {
		valid[codeAt(t, secret, now, off)] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i*7919%1000000)
		if !valid[c] {
			return c
		}
	}
}
