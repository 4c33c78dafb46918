package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The mix mode (--mix): N clients send, for --duration, a weighted mix of the three kinds of
// traffic a desk serves at once — host API verifications, console pages of a signed-in agent and
// Telegram bot updates — and every answer is checked. See mixUsage and the package doc.

// Request kinds of the mix. The console kinds are one group in the report.
const (
	kindVerify    = "verify"    // POST /api/v1/accounts/{id}/2fa/verify, valid or wrong code
	kindQueue     = "queue"     // GET /console (the ticket queue)
	kindTicket    = "ticket"    // GET /console/tickets/{id}
	kindAudit     = "audit"     // GET /console/audit
	kindDashboard = "dashboard" // GET /console/dashboard
	kindNote      = "note"      // POST /console/tickets/{id}/note
	kindBot       = "bot"       // POST /telegram/webhook
)

// mixKinds is every kind in report order.
var mixKinds = []string{kindVerify, kindQueue, kindTicket, kindAudit, kindDashboard, kindNote, kindBot}

// defaultMixWeights: verifications dominate, as logins do on a real desk; agents read the
// queue and tickets more than the audit log and dashboard, and write now and then; one request
// in ten is a Telegram update.
const defaultMixWeights = "verify=70,queue=5,ticket=7,audit=2,dashboard=2,note=4,bot=10"

// assumedMixPerClientRPS sizes the default account count of a mix run: a client's rate is
// lower than in the verify mode (assumedPerClientRPS) because console pages cost more.
const assumedMixPerClientRPS = 125

func kindGroup(kind string) string {
	switch kind {
	case kindVerify, kindBot:
		return kind
	}
	return "console"
}

// mixConfig is the mix mode's part of config.
type mixConfig struct {
	weights  map[string]int // kind → weight; only kinds with weight > 0
	agent    agentLogin     // needed when a console kind has weight
	tgSecret string         // needed when bot has weight
	chats    int
}

// agentLogin is the console agent rdload signs in as. Its password and TOTP secret are
// credentials: never printed.
type agentLogin struct{ email, password, totpSecret string }

const mixUsage = `
Mix mode (--mix): instead of verify + healthz, after the same setup, N clients send for --duration
a weighted mix (--mix-weights, default ` + defaultMixWeights + `):
  verify     the verify requests above (same schedule: valid and wrong codes, no replay)
  queue      GET /console as a signed-in agent; the ticket ids it lists feed ticket and note
  ticket     GET /console/tickets/{id}
  audit      GET /console/audit (the agent must be a supervisor or admin)
  dashboard  GET /console/dashboard
  note       POST /console/tickets/{id}/note (an internal note; expect 303 back to the ticket)
  bot        POST /telegram/webhook: Telegram updates with unique update_ids from --chats private
             chats, each a conversation in order: /start, "I lost my phone", the "lost" button, an
             e-mail (a load account's or an unknown one), a message, /status, /cancel, again.
The agent signs in like a browser (password, then the TOTP of the current step, or of the next if
that one was used): --agent-email, and $RDLOAD_AGENT_PASSWORD and $RDLOAD_AGENT_TOTP_SECRET (or
the flags; ` + "`recoverydesk demo`" + ` prints agents with both). The bot kind needs the server in
webhook mode and its secret in $RDLOAD_TELEGRAM_SECRET (or --telegram-secret); the server's Bot
API can be ` + "`rdload fake-botapi`" + ` (rdload fake-botapi --help). Expected: 200 for pages and updates,
303 for a note, 200/401 for valid/wrong codes; anything else is an error.
--accounts 0 in the mix: clients × 125 req/s × duration × valid-ratio × the verify share ÷ codes
per account, at least 4 per client (starved_pct above 1: raise it).
Last line of the mix mode:
  mix_rps=<n> verify_rps=<n> console_rps=<n> bot_rps=<n> p99_ms=<n> errors=<n>
(rates count requests answered as expected; p99 is over every request of the mix.)
`

// mixFlags are the mix mode's flags, registered on the main flag set.
type mixFlags struct {
	on                                   *bool
	weights                              *string
	agentEmail, agentPassword, agentTOTP *string
	tgSecret                             *string
	chats                                *int
}

func addMixFlags(fs *flag.FlagSet) *mixFlags {
	return &mixFlags{
		on:            fs.Bool("mix", false, "mix mode: verify, console pages and bot updates together instead of verify + healthz (see above)"),
		weights:       fs.String("mix-weights", defaultMixWeights, "mix mode: `kind=weight,…` of verify, queue, ticket, audit, dashboard, note, bot (0 or absent: not sent)"),
		agentEmail:    fs.String("agent-email", "", "mix mode: console agent's e-mail address"),
		agentPassword: fs.String("agent-password", "", "mix mode: console agent's password; default $RDLOAD_AGENT_PASSWORD"),
		agentTOTP:     fs.String("agent-totp-secret", "", "mix mode: console agent's TOTP secret (base32); default $RDLOAD_AGENT_TOTP_SECRET"),
		tgSecret:      fs.String("telegram-secret", "", "mix mode: the server's RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET; default $RDLOAD_TELEGRAM_SECRET"),
		chats:         fs.Int("chats", 0, "mix mode: Telegram chats the bot updates come from; 0 = 8 × clients"),
	}
}

// apply checks the mix flags and fills c.mix; it returns a message for a usage error. It runs
// before the account count's default is computed, which it sets for the mix.
func (f *mixFlags) apply(c *config, getenv func(string) string) string {
	if !*f.on {
		return ""
	}
	w, err := parseWeights(*f.weights)
	if err != nil {
		return "--mix-weights: " + err.Error()
	}
	m := &mixConfig{weights: w, chats: *f.chats,
		agent:    agentLogin{email: strings.TrimSpace(*f.agentEmail), password: *f.agentPassword, totpSecret: *f.agentTOTP},
		tgSecret: *f.tgSecret}
	if m.agent.password == "" {
		m.agent.password = getenv("RDLOAD_AGENT_PASSWORD")
	}
	if m.agent.totpSecret == "" {
		m.agent.totpSecret = getenv("RDLOAD_AGENT_TOTP_SECRET")
	}
	if m.tgSecret == "" {
		m.tgSecret = getenv("RDLOAD_TELEGRAM_SECRET")
	}
	if m.console() && (m.agent.email == "" || m.agent.password == "" || m.agent.totpSecret == "") {
		return "console kinds need --agent-email, an agent password ($RDLOAD_AGENT_PASSWORD) and TOTP secret ($RDLOAD_AGENT_TOTP_SECRET); or give them weight 0"
	}
	if m.console() {
		if _, err := recovery.CodeAt(m.agent.totpSecret, 1); err != nil {
			return "the agent's TOTP secret is not base32" // the secret itself is not echoed
		}
	}
	if w[kindBot] > 0 && m.tgSecret == "" {
		return "the bot kind needs the webhook secret ($RDLOAD_TELEGRAM_SECRET or --telegram-secret); or give it weight 0"
	}
	if m.chats < 0 || m.chats > 1_000_000 {
		return "--chats must be 0 (8 × clients) to 1000000"
	}
	if m.chats == 0 {
		m.chats = 8 * c.clients
	}
	if c.accounts == 0 && w[kindVerify] > 0 {
		c.accounts = defaultMixAccounts(c.clients, c.duration, c.validRatio, m.share(kindVerify))
	}
	if c.accounts == 0 { // no verify: a few accounts still give the bot known e-mails
		c.accounts = c.clients
	}
	c.mix = m
	return ""
}

// console reports whether any console kind has weight.
func (m *mixConfig) console() bool {
	for k, w := range m.weights {
		if w > 0 && kindGroup(k) == "console" {
			return true
		}
	}
	return false
}

// share is kind's fraction of all requests.
func (m *mixConfig) share(kind string) float64 {
	total := 0
	for _, w := range m.weights {
		total += w
	}
	return float64(m.weights[kind]) / float64(total)
}

// parseWeights reads "kind=weight,…". Weights are integers 0–1000 and at least one is positive.
func parseWeights(s string) (map[string]int, error) {
	w := map[string]int{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || !slices.Contains(mixKinds, k) {
			return nil, fmt.Errorf("%q is not kind=weight with a kind of %s", part, strings.Join(mixKinds, ", "))
		}
		if _, dup := w[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 1000 {
			return nil, fmt.Errorf("the weight of %s must be an integer 0–1000", k)
		}
		w[k] = n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("no kind has a positive weight")
	}
	for k, n := range w {
		if n == 0 {
			delete(w, k)
		}
	}
	return w, nil
}

// defaultMixAccounts is defaultAccounts for the verify share of a mix at assumedMixPerClientRPS.
func defaultMixAccounts(clients int, d time.Duration, validRatio, verifyShare float64) int {
	demand := float64(clients) * assumedMixPerClientRPS * d.Seconds() * validRatio * verifyShare
	n := int(math.Ceil(demand / codesPerAccount(d)))
	return max(n, 4*clients, 1)
}

// picker chooses kinds at random in proportion to their weights.
type picker struct {
	kinds []string
	cum   []int // cumulative weights
}

func newPicker(w map[string]int) picker {
	var p picker
	total := 0
	for _, k := range mixKinds { // fixed order: the same weights give the same mapping
		if w[k] > 0 {
			total += w[k]
			p.kinds = append(p.kinds, k)
			p.cum = append(p.cum, total)
		}
	}
	return p
}

func (p picker) pick(intn func(int) int) string {
	r := intn(p.cum[len(p.cum)-1])
	i, _ := slices.BinarySearch(p.cum, r+1)
	return p.kinds[i]
}

// kindTally is one kind's requests in one worker; merged after the phase.
type kindTally struct {
	requests, answered int
	lat                []time.Duration
}

// mixer holds what the mix's workers share.
type mixer struct {
	l          *loader
	cfg        config
	accounts   []*account
	queue      chan *account // verify accounts, as in the verify mode
	park       *parking
	wrongShare float64
	chats      chan *chat
	console    *consoleClient
	bot        *botClient
	stop       <-chan struct{}
	deadline   time.Time
}

// mixWorker is one goroutine's state.
type mixWorker struct {
	w     *worker // the verify tally and wrong-code credit, as in the verify mode
	kinds map[string]*kindTally
	rng   *rand.Rand
}

func (mw *mixWorker) tally(kind string) *kindTally {
	t := mw.kinds[kind]
	if t == nil {
		t = &kindTally{lat: make([]time.Duration, 0, 1024)}
		mw.kinds[kind] = t
	}
	return t
}

// verifyOnce sends one verify request as the verify loop does; false when the phase ended first.
func (m *mixer) verifyOnce(ctx context.Context, mw *mixWorker) bool {
	w := mw.w
	for {
		var a *account
		select {
		case a = <-m.queue:
		default:
			w.starveN++
			t0 := time.Now()
			select {
			case a = <-m.queue:
			case <-m.stop:
			}
			w.starved += time.Since(t0)
			if a == nil {
				return false
			}
		}
		if !time.Now().Before(m.deadline) || ctx.Err() != nil {
			m.queue <- a
			return false
		}
		now := time.Now()
		answered, sent := w.answered, len(w.validLat)+len(w.wrongLat)
		mv, st := nextMove(now, a, &w.credit, m.wrongShare)
		var lat []time.Duration
		switch mv {
		case moveWrong:
			m.l.sendWrong(ctx, w, a, now)
			lat = w.wrongLat
		case moveValid:
			m.l.sendValid(ctx, w, a, st)
			lat = w.validLat
		case movePark:
			m.park.park(a, availableFrom(a.last, recovery.Step(now)))
			continue
		}
		if a.fails >= retireAfter {
			w.retired++ // as in verifyLoop: only errors bring an account here
		} else {
			m.queue <- a
		}
		t := mw.tally(kindVerify)
		t.requests += len(w.validLat) + len(w.wrongLat) - sent
		t.answered += w.answered - answered
		t.lat = append(t.lat, lat[len(lat)-1])
		return true
	}
}

// mixResult is the merged outcome of a mix phase.
type mixResult struct {
	elapsed time.Duration
	kinds   map[string]*kindTally // latencies sorted
	verify  *worker               // merged verify tally (counts and starvation)
}

// runMix runs the timed mix phase.
func (m *mixer) runMix(ctx context.Context) mixResult {
	m.queue = make(chan *account, len(m.accounts))
	for _, a := range m.accounts {
		m.queue <- a
	}
	m.park = &parking{at: map[int64][]*account{}, queue: m.queue}
	m.wrongShare = 1 - m.cfg.validRatio
	pick := newPicker(m.cfg.mix.weights)

	start := time.Now()
	m.deadline = start.Add(m.cfg.duration)
	phase, cancel := context.WithDeadline(ctx, m.deadline) // stops waiting, never an in-flight request
	defer cancel()
	m.stop = phase.Done()
	go m.park.run(m.stop)

	workers := make([]*mixWorker, m.cfg.clients)
	var wg sync.WaitGroup
	for i := range workers {
		mw := &mixWorker{w: &worker{}, kinds: map[string]*kindTally{},
			rng: rand.New(rand.NewPCG(uint64(i)+1, uint64(start.UnixNano())))}
		workers[i] = mw
		wg.Go(func() {
			for time.Now().Before(m.deadline) && ctx.Err() == nil {
				var ok bool
				switch k := pick.pick(mw.rng.IntN); k {
				case kindVerify:
					ok = m.verifyOnce(ctx, mw)
				case kindBot:
					ok = m.bot.send(ctx, mw, m)
				default:
					ok = m.console.do(ctx, mw, k)
				}
				if !ok {
					return
				}
			}
		})
	}
	wg.Wait()
	res := mixResult{elapsed: time.Since(start), kinds: map[string]*kindTally{}, verify: &worker{}}
	for _, mw := range workers {
		for k, t := range mw.kinds {
			r := res.kinds[k]
			if r == nil {
				r = &kindTally{}
				res.kinds[k] = r
			}
			r.requests += t.requests
			r.answered += t.answered
			r.lat = append(r.lat, t.lat...)
		}
		res.verify.starveN += mw.w.starveN
		res.verify.starved += mw.w.starved
		res.verify.retired += mw.w.retired
		res.verify.validLat = append(res.verify.validLat, mw.w.validLat...)
		res.verify.wrongLat = append(res.verify.wrongLat, mw.w.wrongLat...)
	}
	for _, r := range res.kinds {
		slices.Sort(r.lat)
	}
	return res
}

// executeMix performs a mix run: setup, sign-in, the mix, and the report; the last stdout line
// is the result.
func executeMix(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	l := newLoader(cfg, stderr)
	mc := cfg.mix
	var parts []string
	for _, k := range mixKinds {
		if mc.weights[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, mc.weights[k]))
		}
	}
	fmt.Fprintf(stdout, "target=%s mode=mix clients=%d accounts=%d chats=%d duration=%s valid_ratio=%.2f prefix=%s weights=%s\n",
		cfg.base, cfg.clients, cfg.accounts, mc.chats, cfg.duration, cfg.validRatio, cfg.prefix, strings.Join(parts, ","))
	if cfg.duration < 10*time.Second {
		fmt.Fprintln(stderr, "rdload: note: --duration below 10s (--allow-short): not an acceptance measurement")
	}
	pre, cancel := context.WithTimeout(ctx, cfg.timeout)
	r, err := l.call(pre, "GET", cfg.base.String()+"/healthz", nil, false, false)
	cancel()
	if err != nil {
		return fmt.Errorf("the server at %s does not answer: %w", cfg.base, err)
	}
	if r.status != 200 {
		return fmt.Errorf("GET %s/healthz answered %s, want 200", cfg.base, r)
	}

	m := &mixer{l: l, cfg: cfg}
	if m.accounts, err = l.setup(ctx, stdout); err != nil {
		return err
	}
	if mc.console() {
		m.console = &consoleClient{l: l}
		if err := m.console.signIn(ctx, mc.agent); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "console: signed in as %s; %d tickets in the queue\n", mc.agent.email, m.console.ticketCount())
	}
	if mc.weights[kindBot] > 0 {
		m.bot = newBotClient(l, mc.tgSecret)
		m.chats = m.bot.makeChats(mc.chats, m.accounts)
	}
	// Verify codes need the wait for a fresh step and the precomputed codes; without the verify
	// kind the accounts only lend the bot their e-mail addresses.
	l.cfg.waitStep = l.cfg.waitStep && mc.weights[kindVerify] > 0
	if err := l.prepare(ctx, m.accounts); err != nil {
		return err
	}

	self0, _ := cpuTime("self")
	srv0, srvOK := serverCPU(cfg.pid)
	res := m.runMix(ctx)
	self1, _ := cpuTime("self")
	srv1, _ := serverCPU(cfg.pid)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return reportMix(cfg, l, res, stdout, stderr, func() string {
		cpu := fmt.Sprintf("cpu_cores: mix_rdload=%.2f", (self1-self0).Seconds()/res.elapsed.Seconds())
		if srvOK {
			cpu += fmt.Sprintf(" mix_server=%.2f", (srv1-srv0).Seconds()/res.elapsed.Seconds())
		}
		return fmt.Sprintf("%s (of %d)", cpu, runtime.NumCPU())
	}())
}

// reportMix prints the per-kind lines, the groups and the result line.
func reportMix(cfg config, l *loader, res mixResult, stdout, stderr io.Writer, cpuLine string) error {
	sec := res.elapsed.Seconds()
	var all []time.Duration
	groups := map[string]*kindTally{"verify": {}, "console": {}, "bot": {}}
	total := &kindTally{}
	for _, k := range mixKinds {
		t := res.kinds[k]
		if t == nil {
			continue
		}
		all = append(all, t.lat...)
		g := groups[kindGroup(k)]
		g.requests += t.requests
		g.answered += t.answered
		g.lat = append(g.lat, t.lat...)
		total.requests += t.requests
		total.answered += t.answered
		fmt.Fprintf(stdout, "mix_kind: kind=%s requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
			k, t.requests, float64(t.answered)/sec, ms(percentile(t.lat, 50)), ms(percentile(t.lat, 99)), t.requests-t.answered)
	}
	slices.Sort(all)
	for _, g := range []string{"verify", "console", "bot"} {
		t := groups[g]
		slices.Sort(t.lat)
		fmt.Fprintf(stdout, "mix_group: group=%s requests=%d share=%.3f rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
			g, t.requests, float64(t.requests)/float64(max(total.requests, 1)), float64(t.answered)/sec,
			ms(percentile(t.lat, 50)), ms(percentile(t.lat, 99)), t.requests-t.answered)
	}
	v := res.verify
	fmt.Fprintf(stdout, "mix: elapsed=%.3fs requests=%d verify_valid=%d verify_wrong=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		sec, total.requests, len(v.validLat), len(v.wrongLat), ms(percentile(all, 50)), ms(percentile(all, 90)),
		ms(percentile(all, 99)), ms(percentile(all, 100)))
	starvedPct := 100 * v.starved.Seconds() / (float64(cfg.clients) * sec)
	fmt.Fprintf(stdout, "verify_client_wait: starved_pct=%.2f starved_waits=%d retired_accounts=%d\n", starvedPct, v.starveN, v.retired)
	if starvedPct > 1 {
		fmt.Fprintf(stderr, "rdload: WARNING: clients waited %.1f %% of the mix for an account with an unused code: "+
			"the tool limited the rate; rerun with more --accounts (this run: %d)\n", starvedPct, cfg.accounts)
	}
	fmt.Fprintln(stdout, cpuLine)
	if cfg.pid > 0 {
		if peak, rss, err := serverMemory(cfg.pid); err != nil {
			fmt.Fprintf(stderr, "rdload: cannot read the server's memory: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "server_peak_rss_mb=%.1f server_rss_mb=%.1f\n", peak, rss)
		}
	}
	totalErrs, kinds := l.errs.summary()
	if totalErrs > 0 {
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(stderr, "rdload: errors: %s\n", k)
		}
	}
	// Errors are those of the requests (requests − answered as expected) and any other the log
	// holds; the two agree unless a request failed only because the run was interrupted.
	errs := max(totalErrs, total.requests-total.answered)
	fmt.Fprintf(stdout, "mix_rps=%.0f verify_rps=%.0f console_rps=%.0f bot_rps=%.0f p99_ms=%.2f errors=%d\n",
		float64(total.answered)/sec, float64(groups["verify"].answered)/sec, float64(groups["console"].answered)/sec,
		float64(groups["bot"].answered)/sec, ms(percentile(all, 99)), errs)
	if errs > 0 {
		return errFailedRun
	}
	return nil
}
