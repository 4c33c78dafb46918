package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/recoverydesk/recoverydesk/bot/bottest"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
)

// This file is the harness of the acceptance suite (acceptance_test.go): one desk per scenario —
// the real binary (rdtest build) with a fresh SQLite database, the fake Bot API server, an SMTP
// sink — and actors that talk to it over HTTP with their own cookie jars. Everything the run
// produces (logs, every response, every bot message, every mail, the audit export) is kept for
// the secret scan that ends each scenario.

// accDesk is one running RecoveryDesk with its surroundings.
type accDesk struct {
	t    *testing.T
	bin  string
	dir  string
	db   string
	env  map[string]string
	p    *proc
	base string
	tg   *bottest.Server
	mail *accMailSink
	hook *accHookSink
	scan *accScan

	hookSecret string
	apiKey     string
	host       *accActor // the host platform: API key, JSON API
}

// accStart starts a desk: SMTP sink, the host platform's webhook receiver, fake Bot API, then
// `recoverydesk serve` on a fresh database, and registers the run's own secrets (API key, bot
// token, webhook secret, first-admin link).
func accStart(t *testing.T) *accDesk {
	t.Helper()
	bin := rdtestBinary(t)
	dir := t.TempDir()
	d := &accDesk{t: t, bin: bin, dir: dir, db: filepath.Join(dir, "rd.db"), scan: &accScan{}}
	d.apiKey = "acc-host-" + accRandHex(t, 20)
	botToken := fmt.Sprintf("%d:%s", 7000001, accRandHex(t, 18))
	d.scan.secret("API key", d.apiKey)
	d.scan.secret("bot token", botToken)
	d.mail = accStartMailSink(t)
	d.hook = accStartHookSink(t)
	d.hookSecret = "acc-hook-" + accRandHex(t, 16)
	d.scan.secret("host webhook secret", d.hookSecret)
	d.tg = bottest.New(t, botToken)
	d.env = map[string]string{
		"RECOVERYDESK_DB":             d.db,
		"RECOVERYDESK_ADDR":           "127.0.0.1:0",
		"RECOVERYDESK_API_KEYS":       "host=" + d.apiKey,
		"RECOVERYDESK_TELEGRAM_TOKEN": botToken,
		"RECOVERYDESK_TELEGRAM_API":   d.tg.Endpoint(),
		"RECOVERYDESK_SMTP_URL":       "smtp://" + d.mail.addr,
		"RECOVERYDESK_MAIL_FROM":      "RecoveryDesk <desk@desk.example>",

		"RECOVERYDESK_HOST_WEBHOOK_URL":    d.hook.srv.URL + "/recoverydesk-events",
		"RECOVERYDESK_HOST_WEBHOOK_SECRET": d.hookSecret,
	}
	d.p = startProc(t, bin, dir, d.env, true, "serve")
	d.base = d.p.Base
	// The first-admin link is printed on stdout, where it belongs; anywhere else it is a leak.
	if m := accSetupTokenRE.FindStringSubmatch(d.p.Stdout.String()); m != nil {
		d.scan.secret("first-admin setup token", m[1], "server stdout")
	} else {
		t.Errorf("serve printed no first-admin link on an empty database:\n%s", d.p.Stdout)
	}
	d.host = d.actor("host")
	return d
}

func accRandHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// cli runs a command of the binary against the desk's database and returns its output and
// exit code. Its output is kept for the scan under label.
func (d *accDesk) cli(label string, args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command(d.bin, args...)
	cmd.Dir = d.dir
	cmd.Env = procEnv(d.env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			d.t.Fatalf("%s: %v", label, err)
		}
		code = ee.ExitCode()
	}
	d.scan.add(label+" stdout", out.String())
	d.scan.add(label+" stderr", errb.String())
	return out.String(), errb.String(), code
}

// ---- the clock and TOTP codes ----

// now reads the server's clock (GET /test/clock).
func (d *accDesk) now() time.Time {
	d.t.Helper()
	resp, err := http.Get(d.base + "/test/clock")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Now time.Time `json:"now"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		d.t.Fatal(err)
	}
	return st.Now
}

func (d *accDesk) advance(dur time.Duration) {
	d.t.Helper()
	advanceClock(d.t, d.base, dur)
}

// accTOTP is an authenticator app holding one secret: it never shows the same time step twice
// (a step is consumed by the server), so it moves the server's clock to the next step when it
// must.
type accTOTP struct {
	secret string
	last   int64
}

// code returns a valid code for the server's current time step, after the last one used.
func (d *accDesk) code(a *accTOTP) string {
	d.t.Helper()
	now := d.now()
	if step := now.Unix() / 30; step <= a.last {
		d.advance(time.Duration((a.last+1)*30-now.Unix())*time.Second + time.Second)
		now = d.now()
	}
	step := now.Unix() / 30
	a.last = step
	c := accTOTPAt(d.t, a.secret, time.Unix(step*30, 0))
	d.scan.secret("TOTP code", c)
	return c
}

// codeStill returns a valid code without moving the clock (for checks that must not let
// time pass): the current step's, or the next one's when the current step is used up — the
// server accepts one step of drift ahead.
func (d *accDesk) codeStill(a *accTOTP) string {
	d.t.Helper()
	now := d.now()
	step := max(now.Unix()/30, a.last+1)
	if step > now.Unix()/30+1 {
		d.t.Fatal("codeStill: the next unused step is more than one step ahead")
	}
	a.last = step
	c := accTOTPAt(d.t, a.secret, time.Unix(step*30, 0))
	d.scan.secret("TOTP code", c)
	return c
}

// wrongCode returns a 6-digit code that matches none of the steps the server accepts now.
func (d *accDesk) wrongCode(a *accTOTP) string {
	d.t.Helper()
	now := d.now()
	valid := map[string]bool{}
	for _, off := range []int64{-60, -30, 0, 30, 60} {
		valid[accTOTPAt(d.t, a.secret, now.Add(time.Duration(off)*time.Second))] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", (123456+i*111111)%1000000)
		if !valid[c] {
			return c
		}
	}
}

func accTOTPAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ---- HTTP actors ----

// accActor is one party with its own cookie jar: it follows no redirect, so every answer is
// seen (and scanned) as it was sent.
type accActor struct {
	d    *accDesk
	name string
	c    *http.Client
	auth string // Authorization header (the host platform)
}

// actor makes a party that connects from 127.0.0.1.
func (d *accDesk) actor(name string) *accActor { return d.actorFrom(name, "") }

// actorFrom makes a party whose connections come from the local address ip (another loopback
// address is another client address to the server).
func (d *accDesk) actorFrom(name, ip string) *accActor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		d.t.Fatal(err)
	}
	tr := &http.Transport{}
	if ip != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
		tr.DialContext = dialer.DialContext
	}
	d.t.Cleanup(tr.CloseIdleConnections)
	a := &accActor{d: d, name: name, c: &http.Client{Jar: jar, Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if name == "host" {
		a.auth = "Bearer " + d.apiKey
	}
	return a
}

// accResp is one answer as the actor saw it; Label names it in the scan.
type accResp struct {
	Status int
	Header http.Header
	Body   string
	Loc    string
	Label  string
}

var accTokenPath = regexp.MustCompile(`/(setup|reenroll|veto)/[^/?]+`)

// do sends one request. Session cookies the answer sets are registered as secrets that may
// appear only in that answer's headers.
func (a *accActor) do(method, path string, body io.Reader, ctype string, hdr map[string]string) accResp {
	a.d.t.Helper()
	req, err := http.NewRequest(method, a.d.base+path, body)
	if err != nil {
		a.d.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if a.auth != "" {
		req.Header.Set("Authorization", a.auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.d.t.Fatalf("%s %s %s: %v", a.name, method, accTokenPath.ReplaceAllString(path, "/$1/:token"), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.d.t.Fatal(err)
	}
	r := accResp{Status: resp.StatusCode, Header: resp.Header, Body: string(raw), Loc: resp.Header.Get("Location")}
	r.Label = a.d.scan.nextLabel(fmt.Sprintf("%s: %s %s", a.name, method, accTokenPath.ReplaceAllString(path, "/$1/:token")))
	for _, c := range resp.Cookies() {
		if (c.Name == "rd_console" || c.Name == "rd_account") && c.Value != "" {
			a.d.scan.secret("session id ("+c.Name+")", c.Value, r.Label)
		}
	}
	var head strings.Builder
	resp.Header.Write(&head)
	a.d.scan.add(r.Label, head.String()+"\n"+r.Body+accDataURIs(r.Body))
	return r
}

func (a *accActor) get(path string) accResp {
	a.d.t.Helper()
	return a.do(http.MethodGet, path, nil, "", nil)
}

func (a *accActor) post(path string, form url.Values) accResp {
	a.d.t.Helper()
	return a.do(http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", nil)
}

// api sends a JSON request (the host platform) and decodes the answer into out when given.
func (a *accActor) api(method, path string, in any, out any) accResp {
	a.d.t.Helper()
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			a.d.t.Fatal(err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	r := a.do(method, "/api/v1"+path, body, ctype, nil)
	if out != nil && r.Status < 300 {
		if err := json.Unmarshal([]byte(r.Body), out); err != nil {
			a.d.t.Fatalf("%s: %v", r.Label, err)
		}
	}
	return r
}

// expect fails the test unless the answer has the status (and, when loc is not "", the
// redirect target).
func (r accResp) expect(t *testing.T, status int, loc string) accResp {
	t.Helper()
	if r.Status != status || (loc != "" && r.Loc != loc) {
		t.Fatalf("%s: %d → %q, want %d → %q\n%s", r.Label, r.Status, r.Loc, status, loc, accTail(r.Body))
	}
	return r
}

// flash is the console notice the answer carries across its redirect ("" if none).
func (r accResp) flash() string {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "rd_flash" {
			return c.Value
		}
	}
	return ""
}

func accTail(body string) string {
	body = regexp.MustCompile(`(?s)<head>.*?</head>`).ReplaceAllString(body, "")
	if len(body) > 3000 {
		return body[:3000] + "…"
	}
	return body
}

var accDataURI = regexp.MustCompile(`data:text/plain[^,"]*;base64,([A-Za-z0-9+/=]+)`)

// accDataURIs decodes the text data: URIs of a page (the recovery codes' download), so that
// the scan sees what they carry.
func accDataURIs(body string) string {
	var out strings.Builder
	for _, m := range accDataURI.FindAllStringSubmatch(body, -1) {
		if b, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
			out.WriteString("\n[data: URI] ")
			out.Write(b)
		}
	}
	return out.String()
}

// ---- the SMTP sink ----

type accMail struct {
	N       int // 1-based, in order of arrival
	To      []string
	Subject string
	Body    string // decoded
	Raw     string
}

// accMailSink is a real SMTP server (emersion/go-smtp) that keeps every message.
type accMailSink struct {
	addr  string
	mu    sync.Mutex
	mails []accMail
}

type accSMTPSession struct {
	s  *accMailSink
	to []string
}

func (x *accSMTPSession) Reset()                               { x.to = nil }
func (x *accSMTPSession) Logout() error                        { return nil }
func (x *accSMTPSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *accSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *accSMTPSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := accMail{To: x.to, Raw: string(raw)}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		var body io.Reader = msg.Body
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(msg.Body)
		}
		b, _ := io.ReadAll(body)
		m.Body = string(b)
	}
	x.s.mu.Lock()
	m.N = len(x.s.mails) + 1
	x.s.mails = append(x.s.mails, m)
	x.s.mu.Unlock()
	return nil
}

// label names the mail in the scan.
func (m accMail) label() string { return fmt.Sprintf("mail %d (to %v, %q)", m.N, m.To, m.Subject) }

func accStartMailSink(t *testing.T) *accMailSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &accMailSink{addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &accSMTPSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *accMailSink) all() []accMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]accMail(nil), s.mails...)
}

// wait waits for the n-th (1-based) mail to `to` whose subject contains subject and returns it.
func (d *accDesk) waitMail(to, subject string, n int) accMail {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []accMail
		for _, m := range d.mail.all() {
			if len(m.To) == 1 && m.To[0] == to && strings.Contains(m.Subject, subject) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			var subs []string
			for _, m := range d.mail.all() {
				subs = append(subs, fmt.Sprintf("%v %q", m.To, m.Subject))
			}
			d.t.Fatalf("mail %d to %s about %q did not arrive within 30 s; the sink has %v", n, to, subject, subs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- the host platform's webhook receiver ----

type accHook struct {
	Event  string
	Header http.Header
	Body   string
}

// accHookSink is the host platform's endpoint for RecoveryDesk's events.
type accHookSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	hooks []accHook
}

func accStartHookSink(t *testing.T) *accHookSink {
	t.Helper()
	s := &accHookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.hooks = append(s.hooks, accHook{Event: r.Header.Get(notify.HeaderEvent), Header: r.Header.Clone(), Body: string(b)})
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *accHookSink) all() []accHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]accHook(nil), s.hooks...)
}

// waitHook waits for a delivery of event whose body mentions account, checks its signature
// with the shared secret, and returns it.
func (d *accDesk) waitHook(event, account string) accHook {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, h := range d.hook.all() {
			if h.Event == event && strings.Contains(h.Body, `"`+account+`"`) {
				// The signature's time is the server's (moved) clock: only the HMAC is checked here.
				if err := notify.VerifySignature(d.hookSecret, h.Header.Get(notify.HeaderSignature), []byte(h.Body), time.Now(), 1000*24*time.Hour); err != nil {
					d.t.Fatalf("host webhook %s: %v", event, err)
				}
				return h
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, h := range d.hook.all() {
				got = append(got, h.Event)
			}
			d.t.Fatalf("no host webhook %s for %s within 30 s; got %v", event, account, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- Telegram ----

// waitBot waits until the bot has sent chat a message containing text and returns it.
func (d *accDesk) waitBot(chat int64, text string) bottest.Message {
	d.t.Helper()
	return d.waitBotAfter(chat, 0, text)
}

// waitBotAfter is waitBot among the chat's messages after the first skip.
func (d *accDesk) waitBotAfter(chat int64, skip int, text string) bottest.Message {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sent := d.tg.SentTo(chat)
		for _, m := range sent[min(skip, len(sent)):] {
			if strings.Contains(m.Text, text) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var texts []string
			for _, m := range d.tg.SentTo(chat) {
				texts = append(texts, strconv.Quote(m.Text))
			}
			d.t.Fatalf("chat %d got no message containing %q within 30 s; it got %v", chat, text, texts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- the end of a scenario ----

// finish stops the server and checks what every scenario must leave: a clean exit, `audit
// verify` passing, the SQL invariants, and no secret anywhere it does not belong (the database
// files included: at rest secrets are sealed or hashed).
func (d *accDesk) finish() {
	t := d.t
	t.Helper()
	d.p.Stop(t)
	out, errOut, code := d.cli("audit verify", "audit", "verify")
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
	export := filepath.Join(d.dir, "audit.jsonl")
	if _, errOut, code := d.cli("audit export", "audit", "export", "--out", export); code != 0 {
		t.Errorf("audit export: exit %d\n%s", code, errOut)
	}
	for _, f := range []string{export, export + ".checkpoint"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d.scan.add("audit export "+filepath.Base(f), string(b))
	}
	// At rest, secrets are sealed or hashed: none is in the database files in the clear.
	for _, f := range []string{d.db, d.db + "-wal"} {
		if b, err := os.ReadFile(f); err == nil {
			d.scan.addBinary("database file "+filepath.Base(f), b)
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	d.scan.add("server stdout", d.p.Stdout.String())
	d.scan.add("server log", d.p.Stderr.String())
	for i, m := range d.tg.Sent() {
		d.scan.add(fmt.Sprintf("telegram message %d (%s to chat %d)", i+1, m.Method, m.ChatID), m.Text+"\n"+m.ReplyMarkup)
	}
	for _, m := range d.mail.all() {
		d.scan.add(m.label(), m.Raw+"\n"+m.Body)
	}
	for i, h := range d.hook.all() {
		var head strings.Builder
		h.Header.Write(&head)
		d.scan.add(fmt.Sprintf("host webhook delivery %d (%s)", i+1, h.Event), head.String()+"\n"+h.Body)
	}
	accInvariants(t, d.db)
	d.scan.check(t)
}

// sqlDB opens the desk's database read-only (for checks after the server stopped).
func (d *accDesk) sqlDB() *sql.DB {
	d.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+d.db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { db.Close() })
	return db
}

// query returns the rows of q as strings (NULL as "<nil>").
func accQuery(t *testing.T, db *sql.DB, q string, args ...any) [][]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				row[i] = "<nil>"
			case []byte:
				row[i] = string(x)
			default:
				row[i] = fmt.Sprint(x)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// accOne returns the single value of q.
func accOne(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows := accQuery(t, db, q, args...)
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: %v, want one value", q, rows)
	}
	return rows[0][0]
}

const accActiveStates = `('open','verifying','pending_approval','cooling_off','ready','executed','frozen')`

// accInvariants checks, in SQL on the stopped server's database, what must hold after any
// scenario.
func accInvariants(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if integrity := accOne(t, db, `PRAGMA integrity_check`); integrity != "ok" {
		t.Errorf("integrity_check: %s", integrity)
	}
	// One active recovery per account.
	for _, r := range accQuery(t, db, `SELECT account_id, COUNT(*) FROM tickets WHERE account_id != '' AND state IN `+accActiveStates+` GROUP BY account_id HAVING COUNT(*) > 1`) {
		t.Errorf("invariant: account %s has %s active tickets", r[0], r[1])
	}
	// The audit chain is contiguous from 1.
	if n, max := accOne(t, db, `SELECT COUNT(*) FROM audit_events`), accOne(t, db, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`); n != max {
		t.Errorf("invariant: %s audit events but the highest seq is %s", n, max)
	}
	// Executed ⇔ one ticket.executed event ⇔ a re-enrollment link issued ⇔ its mail queued ⇔
	// the enrollment of before revoked (no recovery code older than the execute survives).
	// Not executed ⇒ none of these.
	for _, r := range accQuery(t, db, `SELECT t.id, t.executed_at IS NOT NULL, t.account_id, COALESCE(t.executed_at, 0),
		(SELECT COUNT(*) FROM audit_events e WHERE e.ticket_id = t.id AND e.action = 'ticket.executed'),
		(SELECT COUNT(*) FROM reenroll_tokens r WHERE r.ticket_id = t.id),
		(SELECT COUNT(*) FROM notices n WHERE n.ticket_id = t.id AND n.kind = 'reenroll_link' AND n.channel = 'email'),
		(SELECT COUNT(*) FROM recovery_codes c WHERE c.account_id = t.account_id AND c.created_at < COALESCE(t.executed_at, 0)),
		t.state, t.requested_by, t.approved_by, t.executed_by
		FROM tickets t`) {
		id, executed := r[0], r[1] == "1"
		events, tokens, mails, oldCodes := r[4], r[5], r[6], r[7]
		state, requested, approved, executedBy := r[8], r[9], r[10], r[11]
		if executed {
			if events != "1" || tokens == "0" || mails == "0" || oldCodes != "0" || executedBy == "" {
				t.Errorf("invariant: executed ticket %s has %s ticket.executed events, %s links, %s link mails, %s recovery codes from before, executed_by %q",
					id, events, tokens, mails, oldCodes, executedBy)
			}
		} else if events != "0" || tokens != "0" || mails != "0" {
			t.Errorf("invariant: ticket %s (not executed) has %s ticket.executed events, %s links, %s link mails", id, events, tokens, mails)
		}
		// Two people: an approved ticket was requested by someone else.
		if approved != "" && (requested == "" || approved == requested) {
			t.Errorf("invariant: ticket %s approved by %q, requested by %q", id, approved, requested)
		}
		switch state {
		case "cooling_off", "ready", "executed":
			if approved == "" {
				t.Errorf("invariant: ticket %s is %s without an approval", id, state)
			}
		}
	}
	// The host platform hears of every reset, and of its hold, once (the desk runs with the host
	// webhook configured).
	for _, r := range accQuery(t, db, `SELECT a.id,
		(SELECT COUNT(*) FROM tickets t WHERE t.account_id = a.id AND t.executed_at IS NOT NULL),
		(SELECT COUNT(*) FROM notices n WHERE n.account_id = a.id AND n.channel = 'webhook' AND n.kind = 'reset.executed'),
		(SELECT COUNT(*) FROM notices n WHERE n.account_id = a.id AND n.channel = 'webhook' AND n.kind = 'hold.set')
		FROM accounts a`) {
		if r[1] != r[2] || r[1] != r[3] {
			t.Errorf("invariant: account %s has %s executed tickets, %s reset.executed and %s hold.set host events", r[0], r[1], r[2], r[3])
		}
	}
	// A frozen ticket was frozen by a veto or a supervisor, on the record.
	for _, r := range accQuery(t, db, `SELECT t.id FROM tickets t WHERE t.state = 'frozen' AND NOT EXISTS
		(SELECT 1 FROM audit_events e WHERE e.ticket_id = t.id AND e.action IN ('ticket.vetoed', 'ticket.frozen'))`) {
		t.Errorf("invariant: ticket %s is frozen without a veto or freeze event", r[0])
	}
	// Throttling: 20 consecutive failures suspend an active factor.
	for _, r := range accQuery(t, db, `SELECT account_id, failures, state FROM factors WHERE failures >= 20 AND state = 'active'`) {
		t.Errorf("invariant: account %s has %s consecutive failures but is %s", r[0], r[1], r[2])
	}
	// No notice gave up.
	for _, r := range accQuery(t, db, `SELECT id, channel, kind FROM notices WHERE state = 'failed'`) {
		t.Errorf("invariant: notice %s (%s, %s) failed for good", r[0], r[1], r[2])
	}
	// Single use: no re-enrollment link is live beside a used one for the same account.
	for _, r := range accQuery(t, db, `SELECT account_id, COUNT(*) FROM reenroll_tokens WHERE used_at IS NULL GROUP BY account_id HAVING COUNT(*) > 1`) {
		t.Errorf("invariant: account %s has %s live re-enrollment links", r[0], r[1])
	}
}

// ---- the secret scan ----

// accScan holds every secret the run produced, with the places (artifact labels) where it may
// appear, and every artifact: logs, answers, bot messages, mails, the audit export.
type accScan struct {
	mu      sync.Mutex
	n       int
	secrets []*accSecret
	arts    []accArtifact
}

type accSecret struct {
	kind    string
	value   string
	allowed map[string]bool
}

type accArtifact struct {
	label, text string
	longOnly    bool // binary data: only secrets longer than a 6-digit code are looked for
}

func (s *accScan) nextLabel(what string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("%s (#%d)", what, s.n)
}

// secret registers value as a secret of kind that may appear only in the artifacts labelled
// allowed; registering it again adds places.
func (s *accScan) secret(kind, value string, allowed ...string) {
	if value == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.secrets {
		if x.value == value {
			for _, a := range allowed {
				x.allowed[a] = true
			}
			return
		}
	}
	x := &accSecret{kind: kind, value: value, allowed: map[string]bool{}}
	for _, a := range allowed {
		x.allowed[a] = true
	}
	s.secrets = append(s.secrets, x)
}

// allow lets value appear in the artifact labelled label too.
func (s *accScan) allow(value, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.secrets {
		if x.value == value {
			x.allowed[label] = true
		}
	}
}

func (s *accScan) add(label, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arts = append(s.arts, accArtifact{label: label, text: text})
}

// addBinary adds data in which short codes could appear by chance (a database file); only the
// longer secrets are looked for in it.
func (s *accScan) addBinary(label string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arts = append(s.arts, accArtifact{label: label, text: string(data), longOnly: true})
}

// contains finds value in text; short values (6-digit codes) only as a whole word, so that a
// code does not "appear" inside a hash or a timestamp.
func accContains(text, value string) bool {
	if len(value) > 8 {
		return strings.Contains(text, value)
	}
	alnum := func(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
	for i := 0; ; {
		j := strings.Index(text[i:], value)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(value)
		if (j == 0 || !alnum(text[j-1])) && (end == len(text) || !alnum(text[end])) {
			return true
		}
		i = j + 1
	}
}

// leaks lists, as "a <kind> appears in <place>", every secret found outside its places; the secret
// itself is never part of the text.
func (s *accScan) leaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, x := range s.secrets {
		for _, a := range s.arts {
			if a.longOnly && len(x.value) <= 8 {
				continue
			}
			if !x.allowed[a.label] && accContains(a.text, x.value) {
				out = append(out, "a "+x.kind+" appears in "+a.label)
			}
		}
	}
	return out
}

// check fails the test for every leak.
func (s *accScan) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	nSecrets, nArts := len(s.secrets), len(s.arts)
	s.mu.Unlock()
	if nArts == 0 || nSecrets == 0 {
		t.Fatal("secret scan: nothing to scan")
	}
	leaks := s.leaks()
	for i, l := range leaks {
		if i == 30 {
			t.Errorf("secret scan: … %d leaks in all", len(leaks))
			break
		}
		t.Errorf("secret scan: %s", l)
	}
	t.Logf("secret scan: %d secrets against %d artifacts, %d leaks", nSecrets, nArts, len(leaks))
	if os.Getenv("RECOVERYDESK_ACCEPTANCE_DEBUG") != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range s.arts {
			t.Logf("scanned: %s (%d bytes)", a.label, len(a.text))
		}
		for _, x := range s.secrets {
			t.Logf("secret: %s, allowed in %d places", x.kind, len(x.allowed))
		}
	}
}
