package console_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// TestPerIPLimiter: 30 wrong codes in a minute from one passed ip, spread so that no account
// reaches its own backoff, block that ip for 5 minutes, even for a right code, without locking
// any account; the host's own requests (no ip) and other addresses go on working.
func TestPerIPLimiter(t *testing.T) {
	e := newEnv(t, envOptions{})
	const attacker = "203.0.113.7"
	type acct struct{ id, secret string }
	var accts []acct
	for i := range 8 {
		id := fmt.Sprintf("spray-%d", i)
		s, _ := e.enroll(t, id)
		accts = append(accts, acct{id, s})
	}
	e.clock.Add(30 * time.Second) // past the steps the confirmations consumed
	verify := func(a acct, code, ip string) response {
		t.Helper()
		body := map[string]any{"code": code}
		if ip != "" {
			body["ip"] = ip
		}
		return e.do(t, req{method: http.MethodPost, path: twoFA(a.id, "/verify"), body: body})
	}
	for i := range 30 { // within 30 s
		if i > 0 {
			e.clock.Add(time.Second)
		}
		a := accts[i%len(accts)] // at most 4 failures per account
		expect(t, verify(a, wrongCode(t, a.secret, e.clock.Now()), attacker), http.StatusUnauthorized, "invalid_code")
	}

	right := codeAt(t, accts[0].secret, e.clock.Now(), 0)
	r := verify(accts[0], right, attacker)
	expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
	if r.header.Get("Retry-After") != "300" || r.num("retry_after_seconds") != 300 {
		t.Errorf("Retry-After %q, body %s", r.header.Get("Retry-After"), r.raw)
	}
	// The same address written as IPv4-mapped IPv6 is the same address.
	expect(t, verify(accts[0], right, "::ffff:"+attacker), http.StatusTooManyRequests, "too_many_attempts")
	// Other endpoints that check codes are blocked for the ip too.
	expect(t, e.do(t, req{method: http.MethodPost, path: twoFA(accts[1].id, "/recovery-code"),
		body: map[string]any{"code": "AAAA-BBBB-CCCC-DDDD", "ip": attacker}}), http.StatusTooManyRequests, "too_many_attempts")

	// The account is not locked: without ip, or from another ip, the right code works.
	expect(t, verify(accts[0], right, ""), http.StatusOK, "")
	expect(t, verify(accts[1], codeAt(t, accts[1].secret, e.clock.Now(), 0), "198.51.100.23"), http.StatusOK, "")
	for _, a := range accts {
		r := e.do(t, req{method: http.MethodGet, path: twoFA(a.id, "")})
		if r.str("state") != "active" {
			t.Errorf("%s: %s", a.id, r.raw)
		}
	}
	for _, a := range accts[2:] {
		expect(t, verify(a, codeAt(t, a.secret, e.clock.Now(), 0), ""), http.StatusOK, "")
	}

	// Five minutes later the address works again.
	e.clock.Add(5 * time.Minute)
	expect(t, verify(accts[0], codeAt(t, accts[0].secret, e.clock.Now(), 0), attacker), http.StatusOK, "")
}

// TestConcurrentVerify: 50 requests with the same valid code at once → exactly one success; the
// rest are refused as replays (401) or throttled (429), never a 5xx. On SQLite and PostgreSQL.
func TestConcurrentVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		e := newEnv(t, envOptions{store: s})
		secret, _ := e.enroll(t, "race")
		e.clock.Add(30 * time.Second)
		code := codeAt(t, secret, e.clock.Now(), 0)
		const n = 50
		statuses := make([]int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				statuses[i] = e.do(t, req{method: http.MethodPost, path: twoFA("race", "/verify"), body: map[string]any{"code": code}}).status
			})
		}
		close(start)
		wg.Wait()
		count := map[int]int{}
		for _, st := range statuses {
			count[st]++
		}
		if count[http.StatusOK] != 1 || count[http.StatusOK]+count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
			t.Fatalf("statuses %v: want exactly one 200 and the rest 401 or 429", count)
		}
	})
}

// TestInteroperability checks the API against independent implementations: zbarimg decodes the
// QR PNG to the same otpauth URI, and oathtool computes the code from that URI's secret, which
// then confirms the enrollment. It runs on the real clock, as oathtool does.
func TestInteroperability(t *testing.T) {
	zbar, errZ := exec.LookPath("zbarimg")
	oath, errO := exec.LookPath("oathtool")
	if errZ != nil || errO != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zbarimg and oathtool are required under CI=true (apt-get install zbar-tools oathtool)")
		}
		t.Skip("zbarimg or oathtool not found; install the Debian packages zbar-tools and oathtool to run this test")
	}
	e := newEnv(t, envOptions{now: time.Now})
	e.createAccount(t, "interop")
	r := e.do(t, req{method: http.MethodPost, path: twoFA("interop", "/enrollment")})
	expect(t, r, http.StatusCreated, "")
	qr, err := base64.StdEncoding.DecodeString(r.str("qr_png"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(file, qr, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "--raw", "-q", file).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	uri := strings.TrimSpace(string(out))
	if uri != r.str("otpauth_uri") {
		t.Fatalf("QR decodes to %q, the API said %q", uri, r.str("otpauth_uri"))
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	secret := u.Query().Get("secret")
	if secret != r.str("secret") {
		t.Fatalf("QR secret %q, API secret %q", secret, r.str("secret"))
	}
	out, err = exec.Command(oath, "--totp", "-b", secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	code := strings.TrimSpace(string(out))
	r = e.do(t, req{method: http.MethodPost, path: twoFA("interop", "/enrollment/confirm"), body: map[string]any{"code": code}})
	expect(t, r, http.StatusOK, "")
	if r.str("state") != "active" {
		t.Fatalf("confirm: %s", r.raw)
	}
	// The confirmation consumed its step; oathtool's code for the next step logs in, reported
	// as 30 s of drift (or 0 if the clock crossed into that step meanwhile).
	r = e.do(t, req{method: http.MethodPost, path: twoFA("interop", "/verify"), body: map[string]any{"code": code}})
	expect(t, r, http.StatusUnauthorized, "invalid_code")
	out, err = exec.Command(oath, "--totp", "-b", "-N", "now + 30 seconds", secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	r = e.do(t, req{method: http.MethodPost, path: twoFA("interop", "/verify"), body: map[string]any{"code": strings.TrimSpace(string(out))}})
	expect(t, r, http.StatusOK, "")
	if d := r.num("drift_seconds"); d != 30 && d != 0 {
		t.Fatalf("verify with the next step's code: %s", r.raw)
	}
}
