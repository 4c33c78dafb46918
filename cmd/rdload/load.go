package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
	progressEvery = 5 * time.Second
	printedErrors = 5 // distinct error kinds printed as they first happen
	retireAfter   = 3 // an account whose failure count may have reached this is used no more
	creditCap     = 4 // wrong-code credit a goroutine may hold while its accounts cannot take one
)

// account is one load account and what the tool knows about its server-side state. It is owned
// by one goroutine at a time (handed over through the queue), so it needs no lock.
type account struct {
	id        string
	verifyURL string
	ip        string
	secret    string

	// last is the highest step the server may have consumed for the account: the confirmation
	// step, then every step sent in a valid code whatever the answer. Only later steps are used.
	last int64
	// fails is an upper bound of the server's consecutive-failure count for the account: every
	// answer but a success adds one, a success clears it.
	fails int

	codeBase int64    // step of codes[0]
	codes    []string // precomputed codes, so the timed phase spends no CPU on HMACs
}

// code returns the account's code for step, or "" if the secret is unusable.
func (a *account) code(step int64) string {
	if i := step - a.codeBase; i >= 0 && i < int64(len(a.codes)) {
		return a.codes[i]
	}
	c, err := recovery.CodeAt(a.secret, step)
	if err != nil {
		return ""
	}
	return c
}

func (a *account) precompute(from, to int64) {
	codes := make([]string, to-from+1)
	for i := range codes {
		codes[i], _ = recovery.CodeAt(a.secret, from+int64(i))
	}
	a.codeBase, a.codes = from, codes
}

// loader holds what every phase shares: the configuration, the one HTTP client and the error log.
type loader struct {
	cfg    config
	client *http.Client
	errs   *errorLog
	stderr io.Writer
}

func newLoader(cfg config, stderr io.Writer) *loader {
	tr := &http.Transport{
		Proxy:                 nil, // only ever talk to --url
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * cfg.clients,
		MaxIdleConnsPerHost:   2 * cfg.clients, // ≥ clients: every goroutine keeps its connection alive
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.timeout,
		DisableCompression:    true,
	}
	return &loader{
		cfg: cfg,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect would lead away from --url
			},
		},
		errs:   &errorLog{w: stderr, counts: map[string]int{}},
		stderr: stderr,
	}
}

// reply is the part of a JSON answer the tool reads.
type reply struct {
	status  int
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Message string `json:"message"`
	Secret  string `json:"secret"`
}

func (r reply) String() string {
	s := fmt.Sprintf("HTTP %d", r.status)
	if r.Error != "" {
		s += " " + r.Error
	}
	return s
}

func (r reply) detailed() string {
	msg := r.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		return r.String()
	}
	return r.String() + ": " + msg
}

// call sends one request and reads the whole answer (so the connection is reused). decode parses
// the body as JSON.
func (l *loader) call(ctx context.Context, method, target string, body []byte, auth, decode bool) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return reply{}, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+l.cfg.apiKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var r reply
	if decode {
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return reply{}, err
		}
		_ = json.Unmarshal(data, &r) // a body that is not the expected JSON leaves r empty: judged by the caller
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return reply{}, err
	}
	r.status = resp.StatusCode
	return r, nil
}

func (l *loader) accountURL(id string) string {
	return l.cfg.base.String() + "/api/v1/accounts/" + url.PathEscape(id)
}

// accountIP is the "ip" sent with account i's verifies.
func (l *loader) accountIP(i int) string {
	switch l.cfg.ip {
	case "":
		return ""
	case "per-account":
		n := i + 1
		return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
	default:
		return l.cfg.ip
	}
}

// errorLog counts errors by kind and prints the first few kinds as they happen.
type errorLog struct {
	mu     sync.Mutex
	w      io.Writer
	counts map[string]int
	order  []string
	total  int
}

func (e *errorLog) add(kind, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total++
	if e.counts[kind] == 0 {
		e.order = append(e.order, kind)
		if len(e.order) <= printedErrors {
			fmt.Fprintf(e.w, "rdload: error: %s (%s)\n", kind, detail)
		}
	}
	e.counts[kind]++
}

func (e *errorLog) summary() (total int, lines []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.order {
		lines = append(lines, fmt.Sprintf("%d × %s", e.counts[k], k))
	}
	return e.total, lines
}

// ---- setup ----

// setup creates, enrolls and confirms the accounts with cfg.clients concurrent clients.
func (l *loader) setup(ctx context.Context, out io.Writer) ([]*account, error) {
	n := l.cfg.accounts
	ctx, cancel := context.WithTimeoutCause(ctx, l.cfg.setupTimeout,
		fmt.Errorf("setup did not finish within --setup-timeout %s", l.cfg.setupTimeout))
	defer cancel()

	accounts := make([]*account, n)
	var (
		next, done atomic.Int64
		once       sync.Once
		firstErr   error
		wg         sync.WaitGroup
	)
	start := time.Now()
	for range min(l.cfg.clients, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				a, err := l.enroll(ctx, i)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				accounts[i] = a
				done.Add(1)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			d := done.Load()
			fmt.Fprintf(l.stderr, "rdload: setup: %d/%d accounts enrolled (%.0f accounts/s, %s)\n",
				d, n, float64(d)/time.Since(start).Seconds(), time.Since(start).Round(time.Second))
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	el := time.Since(start)
	fmt.Fprintf(out, "setup: accounts=%d requests=%d elapsed=%.1fs (%.0f req/s; not timed)\n",
		n, 3*n, el.Seconds(), float64(3*n)/el.Seconds())
	return accounts, nil
}

// accounts are the accounts of --accounts-file, or new ones from setup (saved to that file when
// it is given).
func (l *loader) accounts(ctx context.Context, out io.Writer) ([]*account, error) {
	if path := l.cfg.accountsFile; path != "" {
		accounts, err := l.loadAccounts(path)
		if err != nil || accounts != nil {
			if err == nil {
				fmt.Fprintf(out, "setup: accounts=%d reused from %s (not timed)\n", len(accounts), path)
			}
			return accounts, err
		}
	}
	accounts, err := l.setup(ctx, out)
	if err == nil && l.cfg.accountsFile != "" {
		err = l.saveAccounts(l.cfg.accountsFile, accounts)
	}
	return accounts, err
}

// enroll creates account i, enrolls it and confirms the enrollment with the current code.
func (l *loader) enroll(ctx context.Context, i int) (*account, error) {
	id := fmt.Sprintf("%s-%06d", l.cfg.prefix, i)
	base := l.accountURL(id)
	body, _ := json.Marshal(map[string]string{"email": id + "@load.example"})
	r, err := l.call(ctx, http.MethodPut, base, body, true, true)
	if err != nil {
		return nil, fmt.Errorf("setup of %s: PUT account: %w", id, err)
	}
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		return nil, fmt.Errorf("setup of %s: PUT account: %s", id, r.detailed())
	}
	r, err = l.call(ctx, http.MethodPost, base+"/2fa/enrollment", []byte("{}"), true, true)
	if err != nil {
		return nil, fmt.Errorf("setup of %s: enrollment: %w", id, err)
	}
	if r.status != http.StatusCreated || r.Secret == "" {
		return nil, fmt.Errorf("setup of %s: enrollment: %s (want 201 with a secret)", id, r.detailed())
	}
	secret := r.Secret
	step := recovery.Step(time.Now())
	code, err := recovery.CodeAt(secret, step)
	if err != nil {
		return nil, fmt.Errorf("setup of %s: the enrollment's secret is not usable base32: %v", id, err)
	}
	body, _ = json.Marshal(map[string]string{"code": code})
	r, err = l.call(ctx, http.MethodPost, base+"/2fa/enrollment/confirm", body, true, true)
	if err != nil {
		return nil, fmt.Errorf("setup of %s: confirm: %w", id, err)
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("setup of %s: confirm: %s", id, r.detailed())
	}
	// The confirmation consumed step, or, if another step of the server's window has the same
	// code, possibly that one: remember the highest.
	last := step
	for x := step - 1; x <= step+2; x++ {
		if c, _ := recovery.CodeAt(secret, x); c == code {
			last = max(last, x)
		}
	}
	return &account{id: id, verifyURL: base + "/2fa/verify", ip: l.accountIP(i), secret: secret, last: last}, nil
}

// prepare waits, if asked, until the current step is past every account's last step, so that each
// account has two unused codes at the start of the timed phase, and then precomputes the codes
// the phase can need.
func (l *loader) prepare(ctx context.Context, accounts []*account) error {
	var maxLast int64
	for _, a := range accounts {
		maxLast = max(maxLast, a.last)
	}
	if l.cfg.waitStep && recovery.Step(time.Now()) <= maxLast {
		until := stepStart(maxLast + 1).Add(50 * time.Millisecond)
		fmt.Fprintf(l.stderr, "rdload: waiting %.1fs for the next TOTP step, so every account has two unused codes\n",
			time.Until(until).Seconds())
		t := time.NewTimer(time.Until(until))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	now := time.Now()
	from := recovery.Step(now) - 1
	to := recovery.Step(now.Add(l.cfg.duration+l.cfg.timeout)) + 2
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(accounts)); i = next.Add(1) - 1 {
				accounts[i].precompute(from, to)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// ---- verify ----

// parking holds accounts that have no usable valid code until a later step, and hands them back
// to the queue when that step begins. The queue has room for every account, so handing back never
// blocks; every account is in exactly one place: the queue, parking, one goroutine, or retired.
type parking struct {
	mu    sync.Mutex
	at    map[int64][]*account
	queue chan *account
}

func (p *parking) park(a *account, step int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if step <= recovery.Step(time.Now()) {
		p.queue <- a
		return
	}
	p.at[step] = append(p.at[step], a)
}

func (p *parking) releaseDue() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := recovery.Step(time.Now())
	for step, list := range p.at {
		if step <= cur {
			for _, a := range list {
				p.queue <- a
			}
			delete(p.at, step)
		}
	}
}

// run releases parked accounts at each step boundary until stop is closed.
func (p *parking) run(stop <-chan struct{}) {
	for {
		next := stepStart(recovery.Step(time.Now()) + 1).Add(20 * time.Millisecond)
		t := time.NewTimer(time.Until(next))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		p.releaseDue()
	}
}

// worker is one verify goroutine's tally; merged after the phase.
type worker struct {
	validLat, wrongLat []time.Duration
	answered           int // requests answered as expected
	starveN            int
	starved            time.Duration
	retired            int
	credit             float64
}

type verifyResult struct {
	elapsed          time.Duration
	valid, wrong     int
	answered         int
	latAll, latValid []time.Duration // sorted
	latWrong         []time.Duration // sorted
	starvedPct       float64
	starveN          int
	retired          int
}

// verify runs the timed verify phase over accounts.
func (l *loader) verify(ctx context.Context, accounts []*account) verifyResult {
	queue := make(chan *account, len(accounts))
	for _, a := range accounts {
		queue <- a
	}
	p := &parking{at: map[int64][]*account{}, queue: queue}
	wrongShare := 1 - l.cfg.validRatio

	start := time.Now()
	deadline := start.Add(l.cfg.duration)
	phase, cancel := context.WithDeadline(ctx, deadline) // stops waiting, never an in-flight request
	defer cancel()
	go p.run(phase.Done())

	workers := make([]*worker, l.cfg.clients)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{validLat: make([]time.Duration, 0, 4096), wrongLat: make([]time.Duration, 0, 1024)}
		workers[i] = w
		wg.Go(func() { l.verifyLoop(ctx, phase.Done(), deadline, queue, p, w, wrongShare) })
	}
	wg.Wait()
	res := verifyResult{elapsed: time.Since(start)}
	for _, w := range workers {
		res.valid += len(w.validLat)
		res.wrong += len(w.wrongLat)
		res.answered += w.answered
		res.latValid = append(res.latValid, w.validLat...)
		res.latWrong = append(res.latWrong, w.wrongLat...)
		res.starveN += w.starveN
		res.starvedPct += w.starved.Seconds()
		res.retired += w.retired
	}
	res.starvedPct = 100 * res.starvedPct / (float64(l.cfg.clients) * res.elapsed.Seconds())
	res.latAll = append(slices.Clone(res.latValid), res.latWrong...)
	for _, s := range [][]time.Duration{res.latAll, res.latValid, res.latWrong} {
		slices.Sort(s)
	}
	return res
}

func (l *loader) verifyLoop(ctx context.Context, stop <-chan struct{}, deadline time.Time, queue chan *account, p *parking, w *worker, wrongShare float64) {
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var a *account
		select {
		case a = <-queue:
		default:
			// Every account is in use or parked: the tool, not the server, is the limit now.
			w.starveN++
			t0 := time.Now()
			select {
			case a = <-queue:
			case <-stop:
			}
			w.starved += time.Since(t0)
			if a == nil {
				return
			}
			if !time.Now().Before(deadline) {
				queue <- a
				return
			}
		}
		now := time.Now()
		m, st := nextMove(now, a, &w.credit, wrongShare)
		switch m {
		case moveWrong:
			l.sendWrong(ctx, w, a, now)
		case moveValid:
			l.sendValid(ctx, w, a, st)
		case movePark:
			p.park(a, availableFrom(a.last, recovery.Step(now)))
			continue
		}
		if a.fails >= retireAfter {
			// Only errors get an account here; one more failure could reach the server's backoff
			// and turn one fault into a cascade of 429s.
			w.retired++
			continue
		}
		queue <- a
	}
}

// verifyBody is {"code":…} or {"code":…,"ip":…}; code and ip need no escaping.
func verifyBody(code, ip string) []byte {
	if ip == "" {
		return []byte(`{"code":"` + code + `"}`)
	}
	return []byte(`{"code":"` + code + `","ip":"` + ip + `"}`)
}

func (l *loader) sendValid(ctx context.Context, w *worker, a *account, step int64) {
	code := a.code(step)
	a.last = max(a.last, step) // consumed or not, it is never sent again
	t0 := time.Now()
	r, err := l.call(ctx, http.MethodPost, a.verifyURL, verifyBody(code, a.ip), true, true)
	w.validLat = append(w.validLat, time.Since(t0))
	switch {
	case err != nil:
		a.fails++
		if ctx.Err() == nil {
			l.errs.add("valid code: transport error", err.Error())
		}
	case r.status == http.StatusOK && r.OK:
		a.fails = 0
		w.answered++
	default:
		a.fails++
		l.errs.add("valid code answered "+r.String()+" (want 200 ok:true)", "account "+a.id+": "+r.detailed())
	}
}

func (l *loader) sendWrong(ctx context.Context, w *worker, a *account, now time.Time) {
	cur := recovery.Step(now)
	code := wrongCode(cur, a.code, rand.IntN)
	t0 := time.Now()
	r, err := l.call(ctx, http.MethodPost, a.verifyURL, verifyBody(code, a.ip), true, true)
	w.wrongLat = append(w.wrongLat, time.Since(t0))
	a.fails++ // expected: the server counts it
	switch {
	case err != nil:
		if ctx.Err() == nil {
			l.errs.add("wrong code: transport error", err.Error())
		}
	case r.status == http.StatusUnauthorized && r.Error == "invalid_code":
		w.answered++
	default:
		if r.status == http.StatusOK {
			a.last = max(a.last, cur+2) // it matched some step of the server's window
		}
		l.errs.add("wrong code answered "+r.String()+" (want 401 invalid_code)", "account "+a.id+": "+r.detailed())
	}
}

// ---- healthz ----

type healthResult struct {
	elapsed time.Duration
	ok      int
	failed  int
}

// healthz sends GET /healthz with cfg.clients goroutines for d.
func (l *loader) healthz(ctx context.Context, d time.Duration) healthResult {
	target := l.cfg.base.String() + "/healthz"
	start := time.Now()
	deadline := start.Add(d)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range l.cfg.clients {
		wg.Go(func() {
			var good, bad int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				r, err := l.call(ctx, http.MethodGet, target, nil, false, false)
				switch {
				case err != nil:
					bad++
					if ctx.Err() == nil {
						l.errs.add("healthz: transport error", err.Error())
					}
				case r.status == http.StatusOK:
					good++
				default:
					bad++
					l.errs.add("healthz answered "+r.String(), "want 200")
				}
			}
			ok.Add(good)
			failed.Add(bad)
		})
	}
	wg.Wait()
	return healthResult{elapsed: time.Since(start), ok: int(ok.Load()), failed: int(failed.Load())}
}

// ---- the whole run ----

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// execute performs the phases and prints the report; the last stdout line is the result.
func execute(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	l := newLoader(cfg, stderr)
	ipDesc := cfg.ip
	if ipDesc == "" {
		ipDesc = "none"
	}
	fmt.Fprintf(stdout, "target=%s clients=%d accounts=%d duration=%s valid_ratio=%.2f prefix=%s ip=%s\n",
		cfg.base, cfg.clients, cfg.accounts, cfg.duration, cfg.validRatio, cfg.prefix, ipDesc)
	if cfg.duration < 10*time.Second {
		fmt.Fprintln(stderr, "rdload: note: --duration below 10s (--allow-short): not an acceptance measurement")
	}

	pre, cancel := context.WithTimeout(ctx, cfg.timeout)
	r, err := l.call(pre, http.MethodGet, cfg.base.String()+"/healthz", nil, false, false)
	cancel()
	if err != nil {
		return fmt.Errorf("the server at %s does not answer: %w", cfg.base, err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("GET %s/healthz answered %s, want 200", cfg.base, r)
	}

	accounts, err := l.accounts(ctx, stdout)
	if err != nil {
		return err
	}
	var rounds []roundResult
	var lat []time.Duration
	for i := range cfg.rounds {
		if cfg.rounds > 1 {
			fmt.Fprintf(stdout, "round: %d/%d\n", i+1, cfg.rounds)
		}
		// With waitStep (off only in tests) every round starts in a step after the last one each
		// account used, so that each has two unused codes (prepare).
		r, err := l.round(ctx, accounts, stdout, stderr)
		if err != nil {
			return err
		}
		rounds = append(rounds, r)
		lat = append(lat, r.lat...)
		if cfg.accountsFile != "" {
			if err := l.saveAccounts(cfg.accountsFile, accounts); err != nil {
				return err
			}
		}
	}
	totalErrs, kinds := l.errs.summary()
	if cfg.pid > 0 {
		if peak, rss, err := serverMemory(cfg.pid); err != nil {
			fmt.Fprintf(stderr, "rdload: cannot read the server's memory: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "server_peak_rss_mb=%.1f server_rss_mb=%.1f\n", peak, rss)
		}
	}
	if totalErrs > 0 {
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(stderr, "rdload: errors: %s\n", k)
		}
	}
	// The last line: the round of median ratio (the machine's noise moves whole phases, so each
	// round's ratio is against the ceiling measured right after it), latency over every round.
	med, summary := medianRound(rounds)
	if len(rounds) > 1 {
		fmt.Fprintln(stdout, summary)
	}
	slices.Sort(lat)
	fmt.Fprintf(stdout, "verify_rps=%.0f healthz_rps=%.0f ratio=%.3f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
		med.verifyRPS, med.healthRPS, med.ratio, ms(percentile(lat, 50)), ms(percentile(lat, 99)), totalErrs)
	if totalErrs > 0 {
		return errFailedRun
	}
	return nil
}

// roundResult is one verify phase and the healthz phase measured right after it.
type roundResult struct {
	verifyRPS, healthRPS, ratio float64
	lat                         []time.Duration
}

// medianRound is the round of median ratio (the lower of the two middle ones for an even count)
// and the "rounds:" line: min, median and max, and every ratio in the order of the rounds.
func medianRound(rounds []roundResult) (roundResult, string) {
	byRatio := slices.SortedFunc(slices.Values(rounds), func(a, b roundResult) int { return cmp.Compare(a.ratio, b.ratio) })
	med := byRatio[(len(byRatio)-1)/2]
	ratios := make([]string, len(rounds))
	for i, r := range rounds {
		ratios[i] = fmt.Sprintf("%.3f", r.ratio)
	}
	return med, fmt.Sprintf("rounds: n=%d ratio_min=%.3f ratio_median=%.3f ratio_max=%.3f ratios=%s",
		len(rounds), byRatio[0].ratio, med.ratio, byRatio[len(byRatio)-1].ratio, strings.Join(ratios, ","))
}

// round waits for fresh codes, runs the verify phase and then the healthz phase for as long,
// and prints their detail lines.
func (l *loader) round(ctx context.Context, accounts []*account, stdout, stderr io.Writer) (roundResult, error) {
	cfg := l.cfg
	if err := l.prepare(ctx, accounts); err != nil {
		return roundResult{}, err
	}
	self0, _ := cpuTime("self")
	srv0, srvOK := serverCPU(cfg.pid)
	errs0, _ := l.errs.summary()
	v := l.verify(ctx, accounts)
	self1, _ := cpuTime("self")
	srv1, _ := serverCPU(cfg.pid)
	errs1, _ := l.errs.summary()
	h := l.healthz(ctx, v.elapsed)
	self2, _ := cpuTime("self")
	srv2, _ := serverCPU(cfg.pid)
	if ctx.Err() != nil {
		return roundResult{}, fmt.Errorf("interrupted: %w", ctx.Err())
	}

	r := roundResult{verifyRPS: float64(v.answered) / v.elapsed.Seconds(), healthRPS: float64(h.ok) / h.elapsed.Seconds(), lat: v.latAll}
	if r.healthRPS > 0 {
		r.ratio = r.verifyRPS / r.healthRPS
	}
	validShare := 0.0
	if n := v.valid + v.wrong; n > 0 {
		validShare = float64(v.valid) / float64(n)
	}
	fmt.Fprintf(stdout, "verify: elapsed=%.3fs requests=%d valid=%d wrong=%d valid_share=%.3f answered_as_expected=%d errors=%d\n",
		v.elapsed.Seconds(), v.valid+v.wrong, v.valid, v.wrong, validShare, v.answered, errs1-errs0)
	fmt.Fprintf(stdout, "verify_latency_ms: p50=%.2f p90=%.2f p99=%.2f max=%.2f valid_p50=%.2f valid_p99=%.2f wrong_p50=%.2f wrong_p99=%.2f\n",
		ms(percentile(v.latAll, 50)), ms(percentile(v.latAll, 90)), ms(percentile(v.latAll, 99)), ms(percentile(v.latAll, 100)),
		ms(percentile(v.latValid, 50)), ms(percentile(v.latValid, 99)),
		ms(percentile(v.latWrong, 50)), ms(percentile(v.latWrong, 99)))
	fmt.Fprintf(stdout, "verify_client_wait: starved_pct=%.2f starved_waits=%d retired_accounts=%d\n",
		v.starvedPct, v.starveN, v.retired)
	if v.starvedPct > 1 {
		fmt.Fprintf(stderr, "rdload: WARNING: clients waited %.1f %% of the verify phase for an account with an unused code: "+
			"the tool limited verify_rps; rerun with more --accounts (this run: %d)\n", v.starvedPct, len(accounts))
	}
	fmt.Fprintf(stdout, "healthz: elapsed=%.3fs requests=%d errors=%d\n", h.elapsed.Seconds(), h.ok+h.failed, h.failed)
	cpu := fmt.Sprintf("cpu_cores: verify_rdload=%.2f healthz_rdload=%.2f",
		(self1-self0).Seconds()/v.elapsed.Seconds(), (self2-self1).Seconds()/h.elapsed.Seconds())
	if srvOK {
		cpu += fmt.Sprintf(" verify_server=%.2f healthz_server=%.2f",
			(srv1-srv0).Seconds()/v.elapsed.Seconds(), (srv2-srv1).Seconds()/h.elapsed.Seconds())
	}
	fmt.Fprintf(stdout, "%s (of %d)\n", cpu, runtime.NumCPU())
	if cfg.rounds > 1 {
		fmt.Fprintf(stdout, "round_result: verify_rps=%.0f healthz_rps=%.0f ratio=%.3f\n", r.verifyRPS, r.healthRPS, r.ratio)
	}
	return r, nil
}

func serverCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	d, err := cpuTime(fmt.Sprint(pid))
	return d, err == nil
}
