// Command rdload measures a running RecoveryDesk server: how many TOTP verifications a second its
// host API answers, with what latency, compared with how many GET /healthz a second the same
// server answers on the same machine. Its last output line is the acceptance figure:
//
//	verify_rps=<n> healthz_rps=<n> ratio=<verify/healthz> p50_ms=<n> p99_ms=<n> errors=<n>
//
// # Method
//
// Setup (not timed): N clients create the accounts concurrently through the host API with the
// given API key: PUT /api/v1/accounts/{id}, POST …/2fa/enrollment (which returns the secret) and
// POST …/2fa/enrollment/confirm with the code of the current step, which consumes that step. The
// tool then waits, if needed, for the next 30 s step, so that every account has at least two
// unused codes (steps cur and cur+1) when the timed phase starts, and computes every code the
// phase can need before the clock starts.
//
// Verify (timed, --duration): N goroutines share one http.Client whose keep-alive pool holds a
// connection per goroutine. Accounts circulate through one queue, so an account is in the hands of
// at most one goroutine at a time and its client-side state needs no lock. For each request the
// goroutine takes the next account and sends either
//
//   - a valid code: the code of the smallest step in cur−1..cur+1 that is greater than the highest
//     step the server may have consumed for the account (its confirmation step at first). This
//     obeys the server's replay rule (accept only step > last_step) and its ±1 window; cur−1 is
//     left out within 3 s of a step boundary, and steps whose code equals another step's code are
//     left out, because the server would match the other step. The step is recorded as consumed
//     before the answer arrives, so even an unanswered request can never cause a replay later.
//     An account with no usable step is parked until the step at which it has one again; or
//   - a wrong code: a random 6-digit code that is none of the codes of steps cur−1..cur+2 (the
//     server's window whether its current step is cur or cur+1). A wrong code goes only to an
//     account whose last answered request was a success, so no account sees two failures in a row;
//     the server's backoff starts at the 5th consecutive failure and a success resets its count.
//     Each goroutine keeps a credit of (1 − valid ratio) per request and sends a wrong code when
//     the credit reaches one, so wrong codes are spread evenly at the requested ratio.
//
// A valid code must get 200 {"ok":true} and a wrong one 401 {"error":"invalid_code"}; any other
// answer (5xx, 429, a transport error, a valid code refused, a wrong one accepted) is an error, and
// the first distinct ones are printed to stderr. Every request's latency is kept; p50 and p99 are
// nearest-rank percentiles over the whole phase. verify_rps counts requests answered as expected.
// The time a goroutine waits because every account is in use or parked is reported as starved_pct:
// above 1 % the tool, not the server, limited the rate, and --accounts should be raised.
//
// Ceiling (timed): right after, the same N goroutines and the same client send GET /healthz for as
// long as the verify phase lasted; healthz_rps is the server's rate for a request that does no work.
//
// # Mix mode
//
// With --mix the timed phase is a mix instead of verify + healthz (mixed.go): after the same
// setup, the same N goroutines each pick, request by request, a kind at random by --mix-weights:
// a verify request scheduled exactly as above; a console page (the queue, a ticket the queue
// lists, the audit log, the dashboard) or an internal note, as one agent signed in like a browser
// (password, then TOTP); or a Telegram update POSTed to /telegram/webhook from one of --chats
// simulated private chats, each walking a conversation in order (a chat is in the hands of one
// goroutine at a time, as the accounts are). Every answer is checked (200 pages and updates, 303
// for a note, 200/401 for valid/wrong codes); anything else, a 5xx or a transport error is an
// error. The report gives count, rate, p50/p99 and errors per kind and per group, and the last
// line
//
//	mix_rps=<n> verify_rps=<n> console_rps=<n> bot_rps=<n> p99_ms=<n> errors=<n>
//
// `rdload fake-botapi` (fakebotapi.go) serves a minimal fake Telegram Bot API for the server's
// bot in webhook mode, and cmd/rdload/bench.sh runs the whole measurement on SQLite or
// PostgreSQL.
//
// The tool only talks to --url (no proxy, no redirects). Every phase ends by itself: requests have
// a timeout, setup has its own. With --pid, the server's peak resident memory (VmHWM) is read from
// /proc at the end. The CPU the tool and (with --pid) the server used in each phase is reported
// too, since on a small machine the two share the cores.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errFailedRun):
		os.Exit(1) // the result line is printed; the errors were reported
	default:
		fmt.Fprintln(os.Stderr, "rdload:", err)
		os.Exit(1)
	}
}

var (
	errUsage     = errors.New("usage")
	errFailedRun = errors.New("the run had errors")
)

// config is one run's settings, from flags and RDLOAD_API_KEY.
type config struct {
	base         *url.URL
	apiKey       string
	clients      int
	duration     time.Duration
	accounts     int
	validRatio   float64
	prefix       string
	pid          int
	ip           string // "", "per-account" or an address
	timeout      time.Duration
	setupTimeout time.Duration
	accountsFile string // reuse and save accounts (accountsfile.go); "" = enroll new ones
	rounds       int    // verify+healthz rounds; the result line is the median round's

	mix *mixConfig // nil: the verify mode

	// waitStep makes the verify phase start in a step after every confirmation step (see the
	// package doc). Only tests turn it off.
	waitStep bool
}

const usageText = `rdload — load and acceptance tool for a running RecoveryDesk server

Usage: rdload --api-key KEY [flags]     (or RDLOAD_API_KEY=KEY rdload [flags])

Phases:
  setup    (not timed) create --accounts accounts with the N clients: PUT /api/v1/accounts/{id}
           {"email":"<id>@load.example"}, POST …/2fa/enrollment, POST …/2fa/enrollment/confirm with
           the current code; then wait, if needed, for the next 30 s TOTP step.
  verify   (timed, --duration) N goroutines, one keep-alive http.Client, POST
           /api/v1/accounts/{id}/2fa/verify; --valid-ratio of the requests carry a valid code
           (expect 200 {"ok":true}), the rest a wrong code (expect 401 invalid_code).
  healthz  (timed) GET /healthz with the same clients for as long as verify lasted.
  --rounds N repeats verify and healthz N times (each round after the first waits up to a minute
           for every account to have unused codes again); the last line is the round of median
           ratio, with p50/p99 over every round, and a "rounds:" line lists every ratio.

Codes are scheduled so the server never sees a replay and no account reaches its backoff: an
account is handled by one goroutine at a time; a valid request uses the smallest step of cur−1..cur+1
above the highest step already used on that account (waiting for the next step if there is none);
a wrong code is never equal to a code of cur−1..cur+2 and goes only to an account whose previous
request succeeded, so no account ever has two failures in a row (backoff starts at the 5th).

Output: informative lines, then as the last line of stdout
  verify_rps=<n> healthz_rps=<n> ratio=<verify/healthz> p50_ms=<n> p99_ms=<n> errors=<n>
verify_rps counts requests answered as expected; p50/p99 are over every verify request. Errors
are any other answer (5xx, 429, transport errors, a valid code refused, a wrong one accepted, a
failed /healthz); the first distinct ones go to stderr and the exit status is 1 if there were any.
starved_pct above 1 means the tool ran out of usable codes and limited the rate: raise --accounts.
Exit status 2: bad flags; 1: errors or a failed setup.
` + mixUsage + `
Fake Bot API for the bot kind: rdload fake-botapi --help.

Flags:
`

// parseFlags reads args and the environment into a config.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("rdload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var (
		rawURL     = fs.String("url", "http://127.0.0.1:8080", "base URL of the server; the only address the tool talks to")
		apiKey     = fs.String("api-key", "", "host API `KEY` (create one with: recoverydesk apikey add --name load); default $RDLOAD_API_KEY")
		clients    = fs.Int("clients", 32, "concurrent clients (goroutines and keep-alive connections) in every phase")
		duration   = fs.Duration("duration", 10*time.Second, "length of the verify phase (at least 10s unless --allow-short); the healthz phase lasts as long")
		allowShort = fs.Bool("allow-short", false, "allow --duration below 10s (for tests; such numbers are not for the README)")
		accounts   = fs.Int("accounts", 0, fmt.Sprintf("accounts to create; 0 = clients × %d req/s × duration × valid-ratio ÷ codes per account (2 in a phase within one step, +1 per step boundary), at least 4 per client", assumedPerClientRPS))
		validRatio = fs.Float64("valid-ratio", 0.8, "share of verify requests with a valid code, 0.5–1 (each wrong code needs a valid one on its account before the next)")
		prefix     = fs.String("prefix", "", "account id prefix, ids are <prefix>-<n> (letters, digits, . _ -); default rdload-<random> so runs never collide")
		pid        = fs.Int("pid", 0, "server process id: report its peak RSS (VmHWM) and CPU from /proc")
		ip         = fs.String("ip", "", `"ip" sent with each verify: empty = none (no per-IP limiter), "per-account" = a distinct 10.x.y.z per account, or one address (then its 30 failed codes a minute trip the per-IP limiter and count as errors)`)
		timeout    = fs.Duration("timeout", 10*time.Second, "timeout of one request")
		setupTO    = fs.Duration("setup-timeout", 10*time.Minute, "time limit of the setup phase")
		rounds     = fs.Int("rounds", 1, "repeat the verify and healthz phases this many times (each round waits up to a minute for fresh codes) and report the round of median ratio: on a noisy machine one round's ratio can be off by a fifth")
		accFile    = fs.String("accounts-file", "", "`FILE` of accounts to reuse, written by an earlier verify run against the same --url and database (setup is skipped, --accounts ignored); if FILE does not exist, the new accounts are saved there; rewritten after the run. It holds TOTP secrets (mode 0600): load-test databases only")
		mixF       = addMixFlags(fs)
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	bad := func(format string, a ...any) (config, error) {
		fmt.Fprintf(stderr, "rdload: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run rdload --help for usage.")
		return config{}, errUsage
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	c := config{
		apiKey: *apiKey, clients: *clients, duration: *duration, accounts: *accounts,
		validRatio: *validRatio, prefix: *prefix, pid: *pid, ip: *ip, timeout: *timeout,
		setupTimeout: *setupTO, accountsFile: *accFile, rounds: *rounds, waitStep: true,
	}
	u, err := url.Parse(*rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Not quoted: a user:password part would be printed back.
		return bad("--url is not an http(s) base URL without user, query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	c.base = u
	if c.apiKey == "" {
		c.apiKey = getenv("RDLOAD_API_KEY")
	}
	if c.apiKey == "" {
		return bad("an API key is required: --api-key or RDLOAD_API_KEY (create one with `recoverydesk apikey add --name load`)")
	}
	if c.clients < 1 || c.clients > 4096 {
		return bad("--clients must be 1–4096")
	}
	if c.duration <= 0 || (c.duration < 10*time.Second && !*allowShort) {
		return bad("--duration must be at least 10s (or pass --allow-short)")
	}
	if c.duration > time.Hour {
		return bad("--duration must be at most 1h")
	}
	if !(c.validRatio >= 0.5 && c.validRatio <= 1) {
		return bad("--valid-ratio must be between 0.5 and 1")
	}
	if c.accounts < 0 || c.accounts > 1_000_000 {
		return bad("--accounts must be 0 (computed) to 1000000")
	}
	if msg := mixF.apply(&c, getenv); msg != "" {
		return bad("%s", msg)
	}
	if c.mix != nil && (c.accountsFile != "" || c.rounds != 1) {
		return bad("--accounts-file and --rounds are for the verify mode, not --mix")
	}
	if c.rounds < 1 || c.rounds > 99 {
		return bad("--rounds must be 1–99")
	}
	if c.accounts == 0 {
		c.accounts = defaultAccounts(c.clients, c.duration, c.validRatio)
	}
	if c.prefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.prefix = "rdload-" + hex.EncodeToString(b[:])
	}
	if !prefixPattern.MatchString(c.prefix) {
		return bad("--prefix must be 1–100 letters, digits, '.', '_' or '-'")
	}
	if c.pid < 0 {
		return bad("--pid must be a process id")
	}
	if c.ip != "" && c.ip != "per-account" {
		if _, err := netip.ParseAddr(c.ip); err != nil {
			return bad("--ip must be empty, per-account or an IP address")
		}
	}
	if c.timeout <= 0 || c.setupTimeout <= 0 {
		return bad("--timeout and --setup-timeout must be positive")
	}
	return c, nil
}

// prefixPattern keeps account ids (prefix-n) within the server's id pattern and makes
// <id>@load.example a plain e-mail address.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// run parses the flags and performs one load run, writing the report to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "fake-botapi" {
		return runFakeBotAPI(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.mix != nil {
		return executeMix(ctx, cfg, stdout, stderr)
	}
	return execute(ctx, cfg, stdout, stderr)
}
