package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/recoverydesk/recoverydesk/bot/bottest"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// The scale-out test (issue 7): two `recoverydesk serve` processes against one PostgreSQL
// database. Its helpers are prefixed with scale.

const (
	scaleAPIKey   = "scale-host-key-0123456789abcdefghijklmnop" // ≥ 32 characters
	scaleBotToken = "555007:AAscaleOUTtokenNEVERlogged"
	// scaleLockRetry is bot/poll.go's lockRetry: how often a replica without the poll lock tries
	// to take it.
	scaleLockRetry = 5 * time.Second
)

// scaleTOTP are the parameters of every enrollment (security.md: SHA-1, 6 digits, 30 s).
var scaleTOTP = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// scaleReplica is one serve process, with its own proxy in front of the fake Bot API so that
// the getUpdates calls of each replica can be told apart.
type scaleReplica struct {
	name  string
	p     *proc
	polls *atomic.Int64 // getUpdates requests this replica sent
}

func (r *scaleReplica) pollingLogged() bool {
	return strings.Contains(r.p.Stderr.String(), `"msg":"telegram polling started"`)
}

// TestScaleOutPostgres: two replicas on one fresh PostgreSQL database, both with the Telegram bot
// in polling mode. The state that guards codes is shared through the database, so
//   - the same code sent to both at once is accepted once (20 rounds, each on a fresh account);
//   - failed codes sent alternately to both add up to one counter: the 5th starts the backoff
//     that both replicas enforce, and the 20th suspends the factor on both;
//   - 400 concurrent writes split across both leave one contiguous audit chain that
//     `audit verify` accepts, and no failure count is lost;
//   - exactly one replica polls Telegram (the advisory lock), and when it is killed the other
//     takes over within the lock's retry and answers the next message.
func TestScaleOutPostgres(t *testing.T) {
	_, dsn := storetest.Postgres(t) // skips without RECOVERYDESK_TEST_POSTGRES (fails under CI=true)
	bin := rdtestBinary(t)
	db := scaleOpenDB(t, dsn)
	tg := bottest.New(t, scaleBotToken)
	// No RECOVERYDESK_AUDIT_KEY: serve does not sign, and audit verify needs none.
	env := map[string]string{
		"RECOVERYDESK_DB":             dsn,
		"RECOVERYDESK_KEYS":           "k1:" + scaleRandomKey(t),
		"RECOVERYDESK_ADDR":           "127.0.0.1:0",
		"RECOVERYDESK_API_KEYS":       "host=" + scaleAPIKey,
		"RECOVERYDESK_TELEGRAM_TOKEN": scaleBotToken,
	}
	a := scaleStart(t, bin, "A", env, tg)
	b := scaleStart(t, bin, "B", env, tg)
	bListening := time.Now() // B's bot was started before it listened
	reps := []*scaleReplica{a, b}
	bases := []string{a.p.Base, b.p.Base}
	for _, r := range reps {
		if log := r.p.Stderr.String(); !strings.Contains(log, `"msg":"telegram bot started","mode":"polling"`) ||
			!strings.Contains(log, `"dialect":"postgres"`) {
			t.Fatalf("replica %s did not start the bot in polling mode on PostgreSQL:\n%s", r.name, tail(log, 4000))
		}
	}

	t.Run("same code to both at once is accepted once", func(t *testing.T) {
		const rounds = 20
		secrets := scaleEnrollAll(t, bases, "scale-same", rounds)
		for i := range rounds {
			id := fmt.Sprintf("scale-same-%d", i)
			// The confirmation consumed the step of the code it was given (≤ the current step);
			// the next step's code is inside the ±1 window and unused.
			code, err := totp.GenerateCodeCustom(secrets[id], time.Now().Add(30*time.Second), scaleTOTP)
			if err != nil {
				t.Fatal(err)
			}
			var got [2]scaleResp
			var errs [2]error
			var wg sync.WaitGroup
			fire := make(chan struct{})
			for j, base := range bases {
				wg.Go(func() {
					<-fire
					got[j], errs[j] = scaleDo(http.MethodPost, base+"/api/v1/accounts/"+id+"/2fa/verify", map[string]string{"code": code})
				})
			}
			close(fire)
			wg.Wait()
			for j := range got {
				if errs[j] != nil {
					t.Fatalf("round %d, replica %s: %v", i, reps[j].name, errs[j])
				}
			}
			ok, refused := 0, 0
			for _, r := range got {
				switch r.status {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
					refused++
				}
			}
			if ok != 1 || refused != 1 {
				t.Fatalf("round %d: A answered %d %s, B answered %d %s; want one 200 and one 401",
					i, got[0].status, got[0].raw, got[1].status, got[1].raw)
			}
			// The refusal is the replay, recorded as such in the shared audit chain.
			var verified, replayed int
			if err := db.QueryRow(`SELECT
				count(*) FILTER (WHERE action = 'totp.verified'),
				count(*) FILTER (WHERE action = 'totp.failed' AND details LIKE '%"reason":"replayed"%')
				FROM audit_events WHERE target_id = $1`, id).Scan(&verified, &replayed); err != nil {
				t.Fatal(err)
			}
			if verified != 1 || replayed != 1 {
				t.Errorf("round %d: audit has %d totp.verified and %d replayed totp.failed events, want 1 and 1", i, verified, replayed)
			}
		}
	})

	t.Run("audit chain stays one chain under concurrent writes to both", func(t *testing.T) {
		const workers, ops, pool = 8, 50, 50
		secrets := scaleEnrollAll(t, bases, "scale-audit-pool", pool)
		var before int64
		if err := db.QueryRow("SELECT count(*) FROM audit_events").Scan(&before); err != nil {
			t.Fatal(err)
		}
		// Each worker alternates replicas and operations: an upsert of its own account (one
		// account.created/updated event each) and a wrong code for a pool account (one
		// totp.failed event each). 200 wrong codes over 50 accounts is 4 per account, below the
		// backoff, so every one is evaluated and recorded; pairs of workers share accounts, so
		// failures on one account race across both replicas.
		var written atomic.Int64
		errs := make(chan error, workers*ops)
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				for i := range ops {
					base := bases[(g+i)%2]
					if i%2 == 0 {
						id := fmt.Sprintf("scale-audit-w%d", g)
						r, err := scaleDo(http.MethodPut, base+"/api/v1/accounts/"+id,
							map[string]string{"email": id + "@example.com", "display_name": fmt.Sprintf("Worker %d op %d", g, i)})
						if err == nil && r.status != http.StatusOK && r.status != http.StatusCreated {
							err = fmt.Errorf("PUT %s on %s: %d %s", id, base, r.status, r.raw)
						}
						if err != nil {
							errs <- err
							continue
						}
						written.Add(1)
						continue
					}
					id := fmt.Sprintf("scale-audit-pool-%d", (g*ops/2+i/2)%pool)
					r, err := scaleDo(http.MethodPost, base+"/api/v1/accounts/"+id+"/2fa/verify",
						map[string]string{"code": scaleWrongCode(secrets[id], time.Now())})
					if err == nil && r.status != http.StatusUnauthorized {
						err = fmt.Errorf("wrong code for %s on %s: %d %s, want 401", id, base, r.status, r.raw)
					}
					if err != nil {
						errs <- err
						continue
					}
					written.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		n := scaleCheckChain(t, db, bin, env)
		t.Logf("%d audit events, seq 1..%d, after %d concurrent writes across both replicas", n, n, written.Load())
		if want := before + written.Load(); n != want {
			t.Errorf("the chain has %d events, want %d (%d before + %d acknowledged writes, one event each)", n, want, before, written.Load())
		}
		// No count was lost when failures on one account raced across the replicas.
		rows, err := db.Query("SELECT account_id, failures FROM factors WHERE account_id LIKE 'scale-audit-pool-%' AND failures <> 4")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var failures int
			if err := rows.Scan(&id, &failures); err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s has %d consecutive failures, want 4", id, failures)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})

	// This case moves both processes' clocks hours ahead: it runs after the cases that compute
	// codes from the real time.
	t.Run("throttle counters add up across both", func(t *testing.T) {
		const id = "scale-throttle"
		secret := scaleEnrollAll(t, bases, id, 1)[id+"-0"]
		acct := id + "-0"
		wrong := func(i int) scaleResp {
			t.Helper()
			base := bases[i%2]
			return scaleMust(t, http.MethodPost, base+"/api/v1/accounts/"+acct+"/2fa/verify",
				map[string]string{"code": scaleWrongCode(secret, scaleServerNow(t, base))})
		}
		// The next attempt on either replica is refused with 429 and a Retry-After of at most
		// the backoff (and not much less: only the requests' own time has passed).
		throttled := func(failures int) {
			t.Helper()
			want := int(scaleBackoff(failures) / time.Second)
			for j, base := range bases {
				r := scaleMust(t, http.MethodPost, base+"/api/v1/accounts/"+acct+"/2fa/verify",
					map[string]string{"code": scaleWrongCode(secret, scaleServerNow(t, base))})
				ra, _ := strconv.Atoi(r.header.Get("Retry-After"))
				if r.status != http.StatusTooManyRequests || ra < want-5 || ra > want {
					t.Fatalf("after %d failures, replica %s answered %d (Retry-After %q) %s; want 429 with Retry-After ≈ %d",
						failures, reps[j].name, r.status, r.header.Get("Retry-After"), r.raw, want)
				}
			}
		}
		// Failures 1 to 5 alternate between the replicas; each is evaluated (401). The 5th
		// starts the 30 s backoff.
		for i := 1; i <= 5; i++ {
			if r := wrong(i); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d on replica %s: %d %s, want 401", i, reps[i%2].name, r.status, r.raw)
			}
		}
		throttled(5)
		// Each further failure, once the backoff has passed on both clocks, doubles it; the 20th
		// suspends the factor.
		for i := 6; i <= 20; i++ {
			d := scaleBackoff(i-1) + time.Second
			for _, base := range bases {
				advanceClock(t, base, d)
			}
			if r := wrong(i); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d on replica %s: %d %s, want 401", i, reps[i%2].name, r.status, r.raw)
			}
			if i < 20 {
				throttled(i)
			}
		}
		for j, base := range bases {
			r := scaleMust(t, http.MethodPost, base+"/api/v1/accounts/"+acct+"/2fa/verify",
				map[string]string{"code": scaleWrongCode(secret, scaleServerNow(t, base))})
			if r.status != http.StatusLocked {
				t.Errorf("after 20 failures, replica %s answered %d %s; want 423 suspended", reps[j].name, r.status, r.raw)
			}
			st := scaleMust(t, http.MethodGet, base+"/api/v1/accounts/"+acct+"/2fa", nil)
			if st.body["state"] != "suspended" {
				t.Errorf("replica %s reports state %v, want suspended", reps[j].name, st.body["state"])
			}
		}
		var failed, suspended int
		if err := db.QueryRow(`SELECT count(*) FILTER (WHERE action = 'totp.failed'), count(*) FILTER (WHERE action = 'factor.suspended')
			FROM audit_events WHERE target_id = $1`, acct).Scan(&failed, &suspended); err != nil {
			t.Fatal(err)
		}
		if failed != 20 || suspended != 1 {
			t.Errorf("audit: %d totp.failed and %d factor.suspended events, want 20 and 1 (throttled attempts are not counted)", failed, suspended)
		}
	})

	t.Run("bot polls on exactly one replica and fails over", func(t *testing.T) {
		// The replica without the lock tries again every lockRetry: once that much more time
		// has passed since B started, both have tried at least twice, and a second poller
		// would show.
		if wait := scaleLockRetry + time.Second - time.Since(bListening); wait > 0 {
			time.Sleep(wait)
		}
		holder, other := a, b
		if b.pollingLogged() {
			holder, other = b, a
		}
		if !holder.pollingLogged() || other.pollingLogged() || holder.polls.Load() == 0 || other.polls.Load() != 0 {
			t.Fatalf("want exactly one polling replica: A logged polling %v and sent %d getUpdates, B %v and %d",
				a.pollingLogged(), a.polls.Load(), b.pollingLogged(), b.polls.Load())
		}
		const before, after = 7101, 7102
		tg.SendText(before, "u", "/start")
		if m := tg.WaitSent(t, before, 1, 15*time.Second)[0]; len(m.Buttons) != 3 {
			t.Fatalf("greeting before the failover: %+v", m)
		}

		holder.p.Kill() // SIGKILL: no release, no goodbye; PostgreSQL ends its session and frees the lock
		killed := time.Now()
		deadline := killed.Add(scaleLockRetry + 5*time.Second)
		for !other.pollingLogged() {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s did not take over polling within %s of the kill:\n%s",
					other.name, time.Since(killed).Round(time.Millisecond), tail(other.p.Stderr.String(), 4000))
			}
			time.Sleep(20 * time.Millisecond)
		}
		takeover := time.Since(killed)
		t.Logf("replica %s took over polling %s after replica %s was killed", other.name, takeover.Round(time.Millisecond), holder.name)

		// Only the survivor is left to fetch and answer this one.
		killedPolls := holder.polls.Load()
		tg.SendText(after, "u", "/start")
		if m := tg.WaitSent(t, after, 1, 15*time.Second)[0]; len(m.Buttons) != 3 {
			t.Fatalf("greeting after the failover: %+v", m)
		}
		if holder.polls.Load() != killedPolls || other.polls.Load() == 0 {
			t.Errorf("after the kill: %s sent %d more getUpdates, %s %d in all", holder.name,
				holder.polls.Load()-killedPolls, other.name, other.polls.Load())
		}
		if n := len(tg.SentTo(before)); n != 1 {
			t.Errorf("the chat that wrote before the failover got %d messages, want 1 (an update processed twice?)", n)
		}
	})

	// Everything above, the throttling and the bot's updates and replies included, is still one
	// chain. The replicas are stopped first (SIGTERM; the survivor must exit cleanly), so that
	// no dispatcher appends while the chain is counted.
	for _, r := range reps {
		if !r.p.Exited() {
			r.p.Stop(t)
		}
	}
	if n := scaleCheckChain(t, db, bin, env); !scaleQuiet(t, db, n) {
		t.Errorf("audit verify reported %d events, but the stopped desk's table has more rows", n)
	}
	for _, r := range reps {
		if out := r.p.Stdout.String() + r.p.Stderr.String(); strings.Contains(out, scaleBotToken) || strings.Contains(out, scaleAPIKey) {
			t.Errorf("a secret appears in the output of replica %s", r.name)
		}
	}
}

// scaleStart starts one serve process whose Bot API calls go through a counting proxy to tg.
func scaleStart(t *testing.T, bin, name string, env map[string]string, tg *bottest.Server) *scaleReplica {
	t.Helper()
	target, err := url.Parse(tg.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := &scaleReplica{name: name, polls: &atomic.Int64{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// A killed replica's open long poll ends with a cancelled upstream request: expected, not logged.
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/getUpdates") {
			r.polls.Add(1)
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.p = startProc(t, bin, t.TempDir(), with(env, "RECOVERYDESK_TELEGRAM_API", srv.URL+"/bot%s/%s"), true, "serve")
	return r
}

// scaleCheckChain runs `audit verify` with the binary and checks that it accepts the chain, that
// the count it reports is the number of rows, and that the rows are numbered 1..N without a gap.
// It returns N.
func scaleCheckChain(t *testing.T, db *sql.DB, bin string, env map[string]string) int64 {
	t.Helper()
	verifyEnv := map[string]string{"RECOVERYDESK_DB": env["RECOVERYDESK_DB"], "RECOVERYDESK_KEYS": env["RECOVERYDESK_KEYS"]}
	p := startProc(t, bin, t.TempDir(), verifyEnv, false, "audit", "verify")
	err, ended := p.Wait(60 * time.Second)
	if !ended || err != nil {
		t.Fatalf("audit verify: ended %v, %v\nstdout:\n%s\nstderr:\n%s", ended, err, p.Stdout, tail(p.Stderr.String(), 4000))
	}
	m := okRE.FindStringSubmatch(p.Stdout.String())
	if m == nil {
		t.Fatalf("audit verify printed:\n%s", p.Stdout)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	// Replicas may append while verify runs: the rows it walked are seq 1..n, and the table,
	// read afterwards, holds them (the last with verify's head hash) and no gap up to its end.
	var rows, lo, hi, upToN int64
	var head string
	if err := db.QueryRow(`SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0),
		count(*) FILTER (WHERE seq <= $1), coalesce(max(hash) FILTER (WHERE seq = $1), '')
		FROM audit_events`, n).Scan(&rows, &lo, &hi, &upToN, &head); err != nil {
		t.Fatal(err)
	}
	if n == 0 || upToN != n || head != m[2] || lo != 1 || hi != rows {
		t.Fatalf("audit verify says %d events, head %s; the table has %d rows numbered %d..%d, %d of them up to seq %d, whose hash is %q",
			n, m[2], rows, lo, hi, upToN, n, head)
	}
	return n
}

// scaleQuiet reports whether the audit table has exactly n rows.
func scaleQuiet(t *testing.T, db *sql.DB, n int64) bool {
	t.Helper()
	var rows int64
	if err := db.QueryRow("SELECT count(*) FROM audit_events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return rows == n
}

// scaleEnrollAll creates accounts prefix-0 … prefix-(n-1) and enrolls each (the account on one
// replica, the enrollment on the other, the confirmation on the first again), 8 at a time. It
// returns their secrets by account id.
func scaleEnrollAll(t *testing.T, bases []string, prefix string, n int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	secrets := map[string]string{}
	ids := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for id := range ids {
				secret, err := scaleEnroll(bases[w%2], bases[(w+1)%2], id)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				secrets[id] = secret
				mu.Unlock()
			}
		})
	}
	for i := range n {
		ids <- fmt.Sprintf("%s-%d", prefix, i)
	}
	close(ids)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return secrets
}

func scaleEnroll(one, two, id string) (string, error) {
	api := "/api/v1/accounts/" + id
	r, err := scaleDo(http.MethodPut, one+api, map[string]string{"email": id + "@example.com", "display_name": id})
	if err != nil || r.status != http.StatusCreated {
		return "", fmt.Errorf("create %s: %d %s %v", id, r.status, r.raw, err)
	}
	r, err = scaleDo(http.MethodPost, two+api+"/2fa/enrollment", map[string]string{})
	secret, _ := r.body["secret"].(string)
	if err != nil || r.status != http.StatusCreated || secret == "" {
		return "", fmt.Errorf("enroll %s: %d %v", id, r.status, err) // the body holds the secret: not quoted
	}
	code, err := totp.GenerateCodeCustom(secret, time.Now(), scaleTOTP)
	if err != nil {
		return "", err
	}
	r, err = scaleDo(http.MethodPost, one+api+"/2fa/enrollment/confirm", map[string]string{"code": code})
	if err != nil || r.status != http.StatusOK || r.body["state"] != "active" {
		return "", fmt.Errorf("confirm %s: %d %v", id, r.status, err)
	}
	return secret, nil
}

// scaleWrongCode returns a well-formed code that is not valid within two steps of now.
func scaleWrongCode(secret string, now time.Time) string {
	valid := map[string]bool{}
	for d := -2; d <= 2; d++ {
		c, _ := totp.GenerateCodeCustom(secret, now.Add(time.Duration(d)*30*time.Second), scaleTOTP)
		valid[c] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", n); !valid[c] {
			return c
		}
	}
}

// scaleBackoff is security.md's backoff after the n-th consecutive failure (n ≥ 5): 30 s,
// doubled per further failure, at most an hour. The test restates it instead of calling the
// domain, so that a change of the rule shows here.
func scaleBackoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 5; i < n; i++ {
		d = min(2*d, time.Hour)
	}
	return d
}

// scaleServerNow reads the clock of the rdtest process at base.
func scaleServerNow(t *testing.T, base string) time.Time {
	t.Helper()
	r := scaleMust(t, http.MethodGet, base+"/test/clock", nil)
	now, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r.body["now"]))
	if err != nil {
		t.Fatalf("GET /test/clock: %s", r.raw)
	}
	return now
}

type scaleResp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

var scaleClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// scaleDo sends a host API request with the static API key and decodes the JSON answer. It is
// safe to call from any goroutine.
func scaleDo(method, url string, body any) (scaleResp, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return scaleResp{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return scaleResp{}, err
	}
	req.Header.Set("Authorization", "Bearer "+scaleAPIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := scaleClient.Do(req)
	if err != nil {
		return scaleResp{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return scaleResp{}, err
	}
	r := scaleResp{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.StatusCode >= 500 {
		return r, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		return r, fmt.Errorf("%s %s: %d, not JSON: %q", method, url, resp.StatusCode, raw)
	}
	return r, nil
}

func scaleMust(t *testing.T, method, url string, body any) scaleResp {
	t.Helper()
	r, err := scaleDo(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// scaleOpenDB opens the database behind dsn for the test's own queries; closed before the
// database is dropped.
func scaleOpenDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// scaleRandomKey is the base64 of 32 random bytes (a master key or an audit seed).
func scaleRandomKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}
