package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

func newSecret(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
}

func realCodes(t *testing.T, secret string) func(int64) string {
	t.Helper()
	return func(step int64) string {
		c, err := recovery.CodeAt(secret, step)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// collidingCodes returns a code function over a tiny alphabet, so that steps often share a code.
func collidingCodes(seed uint64) func(int64) string {
	return func(step int64) string {
		r := mrand.New(mrand.NewPCG(seed, uint64(step)))
		return sixDigits(r.IntN(3))
	}
}

// TestChooseStep checks the scheduler's contract over random times (many near step boundaries),
// random last steps and code functions with and without colliding codes: a chosen step is
// greater than last, inside cur−1..cur+1, not cur−1 near the boundary, has a code no other step
// of cur−1..cur+2 shares, and is the smallest such step; and no step is refused that qualifies.
func TestChooseStep(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	codeFuncs := []func(int64) string{realCodes(t, newSecret(t)), collidingCodes(7), collidingCodes(8)}
	for i := range 30000 {
		code := codeFuncs[i%len(codeFuncs)]
		now := base.Add(time.Duration(r.Int64N(int64(10 * time.Minute))))
		if i%3 == 0 { // crowd the last seconds of a step
			cur := recovery.Step(now)
			now = stepStart(cur + 1).Add(-time.Duration(r.Int64N(int64(5 * time.Second))))
		}
		cur := recovery.Step(now)
		last := cur - 4 + r.Int64N(7) // cur−4 … cur+2
		st, ok := chooseStep(now, last, code)

		nearBoundary := stepStart(cur+1).Sub(now) < pastStepGuard
		admissible := func(s int64) bool {
			if s <= last || s < cur-1 || s > cur+1 || (s == cur-1 && nearBoundary) {
				return false
			}
			for x := cur - 1; x <= cur+2; x++ {
				if x != s && code(x) == code(s) {
					return false
				}
			}
			return true
		}
		var want int64
		wantOK := false
		for s := cur - 1; s <= cur+1; s++ {
			if admissible(s) {
				want, wantOK = s, true
				break
			}
		}
		if ok != wantOK || (ok && st != want) {
			t.Fatalf("now=%s cur=%d last=%d: chooseStep = %d, %v; want %d, %v", now, cur, last, st, ok, want, wantOK)
		}
		if ok && (st <= last || st < cur-1 || st > cur+1) {
			t.Fatalf("now=%s cur=%d last=%d: chose step %d outside (last, cur+1] ∩ [cur−1, cur+1]", now, cur, last, st)
		}
		if !ok {
			if next := availableFrom(last, cur); next <= cur {
				t.Fatalf("cur=%d last=%d: parked until step %d, which is not later", cur, last, next)
			}
		}
	}
}

// TestScheduleAgainstServerModel drives accounts through a long run as the verify loop does, and
// checks every valid code against a model of the server (recovery's window order cur, cur−1,
// cur+1; accept only step > last_step) evaluated up to 2.5 s after the client read the clock:
// every valid code is accepted, every wrong code refused, steps strictly increase, and an
// account never has two consecutive failures.
func TestScheduleAgainstServerModel(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	type server struct{ last, fails int64 }
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	var accounts []*account
	var servers []*server
	for range 20 {
		secret := newSecret(t)
		confirm := recovery.Step(now)
		accounts = append(accounts, &account{secret: secret, last: confirm})
		servers = append(servers, &server{last: confirm})
	}
	accepts := func(secret, code string, at time.Time, last int64) (int64, bool) {
		cur := recovery.Step(at)
		for _, st := range []int64{cur, cur - 1, cur + 1} {
			if c, _ := recovery.CodeAt(secret, st); c == code {
				return st, st > last
			}
		}
		return 0, false
	}
	valid, wrong, parked := 0, 0, 0
	credit := 0.0
	for range 20000 {
		now = now.Add(time.Duration(r.Int64N(int64(300 * time.Millisecond))))
		serverTime := now.Add(time.Duration(r.Int64N(int64(2500 * time.Millisecond))))
		k := r.IntN(len(accounts))
		a, s := accounts[k], servers[k]
		m, st := nextMove(now, a, &credit, 0.45) // a high wrong share presses on the guard
		switch m {
		case moveWrong:
			c := wrongCode(recovery.Step(now), a.code, mrand.IntN)
			if _, ok := accepts(a.secret, c, serverTime, s.last); ok {
				t.Fatalf("wrong code accepted")
			}
			a.fails++
			s.fails++
			wrong++
		case moveValid:
			if st <= a.last {
				t.Fatalf("step %d not after last %d", st, a.last)
			}
			a.last = st
			matched, ok := accepts(a.secret, a.code(st), serverTime, s.last)
			if !ok || matched != st {
				t.Fatalf("valid code of step %d (client step %d, server step %d, last %d) refused or matched %d",
					st, recovery.Step(now), recovery.Step(serverTime), s.last, matched)
			}
			s.last, s.fails, a.fails = st, 0, 0
			valid++
		default:
			parked++
			continue
		}
		if s.fails > 1 {
			t.Fatalf("account reached %d consecutive failures", s.fails)
		}
	}
	if valid == 0 || wrong == 0 || parked == 0 {
		t.Fatalf("the simulation did not exercise every path: valid=%d wrong=%d parked=%d", valid, wrong, parked)
	}
}

func TestWrongCode(t *testing.T) {
	code := realCodes(t, newSecret(t))
	for cur := int64(50000000); cur < 50002000; cur++ {
		c := wrongCode(cur, code, mrand.IntN)
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("wrong code %q is not 6 digits", c)
		}
		for x := cur - 1; x <= cur+2; x++ {
			if c == code(x) {
				t.Fatalf("wrong code equals the code of step %d (cur %d)", x, cur)
			}
		}
	}
	// A random source that first offers exactly the valid codes must be skipped past.
	cur := int64(1000)
	var offers []int
	for x := cur - 1; x <= cur+2; x++ {
		n, err := strconv.Atoi(code(x)) // decimal, leading zeros and all
		if err != nil {
			t.Fatal(err)
		}
		offers = append(offers, n)
	}
	offers = append(offers, 42)
	intn := func(int) int { n := offers[0]; offers = offers[1:]; return n }
	if got := wrongCode(cur, code, intn); got != "000042" {
		t.Fatalf("wrongCode = %q, want 000042 after skipping the four valid codes", got)
	}
}

func TestDefaultAccounts(t *testing.T) {
	tests := []struct {
		clients int
		d       time.Duration
		ratio   float64
		want    int
		perAcct float64 // codes each account is counted on for
	}{
		{32, 10 * time.Second, 0.8, 25600, 2},    // 32×200×10×0.8 = 51200 valid codes, 2 each
		{32, 30 * time.Second, 0.8, 51200, 3},    // 153600 / (2 + 1 step boundary)
		{32, 60 * time.Second, 0.8, 76800, 4},    // 307200 / (2 + 2)
		{8, 45 * time.Second, 0.8, 19200, 3},     // 57600 / 3
		{1, 10 * time.Second, 1, 1000, 2},        // 2000 / 2
		{64, 10 * time.Second, 0.5, 32000, 2},    // 64000 / 2
		{32, 10 * time.Second, 0.8001, 25604, 2}, // 25603.2 rounds up
		{4, 10 * time.Millisecond, 0.8, 16, 2},   // at least 4 per client
	}
	for _, tt := range tests {
		got := defaultAccounts(tt.clients, tt.d, tt.ratio)
		if got != tt.want {
			t.Errorf("defaultAccounts(%d, %s, %.4f) = %d, want %d", tt.clients, tt.d, tt.ratio, got, tt.want)
		}
		if per := codesPerAccount(tt.d); per != tt.perAcct {
			t.Errorf("codesPerAccount(%s) = %v, want %v", tt.d, per, tt.perAcct)
		}
		// The property the count exists for: at the assumed rate no account is asked for more
		// valid codes than it has.
		demand := float64(tt.clients) * assumedPerClientRPS * tt.d.Seconds() * tt.ratio
		if demand/float64(got) > codesPerAccount(tt.d)+1e-9 {
			t.Errorf("defaultAccounts(%d, %s): %.2f codes per account > %v", tt.clients, tt.d, demand/float64(got), codesPerAccount(tt.d))
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0.001, 1 * time.Millisecond},
		{append(hundred, 5*time.Second), 99, 100 * time.Millisecond}, // 101 values: rank ⌈99.99⌉ = 100
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.in), tt.p, got, tt.want)
		}
	}
}

func TestProcParsing(t *testing.T) {
	stat := "4242 (recovery desk) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 12 0 99 123456 789\n"
	d, err := parseStatCPU([]byte(stat))
	if err != nil || d != 3800*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v; want 3.8s", d, err)
	}
	status := "Name:\trecoverydesk\nVmPeak:\t 900000 kB\nVmHWM:\t  102400 kB\nVmRSS:\t   51200 kB\n"
	peak, rss, err := parseStatusMemory(strings.NewReader(status))
	if err != nil || peak != 100 || rss != 50 {
		t.Fatalf("parseStatusMemory = %v, %v, %v; want 100, 50", peak, rss, err)
	}
	if _, _, err := parseStatusMemory(strings.NewReader("Name:\tzombie\n")); err == nil {
		t.Fatal("parseStatusMemory accepted a status without VmHWM")
	}
	cpu, cpuErr := cpuTime("self")
	if cpuErr != nil {
		if runtime.GOOS == "linux" || os.Getenv("CI") == "true" {
			t.Fatalf("cpuTime(self): %v", cpuErr)
		}
		t.Skipf("no /proc here: %v", cpuErr)
	}
	if cpu <= 0 {
		t.Fatalf("cpuTime(self) = %v, want the CPU this test process has used", cpu)
	}
}

func TestFlags(t *testing.T) {
	getenv := func(k string) string {
		if k == "RDLOAD_API_KEY" {
			return "from-env"
		}
		return ""
	}
	var stderr bytes.Buffer
	c, err := parseFlags(nil, getenv, &stderr)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.apiKey != "from-env" || c.clients != 32 || c.duration != 10*time.Second || c.validRatio != 0.8 ||
		c.accounts != defaultAccounts(32, 10*time.Second, 0.8) || !strings.HasPrefix(c.prefix, "rdload-") ||
		c.base.String() != "http://127.0.0.1:8080" || !c.waitStep {
		t.Fatalf("defaults: %+v", c)
	}
	if c, _ := parseFlags([]string{"--api-key", "flag"}, getenv, &stderr); c.apiKey != "flag" {
		t.Fatalf("--api-key does not win over the environment")
	}
	for _, args := range [][]string{
		{"--duration", "5s"},
		{"--valid-ratio", "0.3"},
		{"--clients", "0"},
		{"--url", "ftp://x"},
		{"--url", "http://user:hunter2@127.0.0.1:8080"},
		{"--prefix", "a/b"},
		{"--ip", "not-an-ip"},
		{"extra"},
	} {
		if _, err := parseFlags(args, getenv, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", args, err)
		} else if strings.Contains(err.Error()+stderr.String(), "hunter2") {
			t.Errorf("parseFlags(%q) printed the URL's password", args)
		}
	}
	if _, err := parseFlags([]string{"--duration", "5s", "--allow-short"}, getenv, &stderr); err != nil {
		t.Errorf("--allow-short: %v", err)
	}
	if _, err := parseFlags(nil, func(string) string { return "" }, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("no API key: %v, want a usage error", err)
	}
	stderr.Reset()
	if _, err := parseFlags([]string{"--help"}, getenv, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "healthz_rps") {
		t.Errorf("--help: %v\n%s", err, stderr.String())
	}
}

// fakeServer is a strict in-process stand-in for the host API: it enforces the window, replay and
// e-mail rules the real server has, and records the highest consecutive-failure count any account
// reached.
type fakeServer struct {
	mu       sync.Mutex
	key      string
	accounts map[string]*fakeAccount
	emails   map[string]bool
	maxFails int
	verifies int
}

type fakeAccount struct {
	secret, pending string
	last            int64
	fails           int
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, status int, code string) {
		answer(w, status, map[string]string{"error": code, "message": code})
	}
	authed := func(h func(http.ResponseWriter, *http.Request, map[string]string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+f.key {
				fail(w, 401, "unauthorized")
				return
			}
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			f.mu.Lock()
			defer f.mu.Unlock()
			h(w, r, body)
		}
	}
	match := func(secret, code string) (int64, bool) {
		cur := recovery.Step(time.Now())
		for _, st := range []int64{cur, cur - 1, cur + 1} {
			if c, _ := recovery.CodeAt(secret, st); c == code {
				return st, true
			}
		}
		return 0, false
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("PUT /api/v1/accounts/{id}", authed(func(w http.ResponseWriter, r *http.Request, b map[string]string) {
		id := r.PathValue("id")
		if recovery.CheckAccountID(id) != nil || f.emails[strings.ToLower(b["email"])] {
			fail(w, 400, "invalid_request")
			return
		}
		f.emails[strings.ToLower(b["email"])] = true
		f.accounts[id] = &fakeAccount{}
		answer(w, 201, map[string]string{"id": id})
	}))
	mux.HandleFunc("POST /api/v1/accounts/{id}/2fa/enrollment", authed(func(w http.ResponseWriter, r *http.Request, b map[string]string) {
		a := f.accounts[r.PathValue("id")]
		if a == nil {
			fail(w, 404, "not_found")
			return
		}
		raw := make([]byte, 20)
		_, _ = rand.Read(raw)
		a.pending = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
		answer(w, 201, map[string]string{"secret": a.pending})
	}))
	mux.HandleFunc("POST /api/v1/accounts/{id}/2fa/enrollment/confirm", authed(func(w http.ResponseWriter, r *http.Request, b map[string]string) {
		a := f.accounts[r.PathValue("id")]
		if a == nil || a.pending == "" {
			fail(w, 409, "not_enrolled")
			return
		}
		st, ok := match(a.pending, b["code"])
		if !ok {
			fail(w, 422, "invalid_code")
			return
		}
		a.secret, a.pending, a.last = a.pending, "", st
		answer(w, 200, map[string]any{"state": "active"})
	}))
	mux.HandleFunc("POST /api/v1/accounts/{id}/2fa/verify", authed(func(w http.ResponseWriter, r *http.Request, b map[string]string) {
		a := f.accounts[r.PathValue("id")]
		if a == nil || a.secret == "" {
			fail(w, 409, "not_enrolled")
			return
		}
		f.verifies++
		if a.fails >= 4 {
			fail(w, 429, "too_many_attempts")
			return
		}
		if st, ok := match(a.secret, b["code"]); ok && st > a.last {
			a.last, a.fails = st, 0
			answer(w, 200, map[string]any{"ok": true, "drift_seconds": 0})
			return
		}
		a.fails++
		f.maxFails = max(f.maxFails, a.fails)
		fail(w, 401, "invalid_code")
	}))
	return mux
}

var resultLine = regexp.MustCompile(`^verify_rps=\d+ healthz_rps=\d+ ratio=\d+\.\d{3} p50_ms=\d+\.\d{2} p99_ms=\d+\.\d{2} errors=(\d+)$`)

// TestRunAgainstStrictServer runs the whole tool against the fake server: no request may be
// refused for replay, window or throttling, and the result line has its exact shape.
func TestRunAgainstStrictServer(t *testing.T) {
	f := &fakeServer{key: "test-key-0123456789", accounts: map[string]*fakeAccount{}, emails: map[string]bool{}}
	srv := httptest.NewServer(f.handler())
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	cfg, err := parseFlags([]string{"--url", srv.URL, "--clients", "4", "--duration", "2s", "--allow-short",
		"--accounts", "300", "--ip", "per-account"}, func(k string) string {
		if k == "RDLOAD_API_KEY" {
			return f.key
		}
		return ""
	}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.waitStep = false // up to 30 s otherwise; without it, accounts start with one unused code
	if err := execute(context.Background(), cfg, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	m := resultLine.FindStringSubmatch(last)
	if m == nil || m[1] != "0" {
		t.Fatalf("last line %q does not match %s with errors=0\n%s", last, resultLine, stdout.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxFails > 1 {
		t.Errorf("an account reached %d consecutive failures", f.maxFails)
	}
	if f.verifies == 0 || len(f.accounts) != 300 {
		t.Errorf("verifies=%d accounts=%d", f.verifies, len(f.accounts))
	}
	if !strings.Contains(stdout.String(), "valid_share=") {
		t.Errorf("no verify line:\n%s", stdout.String())
	}
	t.Logf("\n%s%s", stdout.String(), stderr.String())
}

// TestRunCountsErrors checks that a server that refuses valid codes makes the run fail, with the
// result line still printed.
func TestRunCountsErrors(t *testing.T) {
	f := &fakeServer{key: "test-key-0123456789", accounts: map[string]*fakeAccount{}, emails: map[string]bool{}}
	h := f.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/2fa/verify") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	cfg, err := parseFlags([]string{"--url", srv.URL, "--api-key", f.key, "--clients", "2", "--duration", "300ms",
		"--allow-short", "--accounts", "20"}, func(string) string { return "" }, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.waitStep = false
	if err := execute(context.Background(), cfg, &stdout, &stderr); !errors.Is(err, errFailedRun) {
		t.Fatalf("run = %v, want errFailedRun", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if m := resultLine.FindStringSubmatch(lines[len(lines)-1]); m == nil || m[1] == "0" {
		t.Fatalf("last line %q: want the result line with errors > 0", lines[len(lines)-1])
	}
	if !strings.Contains(stderr.String(), "rdload: error: valid code answered HTTP 500") {
		t.Errorf("the first error was not printed:\n%s", stderr.String())
	}
}

// TestAccountsFileReused runs the tool twice against the strict fake server with one
// --accounts-file: the first run enrolls and saves its accounts (mode 0600), the second enrolls
// none and every code it sends is still fresh for the server (no replay, no backoff).
func TestAccountsFileReused(t *testing.T) {
	f := &fakeServer{key: "test-key-0123456789", accounts: map[string]*fakeAccount{}, emails: map[string]bool{}}
	srv := httptest.NewServer(f.handler())
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "accounts.json")
	// The first run is short, so that its accounts keep unused codes of the current step for the
	// second (without waitStep both may run within one step).
	runOnce := func(d string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cfg, err := parseFlags([]string{"--url", srv.URL, "--api-key", f.key, "--clients", "4", "--duration", d,
			"--allow-short", "--accounts", "200", "--accounts-file", path}, func(string) string { return "" }, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.waitStep = false
		if err := execute(context.Background(), cfg, &stdout, &stderr); err != nil {
			t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	first := runOnce("1ms")
	if !strings.Contains(first, "setup: accounts=200 requests=600") {
		t.Fatalf("first run did not enroll 200 accounts:\n%s", first)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("accounts file mode %v, want 0600", st.Mode().Perm())
	}
	f.mu.Lock()
	verifies := f.verifies
	f.mu.Unlock()

	second := runOnce("1s")
	if !strings.Contains(second, "setup: accounts=200 reused from "+path) {
		t.Fatalf("second run did not reuse the file:\n%s", second)
	}
	lines := strings.Split(strings.TrimSpace(second), "\n")
	if m := resultLine.FindStringSubmatch(lines[len(lines)-1]); m == nil || m[1] != "0" {
		t.Fatalf("second run: last line %q, want errors=0", lines[len(lines)-1])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.accounts) != 200 || f.verifies <= verifies || f.maxFails > 1 {
		t.Errorf("after the second run: accounts=%d verifies %d→%d maxFails=%d", len(f.accounts), verifies, f.verifies, f.maxFails)
	}

	// Another target's file is refused rather than spending codes elsewhere.
	cfg, err := parseFlags([]string{"--url", "http://127.0.0.1:1", "--api-key", f.key, "--accounts-file", path},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newLoader(cfg, io.Discard).loadAccounts(path); err == nil || !strings.Contains(err.Error(), "live behind") {
		t.Errorf("loading for another target: %v", err)
	}
}

// TestRoundsReportMedian runs three rounds against the strict fake server (without the waits for
// fresh codes between rounds, which take up to a minute each): no code is replayed, each round
// prints its own result, the "rounds:" line lists the three ratios, and the last line carries the median
// one with errors=0.
func TestRoundsReportMedian(t *testing.T) {
	f := &fakeServer{key: "test-key-0123456789", accounts: map[string]*fakeAccount{}, emails: map[string]bool{}}
	srv := httptest.NewServer(f.handler())
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	cfg, err := parseFlags([]string{"--url", srv.URL, "--api-key", f.key, "--clients", "4", "--duration", "300ms",
		"--allow-short", "--accounts", "100", "--rounds", "3"}, func(string) string { return "" }, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.waitStep = false // no round waits for fresh codes: later rounds may find every account parked
	if err := execute(context.Background(), cfg, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	var ratios []float64
	for _, m := range regexp.MustCompile(`(?m)^round_result: verify_rps=\d+ healthz_rps=\d+ ratio=(\d+\.\d{3})$`).FindAllStringSubmatch(out, -1) {
		r, _ := strconv.ParseFloat(m[1], 64)
		ratios = append(ratios, r)
	}
	if len(ratios) != 3 {
		t.Fatalf("want 3 round results, got %d:\n%s", len(ratios), out)
	}
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	want := fmt.Sprintf("rounds: n=3 ratio_min=%.3f ratio_median=%.3f ratio_max=%.3f ratios=%.3f,%.3f,%.3f",
		sorted[0], sorted[1], sorted[2], ratios[0], ratios[1], ratios[2])
	if !strings.Contains(out, want+"\n") {
		t.Errorf("no line %q in:\n%s", want, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if m := resultLine.FindStringSubmatch(last); m == nil || m[1] != "0" || !strings.Contains(last, fmt.Sprintf(" ratio=%.3f ", sorted[1])) {
		t.Errorf("last line %q: want the median ratio %.3f and errors=0", last, sorted[1])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxFails > 1 {
		t.Errorf("an account reached %d consecutive failures", f.maxFails)
	}
}

// TestMedianRound checks which round the result line reports: the median by ratio, the lower
// middle one for an even count, with its own rates.
func TestMedianRound(t *testing.T) {
	rounds := []roundResult{{verifyRPS: 300, ratio: 0.30}, {verifyRPS: 400, ratio: 0.40}, {verifyRPS: 350, ratio: 0.35}}
	med, line := medianRound(rounds)
	if med.ratio != 0.35 || med.verifyRPS != 350 {
		t.Errorf("median of 0.30, 0.40, 0.35: %+v", med)
	}
	if want := "rounds: n=3 ratio_min=0.300 ratio_median=0.350 ratio_max=0.400 ratios=0.300,0.400,0.350"; line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	rounds = append(rounds, roundResult{verifyRPS: 200, ratio: 0.20})
	if med, _ := medianRound(rounds); med.ratio != 0.30 || med.verifyRPS != 300 {
		t.Errorf("median of 0.30, 0.40, 0.35, 0.20 (lower middle 0.30): %+v", med)
	}
	if med, _ := medianRound(rounds[:1]); med.ratio != 0.30 {
		t.Errorf("one round: %+v", med)
	}
}
