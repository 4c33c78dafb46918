package main

import (
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// The crash test (security.md: "a process killed with SIGKILL during writes restarts with
// integrity_check = ok, every acknowledged write present and the audit chain valid"). The
// workload is the rdtest build's hidden `crashwork` command (crashwork_rdtest.go), which prints
// "ack ..." after each commit.

// crashLoopsEnv sets how many times TestCrashSIGKILL kills the workload (default 50).
const crashLoopsEnv = "RECOVERYDESK_CRASH_LOOPS"

// crashSeedEnv repeats a run's kill times (the seed is logged).
const crashSeedEnv = "RECOVERYDESK_CRASH_SEED"

// TestCrashSIGKILL runs the real binary's crash workload — accounts, enrollments, right and
// wrong codes, tickets through the checklist, requests, step-up approvals, cooling-off, vetoes,
// executions and re-enrollments, from six goroutines over one SQLite file — and kills it with
// SIGKILL 50 to 400 ms after its first acknowledgement, 50 times (RECOVERYDESK_CRASH_LOOPS=200
// for more; more on a starved machine, until every kind of operation was acknowledged),
// restarting it each time on the same files. Then: PRAGMA integrity_check is ok,
// every acknowledged operation is in the database, no reset is half done (a revoked enrollment,
// the ticket.executed event and the queued re-enrollment notice exist together or not at all),
// and `audit verify` passes.
func TestCrashSIGKILL(t *testing.T) {
	bin := rdtestBinary(t)
	loops := 50
	if v := os.Getenv(crashLoopsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a whole number ≥ 1", crashLoopsEnv, v)
		}
		loops = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", crashSeedEnv, v)
		}
		seed = n
	}
	t.Logf("%d kills; kill times from %s=%d", loops, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	db := filepath.Join(dir, "recoverydesk.db")
	env := map[string]string{"RECOVERYDESK_DB": db}
	acks := newCrashAcks()
	// The run must do real work: verifications, step-ups, approvals and resets many times over.
	// A plain build acknowledges some ten times these floors and a -race build two to five
	// times; a machine starved by other tests may not, and then the kills go on, up to four
	// times as many and each later in its run, until every floor is met.
	floors := map[string]int{"verified": loops / 5, "stepup": loops / 5, "ticket cooling_off": loops / 10,
		"executed": loops / 10, "reenrolled": 1}
	floorsMet := func() bool {
		for kind, least := range floors {
			if acks.count[kind] < least {
				return false
			}
		}
		return true
	}
	start := time.Now()
	kills := 0
	// Each run must be killed: one that ends by itself, or not by SIGKILL, fails the test.
	for i := 1; i <= loops || (i <= 4*loops && !floorsMet()); i++ {
		kills = i
		if i == loops+1 {
			t.Logf("after %d kills not every kind of operation was acknowledged (%s): killing on", loops, acks.summary())
		}
		p := startProc(t, bin, dir, env, false, "crashwork")
		p.WaitOutput(t, `(?m)^ack `, 60*time.Second)
		// Not a wait for a condition: the kill is meant to land at a random moment of the writes.
		// The extra kills of a starved machine come later in each run (0.4 to 2 s), so that the
		// longest chain (execute, the link's delivery, re-enrollment) can finish in one life.
		delay := 50 + rng.IntN(351)
		if i > loops {
			delay = 400 + rng.IntN(1601)
		}
		time.Sleep(time.Duration(delay) * time.Millisecond)
		if p.Exited() {
			t.Fatalf("run %d: crashwork ended by itself (%v) before it was killed\nstderr:\n%s", i, p.exited, tail(p.Stderr.String(), 4000))
		}
		p.Kill()
		if err, _ := p.Wait(time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("run %d: exit %v, want killed by SIGKILL", i, err)
		}
		acks.add(t, p.Stdout.String())
		if i%10 == 0 {
			t.Logf("%d kills in %s; acknowledged so far: %s", i, time.Since(start).Round(100*time.Millisecond), acks.summary())
		}
	}
	dbState := crashReadDB(t, db)
	crashReport(t, "acknowledged but lost", acks.lost(dbState))
	crashReport(t, "half-done reset", dbState.halfDone())

	p := startProc(t, bin, dir, env, false, "audit", "verify")
	if err, ok := p.Wait(2 * time.Minute); !ok || err != nil {
		t.Fatalf("audit verify: %v (ended: %v)\nstdout:\n%s\nstderr:\n%s", err, ok, p.Stdout, tail(p.Stderr.String(), 4000))
	}
	m := okRE.FindStringSubmatch(p.Stdout.String())
	if m == nil || m[1] != strconv.Itoa(dbState.events) {
		t.Fatalf("audit verify printed %q, want ok: %d events", p.Stdout, dbState.events)
	}

	for kind, least := range floors {
		if got := acks.count[kind]; got < least {
			t.Errorf("%d %q acknowledged over %d kills, want at least %d", got, kind, kills, least)
		}
	}
	t.Logf("after %d kills in %s: integrity ok, %d audit events verified, acknowledged: %s",
		kills, time.Since(start).Round(100*time.Millisecond), dbState.events, acks.summary())
	if t.Failed() {
		return
	}
	crashChecksCanFail(t, db, acks, dbState)
}

// crashChecksCanFail damages the database as a half-done write would have left it, one way at
// a time, and requires the checks above to name the damage.
func crashChecksCanFail(t *testing.T, db string, acks *crashAcks, d *crashDB) {
	var executed []string // tickets executed and not re-enrolled, each with its own account
	reset := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(d.tickets)) {
		tk := d.tickets[id]
		if tk.executed {
			reset[tk.account] = true
		}
		if tk.state == "executed" && acks.items[id]["email_code"] {
			executed = append(executed, id)
		}
	}
	var active string // an enrolled account (or agent) that no reset touched
	for _, id := range slices.Sorted(maps.Keys(d.factors)) {
		if d.factors[id].state == "active" && !reset[id] {
			active = id
			break
		}
	}
	if len(executed) < 3 || active == "" {
		t.Fatalf("too little to damage: %d executed tickets, an untouched enrolled account: %q", len(executed), active)
	}
	cases := []struct {
		name, query string
		arg         string
		check       func(*crashDB) []string
		want        string
	}{
		{"re-enrollment notice missing", "DELETE FROM notices WHERE kind = 'reenroll_link' AND ticket_id = ?",
			executed[0], (*crashDB).halfDone, "ticket " + executed[0]},
		{"enrollment not revoked", "UPDATE factors SET state = 'active' WHERE account_id = ?",
			d.tickets[executed[1]].account, (*crashDB).halfDone, "ticket " + executed[1]},
		{"enrollment revoked without a reset", "UPDATE factors SET state = 'reset' WHERE account_id = ?",
			active, (*crashDB).halfDone, "account " + active + " "},
		{"acknowledged checklist item lost", "DELETE FROM checklist_results WHERE item_key = 'email_code' AND ticket_id = ?",
			executed[2], acks.lost, "checklist item email_code of ticket " + executed[2]},
	}
	for _, c := range cases {
		storetest.Exec(t, db, c.query, c.arg)
		problems := c.check(crashReadDB(t, db))
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
			t.Errorf("%s: the checks did not name %q; they found %q", c.name, c.want, problems)
		}
	}
}

// crashReport fails the test with the first problems found.
func crashReport(t *testing.T, what string, problems []string) {
	t.Helper()
	for i, p := range problems {
		if i == 20 {
			t.Errorf("… %d in all", len(problems))
			break
		}
		t.Errorf("%s: %s", what, p)
	}
}

// crashAcks are the acknowledgements of every run.
type crashAcks struct {
	count     map[string]int             // by kind ("ticket <state>" for ticket states)
	accounts  map[string]bool            // upserted
	enrolls   map[string]int             // account → enrollments acknowledged (re-enrollments too)
	failed    map[string]int             // account → wrong codes acknowledged
	verified  map[string]int             // account (or agent/<id>) → codes accepted
	steps     map[string]int64           // account (or agent/<id>) → highest step acknowledged
	states    map[string][]string        // ticket → states acknowledged
	items     map[string]map[string]bool // ticket → checklist items acknowledged as passed
	executed  map[string]string          // ticket → account
	reenrolls map[string]string          // ticket → account
	lines     int
}

func newCrashAcks() *crashAcks {
	return &crashAcks{count: map[string]int{}, accounts: map[string]bool{}, enrolls: map[string]int{}, failed: map[string]int{},
		verified: map[string]int{}, steps: map[string]int64{}, states: map[string][]string{},
		items: map[string]map[string]bool{}, executed: map[string]string{}, reenrolls: map[string]string{}}
}

// add reads one run's stdout. Only complete lines count: a line the kill cut short was never
// acknowledged.
func (a *crashAcks) add(t *testing.T, out string) {
	t.Helper()
	out = out[:strings.LastIndexByte(out, '\n')+1]
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "ack" {
			continue // the key file's creation notice on the first start
		}
		a.lines++
		bad := func() { t.Errorf("malformed acknowledgement %q", line) }
		step := func(s string) (int64, bool) {
			n, err := strconv.ParseInt(s, 10, 64)
			return n, err == nil && n > 0
		}
		want := map[string]int{"account": 3, "enrolled": 4, "failed": 3, "verified": 4, "stepup": 4, "ticket": 4,
			"item": 4, "executed": 4, "reenrolled": 5}
		if len(f) < 2 || want[f[1]] != len(f) {
			bad()
			continue
		}
		kind := f[1]
		switch kind {
		case "account":
			a.accounts[f[2]] = true
		case "enrolled", "verified", "stepup":
			n, ok := step(f[3])
			if !ok {
				bad()
				continue
			}
			id := f[2]
			if kind == "stepup" {
				id = recovery.AgentAccountID(id)
			}
			if kind == "enrolled" {
				a.enrolls[id]++
			} else {
				a.verified[id]++
			}
			a.steps[id] = max(a.steps[id], n)
		case "failed":
			a.failed[f[2]]++
		case "ticket":
			a.states[f[2]] = append(a.states[f[2]], f[3])
			kind += " " + f[3]
		case "item":
			if a.items[f[2]] == nil {
				a.items[f[2]] = map[string]bool{}
			}
			a.items[f[2]][f[3]] = true
		case "executed":
			a.executed[f[2]] = f[3]
		case "reenrolled":
			n, ok := step(f[4])
			if !ok {
				bad()
				continue
			}
			a.reenrolls[f[2]] = f[3]
			a.enrolls[f[3]]++
			a.steps[f[3]] = max(a.steps[f[3]], n)
		}
		a.count[kind]++
	}
}

func (a *crashAcks) summary() string {
	return fmt.Sprintf("%d lines: %d accounts, %d verified, %d failed, %d step-ups, %d approved, %d vetoed, %d executed, %d re-enrolled",
		a.lines, a.count["account"], a.count["verified"], a.count["failed"], a.count["stepup"], a.count["ticket cooling_off"],
		a.count["ticket frozen"], a.count["executed"], a.count["reenrolled"])
}

// crashStateEvents names the audit action that records each acknowledged ticket state.
var crashStateEvents = map[string]string{
	"open": "ticket.opened", "verifying": "ticket.verifying", "pending_approval": "ticket.requested",
	"cooling_off": "ticket.approved", "frozen": "ticket.frozen",
}

// crashLater lists the states a ticket may be in after it was acknowledged in a state, in this
// workload (no rejections, withdrawals, unfreezes or vetoes after a reset): forward along the
// workflow, or expired by the tick while it waited.
var crashLater = map[string][]string{
	"open":             {"open", "verifying", "pending_approval", "cooling_off", "ready", "executed", "closed", "frozen", "expired"},
	"verifying":        {"verifying", "pending_approval", "cooling_off", "ready", "executed", "closed", "frozen", "expired"},
	"pending_approval": {"pending_approval", "cooling_off", "ready", "executed", "closed", "frozen", "expired"},
	"cooling_off":      {"cooling_off", "ready", "executed", "closed", "frozen", "expired"},
	"frozen":           {"frozen"},
}

// lost lists every acknowledged operation the database lacks.
func (a *crashAcks) lost(d *crashDB) []string {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for id := range a.accounts {
		if !d.accounts[id] {
			fail("account %s", id)
		}
	}
	for id, n := range a.enrolls {
		if got := d.accountEvents["factor.enrolled|"+id]; got < n {
			fail("%d enrollments of %s, the audit has %d", n, id, got)
		}
	}
	for id, n := range a.failed {
		if got := d.accountEvents["totp.failed|"+id]; got < n {
			fail("%d wrong codes of %s, the audit has %d", n, id, got)
		}
	}
	for id, n := range a.verified {
		if got := d.accountEvents["totp.verified|"+id]; got < n {
			fail("%d accepted codes of %s, the audit has %d", n, id, got)
		}
	}
	for id, step := range a.steps {
		f, ok := d.factors[id]
		if !ok || f.lastStep < step {
			fail("step %d consumed by %s, last_step is %d (factor stored: %v)", step, id, f.lastStep, ok)
		}
	}
	for id, states := range a.states {
		tk, ok := d.tickets[id]
		if !ok {
			fail("ticket %s", id)
			continue
		}
		for _, st := range states {
			if d.ticketEvents[crashStateEvents[st]+"|"+id] == 0 {
				fail("ticket %s reached %s, but no %s event", id, st, crashStateEvents[st])
			}
			if !slices.Contains(crashLater[st], tk.state) {
				fail("ticket %s acknowledged %s, now %s", id, st, tk.state)
			}
		}
	}
	for id, items := range a.items {
		for item := range items {
			if !d.passed[id+"|"+item] {
				fail("checklist item %s of ticket %s", item, id)
			}
		}
	}
	for id, acct := range a.executed {
		tk := d.tickets[id]
		if tk.account != acct || !tk.executed || (tk.state != "executed" && tk.state != "closed") {
			fail("reset of %s by ticket %s: ticket %+v", acct, id, tk)
		}
	}
	for id, acct := range a.reenrolls {
		tk := d.tickets[id]
		if tk.account != acct || tk.state != "closed" || tk.outcome != recovery.OutcomeReenrolled || d.factors[acct].state != "active" {
			fail("re-enrollment of %s closing ticket %s: ticket %+v, factor %+v", acct, id, tk, d.factors[acct])
		}
	}
	slices.Sort(out)
	return out
}

// crashDB is what the checks read from the database file, over its own connection.
type crashDB struct {
	events        int                    // audit events
	accounts      map[string]bool        // account ids
	factors       map[string]crashFactor // by account id (agents: agent/<id>)
	codesLeft     map[string]int         // account → unused recovery codes
	tickets       map[string]crashTicket
	accountEvents map[string]int  // "action|target id" → count
	ticketEvents  map[string]int  // "action|ticket id" → count
	notices       map[string]bool // "kind|ticket id"
	passed        map[string]bool // "ticket id|item" recorded as passed
}

type crashFactor struct {
	state     string
	lastStep  int64
	hasSecret bool
	hold      bool
}

type crashTicket struct {
	account  string
	state    string
	outcome  string
	executed bool // executed_at is set
	hold     bool // hold_until is set
}

// crashReadDB checks the file's integrity first (the first connection after the kill also
// replays the WAL), then reads what the checks need.
func crashReadDB(t *testing.T, path string) *crashDB {
	t.Helper()
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []string
	crashQuery(t, db, "PRAGMA integrity_check", func(r string) { rows = append(rows, r) })
	if len(rows) != 1 || rows[0] != "ok" {
		t.Fatalf("PRAGMA integrity_check: %q", rows)
	}
	var fk int
	crashQuery(t, db, "PRAGMA foreign_key_check", func(table string, rowid sql.NullInt64, parent string, fkid int64) { fk++ })
	if fk != 0 {
		t.Errorf("PRAGMA foreign_key_check: %d violations", fk)
	}
	d := &crashDB{accounts: map[string]bool{}, factors: map[string]crashFactor{}, codesLeft: map[string]int{},
		tickets: map[string]crashTicket{}, accountEvents: map[string]int{}, ticketEvents: map[string]int{},
		notices: map[string]bool{}, passed: map[string]bool{}}
	crashQuery(t, db, "SELECT id FROM accounts", func(id string) { d.accounts[id] = true })
	crashQuery(t, db, "SELECT account_id, state, last_step, secret_sealed <> '', hold_until IS NOT NULL FROM factors",
		func(id, state string, step int64, secret, hold bool) {
			d.factors[id] = crashFactor{state: state, lastStep: step, hasSecret: secret, hold: hold}
		})
	crashQuery(t, db, "SELECT account_id, count(*) FROM recovery_codes WHERE used_at IS NULL GROUP BY account_id",
		func(id string, n int) { d.codesLeft[id] = n })
	crashQuery(t, db, "SELECT id, account_id, state, outcome, executed_at IS NOT NULL, hold_until IS NOT NULL FROM tickets",
		func(id, acct, state, outcome string, executed, hold bool) {
			d.tickets[id] = crashTicket{account: acct, state: state, outcome: outcome, executed: executed, hold: hold}
		})
	crashQuery(t, db, "SELECT action, target_id, coalesce(ticket_id, '') FROM audit_events", func(action, target, ticket string) {
		d.events++
		d.accountEvents[action+"|"+target]++
		if ticket != "" {
			d.ticketEvents[action+"|"+ticket]++
		}
	})
	crashQuery(t, db, "SELECT kind, ticket_id FROM notices", func(kind, ticket string) { d.notices[kind+"|"+ticket] = true })
	crashQuery(t, db, "SELECT ticket_id, item_key FROM checklist_results WHERE passed = 1", func(ticket, item string) {
		d.passed[ticket+"|"+item] = true
	})
	return d
}

// crashQuery runs q and calls fn with each row; fn's parameters say the columns' types.
func crashQuery(t *testing.T, db *sql.DB, q string, fn any) {
	t.Helper()
	fv := reflect.ValueOf(fn)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		args := make([]reflect.Value, fv.Type().NumIn())
		ptrs := make([]any, len(args))
		for i := range args {
			args[i] = reflect.New(fv.Type().In(i))
			ptrs[i] = args[i].Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for i := range args {
			args[i] = args[i].Elem()
		}
		fv.Call(args)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// halfDone lists the half-done resets: for every ticket, executed_at, its one ticket.executed
// event and its queued re-enrollment notice must exist together or not at all; an executed
// ticket's account must have its enrollment and recovery codes revoked and a hold (or have
// re-enrolled, closing the ticket); and no account may have its enrollment revoked without
// such a ticket. It also fails when there is no reset at all to check.
func (d *crashDB) halfDone() []string {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	resetFor := map[string]bool{} // accounts with an executed, not re-enrolled ticket
	resets := 0
	for id, tk := range d.tickets {
		events := d.ticketEvents["ticket.executed|"+id]
		notice := d.notices["reenroll_link|"+id]
		if events > 1 {
			fail("ticket %s has %d ticket.executed events", id, events)
		}
		if tk.executed != (events == 1) || tk.executed != notice {
			fail("ticket %s (%s): executed_at set %v, ticket.executed events %d, re-enrollment notice %v", id, tk.state, tk.executed, events, notice)
			continue
		}
		if !tk.executed {
			if tk.state == "executed" || tk.state == "closed" {
				fail("ticket %s is %s without an execution", id, tk.state)
			}
			continue
		}
		resets++
		f := d.factors[tk.account]
		switch {
		case !tk.hold:
			fail("ticket %s was executed without a hold", id)
		case tk.state == "executed":
			resetFor[tk.account] = true
			if f.state != "reset" || f.hasSecret || !f.hold || d.codesLeft[tk.account] != 0 {
				fail("ticket %s is executed, but account %s has factor %+v and %d recovery codes", id, tk.account, f, d.codesLeft[tk.account])
			}
		case tk.state == "closed" && tk.outcome == recovery.OutcomeReenrolled:
			if f.state != "active" || d.ticketEvents["ticket.reenrolled|"+id] != 1 {
				fail("ticket %s closed as re-enrolled, but account %s has factor %+v", id, tk.account, f)
			}
		default:
			fail("ticket %s was executed and is now %s (%s)", id, tk.state, tk.outcome)
		}
	}
	for id, f := range d.factors {
		if f.state == "reset" && !resetFor[id] {
			fail("account %s has its enrollment revoked, but no executed ticket", id)
		}
	}
	if resets == 0 {
		fail("the database holds no executed reset to check")
	}
	slices.Sort(out)
	return out
}
