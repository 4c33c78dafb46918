//go:build rdtest

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// This file is compiled only with `-tags rdtest`. It adds the hidden command `crashwork`, the
// workload of the crash test (crash_test.go): several goroutines drive the real domain over the
// configured SQLite database, as the host API and the console would, and print one line
//
//	ack <kind> <ids...>
//
// on stdout after each operation's transaction has committed (the service call returned), and
// nothing before. The test kills the process with SIGKILL at random moments, restarts it, and
// finally checks that every acknowledged operation is in the database.
//
// Acknowledgements (steps are TOTP time steps; no code, secret or token is ever printed):
//
//	ack account <account>                 the account was upserted
//	ack enrolled <account> <step>         enrollment confirmed with the code of step
//	ack failed <account>                  a wrong code was refused and counted
//	ack verified <account> <step>         a login code of step was accepted (and consumed)
//	ack stepup <agent> <step>             an agent's step-up code of step was accepted
//	ack ticket <ticket> <state>           the ticket reached state (open, verifying,
//	                                      pending_approval, cooling_off, frozen)
//	ack item <ticket> <item>              the checklist item was recorded as passed
//	ack executed <ticket> <account>       the reset of the account was executed
//	ack reenrolled <ticket> <account> <step>  the user re-enrolled from the link; the ticket closed
//
// Time: the cooling-off asks for 24 hours to pass. The command's clock is the real one plus an
// offset that only grows, kept in crashwork.json beside the database and written (fsync'd)
// before any transaction can use it, so a restarted process never runs behind a time that was
// committed. Each start moves it an hour on, so that no TOTP step consumed before the kill is
// offered again. Every sequence that must not see time jump (a code computed then checked, a
// step-up then the approval it proves) runs under the clock's read lock; moving the clock takes
// the write lock.
//
// crashwork.json also holds the workload's agents and their TOTP secrets: this is a test
// fixture (mode 0600, a temporary directory), never run against a real desk.

// testCommand routes the commands of the rdtest build.
func (a *app) testCommand(ctx context.Context, cmd string, args []string) (bool, error) {
	switch cmd {
	case "crashwork":
		return true, a.crashwork(ctx, args)
	}
	return false, nil
}

const crashworkHelp = `
Test build only. Drive the domain over the configured SQLite database with several goroutines
(accounts, enrollments, verifications, recovery tickets through checklist, approval,
cooling-off, veto, execution and re-enrollment) and print "ack ..." after each commit, until
killed, SIGTERM, or --duration. Used by the crash test, which kills it with SIGKILL.`

// crashStateFile is the workload's own state, beside the database.
const crashStateFile = "crashwork.json"

// crashStartJump is how far each start moves the clock on.
const crashStartJump = time.Hour

func (a *app) crashwork(ctx context.Context, args []string) error {
	fs := a.command("crashwork", "crashwork [--workers N] [--duration D] [flags]", crashworkHelp)
	workers := fs.Int("workers", 6, "number of goroutines driving the domain")
	duration := fs.Duration("duration", 2*time.Minute, "stop after this long")
	pos, err := a.parseAll(fs, "crashwork", args)
	if err != nil {
		return err
	}
	if err := wantArgs("crashwork", pos); err != nil {
		return err
	}
	if *workers < 1 || *workers > 64 {
		return usagef("crashwork", "crashwork: --workers must be 1 to 64")
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	if sqlstore.IsPostgres(cfg.DB) {
		return errors.New("crashwork: SQLite only (the crash test kills the process that writes the file)")
	}
	st, err := loadCrashState(filepath.Join(keyFileDir(cfg.DB), crashStateFile))
	if err != nil {
		return err
	}
	clk := &crashClock{state: st}
	clk.offset.Store(st.OffsetNanos)
	a.now = clk.now // the service below reads this clock
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	return a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		run := make([]byte, 4)
		rand.Read(run)
		k := &crashKit{ctx: ctx, svc: o.svc, clk: clk, out: &acker{w: a.stdout}, mail: &crashMailbox{svc: o.svc, got: map[string]string{}},
			run: hex.EncodeToString(run), api: recovery.Actor{Type: recovery.ActorAPIKey, ID: "crashwork"}, log: a.log}
		if err := k.crews(*workers); err != nil {
			return err
		}
		if err := clk.advanceTo(clk.now().Add(crashStartJump)); err != nil {
			return err
		}
		if err := k.tick(); err != nil {
			return err
		}
		resumed, err := k.unfinished()
		if err != nil {
			return err
		}
		errs := make(chan error, *workers)
		for i := range *workers {
			w := &crashWorker{crashKit: k, n: i, crew: st.Crews[i], last: map[string]int64{},
				rng: mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))}
			var mine []recovery.Ticket
			for j := i; j < len(resumed); j += *workers {
				mine = append(mine, resumed[j])
			}
			go func() { errs <- w.loop(mine) }()
		}
		var first error
		for range *workers {
			if err := <-errs; err != nil && first == nil {
				first = err
				cancel()
			}
		}
		return first
	})
}

// crashState is crashwork.json.
type crashState struct {
	path        string
	mu          sync.Mutex
	OffsetNanos int64       `json:"offset_ns"`
	Crews       []crashCrew `json:"crews"`
}

// crashCrew are one worker's agents: the agent who works the checklist and requests, the
// supervisor who approves and the one who executes.
type crashCrew struct {
	Requester crashAgent `json:"requester"`
	Approver  crashAgent `json:"approver"`
	Executor  crashAgent `json:"executor"`
}

type crashAgent struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

func (ag crashAgent) actor() recovery.Actor {
	return recovery.Actor{Type: recovery.ActorAgent, ID: ag.ID}
}

func loadCrashState(path string) (*crashState, error) {
	st := &crashState{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("crashwork: %s: %w", path, err)
	}
	return st, nil
}

// save writes the state durably: a new file, fsync'd, renamed over the old one, and the
// directory fsync'd, so that a kill leaves the old state or the new one.
func (st *crashState) save() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := st.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, st.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(st.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// crashClock is the real clock plus a persisted offset that only grows.
type crashClock struct {
	gate   sync.RWMutex // read: a sequence that time must not jump under; write: a jump
	offset atomic.Int64 // nanoseconds
	state  *crashState
}

func (c *crashClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// hold runs fn while the clock cannot jump. fn must not call hold or advanceTo.
func (c *crashClock) hold(fn func() error) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	return fn()
}

// advanceTo moves the clock so that now() is at least t. The new offset is on disk before the
// clock shows it.
func (c *crashClock) advanceTo(t time.Time) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	d := t.Sub(c.now())
	if d <= 0 {
		return nil
	}
	off := c.offset.Load() + int64(d)
	c.state.mu.Lock()
	c.state.OffsetNanos = off
	c.state.mu.Unlock()
	if err := c.state.save(); err != nil {
		return fmt.Errorf("crashwork: save the clock: %w", err)
	}
	c.offset.Store(off)
	return nil
}

// acker prints acknowledgements, one whole line per write (stdout is a pipe: the line is
// delivered whole or, cut by the kill, not at all as a complete line).
type acker struct {
	mu sync.Mutex
	w  io.Writer
}

func (k *acker) ack(fields ...any) {
	var b strings.Builder
	b.WriteString("ack")
	for _, f := range fields {
		fmt.Fprintf(&b, " %v", f)
	}
	b.WriteByte('\n')
	k.mu.Lock()
	defer k.mu.Unlock()
	io.WriteString(k.w, b.String())
}

// crashMailbox is the user's inbox: it delivers due e-mail notices from the outbox (through
// the real dispatch path) and keeps the codes and link tokens they carry, by ticket and kind.
type crashMailbox struct {
	svc *recovery.Service
	mu  sync.Mutex // one dispatch at a time, so that a notice queued before fetch is found by it
	got map[string]string
}

var (
	crashEmailCode = regexp.MustCompile(`code is (\d{6})\.`)
	crashVeto      = regexp.MustCompile(`/veto/([A-Za-z0-9_-]{22,})`)
	crashReenroll  = regexp.MustCompile(`/reenroll/([A-Za-z0-9_-]{22,})`)
)

// fetch returns the secret of the newest notice of kind for the ticket, dispatching what is due
// if it has not arrived yet; "" when there is none. Callers hold the clock (dispatch commits).
func (m *crashMailbox) fetch(ctx context.Context, ticketID, kind string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := ticketID + "/" + kind
	if v, ok := m.got[key]; ok {
		delete(m.got, key)
		return v, nil
	}
	if err := m.drain(ctx); err != nil {
		return "", err
	}
	v := m.got[key]
	delete(m.got, key)
	return v, nil
}

// has reports whether a notice of kind for the ticket has been delivered and not fetched.
func (m *crashMailbox) has(ticketID, kind string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.got[ticketID+"/"+kind]
	return ok
}

// drain delivers every due e-mail notice. Callers hold m.mu.
func (m *crashMailbox) drain(ctx context.Context) error {
	for {
		n, err := m.svc.DispatchDue(ctx, recovery.NoticeEmail, 100, func(_ context.Context, n recovery.Notice) error {
			var rx *regexp.Regexp
			switch n.Kind {
			case "email_code":
				rx = crashEmailCode
			case "veto_request":
				rx = crashVeto
			case "reenroll_link":
				rx = crashReenroll
			default:
				return nil
			}
			if s := rx.FindStringSubmatch(n.Body); s != nil {
				m.got[n.TicketID+"/"+n.Kind] = s[1]
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("crashwork: dispatch e-mail: %w", err)
		}
		if n < 100 {
			return nil
		}
	}
}

// crashKit is what every worker shares.
type crashKit struct {
	ctx  context.Context
	svc  *recovery.Service
	clk  *crashClock
	out  *acker
	mail *crashMailbox
	run  string // this process's id, in the ids it creates
	api  recovery.Actor
	log  *slog.Logger
}

// crews makes sure the state has n crews of agents, creating (and saving) the missing ones. An
// agent made by a start killed before the save is left behind unused: its e-mail carries the
// run id, so the next start makes new ones.
func (k *crashKit) crews(n int) error {
	st := k.clk.state
	have := len(st.Crews)
	if have >= n {
		return nil
	}
	made := make([]crashCrew, n-have)
	errs := make(chan error, len(made))
	for i := range made {
		go func() {
			var c crashCrew
			var err error
			w := have + i
			if c.Requester, err = k.newAgent(w, "agent", recovery.RoleAgent); err == nil {
				if c.Approver, err = k.newAgent(w, "approver", recovery.RoleSupervisor); err == nil {
					c.Executor, err = k.newAgent(w, "executor", recovery.RoleSupervisor)
				}
			}
			made[i] = c
			errs <- err
		}()
	}
	for range made {
		if err := <-errs; err != nil {
			return err
		}
	}
	st.mu.Lock()
	st.Crews = append(st.Crews, made...)
	st.mu.Unlock()
	return st.save()
}

// newAgent creates an agent with a password and an active TOTP enrollment.
func (k *crashKit) newAgent(worker int, role, level string) (crashAgent, error) {
	email := fmt.Sprintf("crash-%s-w%d-%s@desk.example", k.run, worker, role)
	ag, link, err := k.svc.CreateAgent(k.ctx, recovery.Actor{Type: recovery.ActorSystem, ID: "crashwork"}, email, "Crash "+role, level)
	if err != nil {
		return crashAgent{}, fmt.Errorf("crashwork: create agent: %w", err)
	}
	if _, err := k.svc.CompleteSetup(k.ctx, link[strings.LastIndex(link, "/")+1:], "crashwork-password-"+k.run); err != nil {
		return crashAgent{}, fmt.Errorf("crashwork: agent setup: %w", err)
	}
	out := crashAgent{ID: ag.ID}
	err = k.clk.hold(func() error {
		en, err := k.svc.AgentBeginEnrollment(k.ctx, out.actor(), ag.ID)
		if err != nil {
			return err
		}
		out.Secret = en.Secret
		_, err = k.svc.AgentConfirmEnrollment(k.ctx, out.actor(), ag.ID, crashCode(en.Secret, recovery.Step(k.clk.now())))
		return err
	})
	if err != nil {
		return crashAgent{}, fmt.Errorf("crashwork: agent enrollment: %w", err)
	}
	return out, nil
}

// tick runs the workflow's timed work (cooling-off ends, idle tickets expire).
func (k *crashKit) tick() error {
	return k.clk.hold(func() error {
		_, err := k.svc.Tick(k.ctx)
		if err != nil {
			return fmt.Errorf("crashwork: tick: %w", err)
		}
		return nil
	})
}

// unfinished lists the tickets an earlier, killed process left on the way to a reset: pending
// approval, cooling off or ready, and executed ones whose re-enrollment link is still in the
// outbox (delivered now; a link delivered to the killed process is lost with it).
func (k *crashKit) unfinished() ([]recovery.Ticket, error) {
	ts, err := k.svc.Tickets(k.ctx, recovery.TicketFilter{Limit: 500, States: []recovery.TicketState{
		recovery.TicketPendingApproval, recovery.TicketCoolingOff, recovery.TicketReady, recovery.TicketExecuted}})
	if err != nil {
		return nil, fmt.Errorf("crashwork: list tickets: %w", err)
	}
	err = k.clk.hold(func() error {
		k.mail.mu.Lock()
		defer k.mail.mu.Unlock()
		return k.mail.drain(k.ctx)
	})
	if err != nil {
		return nil, err
	}
	var out []recovery.Ticket
	for _, t := range ts {
		if t.State != recovery.TicketExecuted || k.mail.has(t.ID, "reenroll_link") {
			out = append(out, t)
		}
	}
	return out, nil
}

func crashCode(secret string, step int64) string {
	c, err := recovery.CodeAt(secret, step)
	if err != nil {
		panic(err) // secrets come from the domain: a bad one is a bug here
	}
	return c
}

// crashWrongCode is a 6-digit code that no step near now accepts.
func crashWrongCode(secret string, now time.Time) string {
	near := map[string]bool{}
	for d := int64(-2); d <= 2; d++ {
		near[crashCode(secret, recovery.Step(now)+d)] = true
	}
	for _, w := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !near[w] {
			return w
		}
	}
	panic("unreachable: five steps cannot match six codes")
}

// crashWorker drives the domain with one crew.
type crashWorker struct {
	*crashKit
	n     int
	crew  crashCrew
	last  map[string]int64 // agent id → the last step this process consumed for it
	rng   *mrand.Rand
	cycle int
}

// errMovedOn says another actor (the workflow's expiry) took the ticket out of the worker's hands.
var errMovedOn = errors.New("the ticket moved on")

func (w *crashWorker) loop(resumed []recovery.Ticket) error {
	for _, t := range resumed {
		if err := w.resume(t); err != nil {
			if errors.Is(err, errMovedOn) {
				w.log.Info("crashwork: an unfinished ticket expired before it could be resumed", "ticket", t.ID)
				continue
			}
			if w.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("crashwork: worker %d resuming ticket %s: %w", w.n, t.ID, err)
		}
	}
	for w.ctx.Err() == nil {
		if err := w.customer(); err != nil {
			if errors.Is(err, errMovedOn) {
				w.log.Info("crashwork: the workflow expired a ticket while the worker was on it", "worker", w.n, "cycle", w.cycle)
				continue
			}
			if w.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("crashwork: worker %d cycle %d: %w", w.n, w.cycle, err)
		}
	}
	return nil
}

// resume takes an unfinished ticket of an earlier process on towards its reset.
func (w *crashWorker) resume(t recovery.Ticket) error {
	switch t.State {
	case recovery.TicketPendingApproval:
		if err := w.approve(t.ID); err != nil {
			return err
		}
		return w.finish(t.ID, t.AccountID, true)
	case recovery.TicketCoolingOff, recovery.TicketReady:
		return w.finish(t.ID, t.AccountID, true)
	case recovery.TicketExecuted:
		return w.reenroll(t.ID, t.AccountID)
	}
	return nil
}

// customer is one account's life: created, enrolled, a wrong and a right code, then lost phone:
// a ticket, the checklist, the request, the approval, and then a veto (1 in 6) or the reset,
// after which half of the users re-enroll.
func (w *crashWorker) customer() error {
	w.cycle++
	acct := fmt.Sprintf("cw-%s-%d-%d", w.run, w.n, w.cycle)
	email := acct + "@example.com"
	name := fmt.Sprintf("Crash Customer %d", w.cycle)
	phone := fmt.Sprintf("+47 2200%04d", w.cycle%10000)
	deposit := fmt.Sprintf("%d.50 EUR", 100+w.cycle)
	in := recovery.AccountInput{Email: &email, DisplayName: &name, Phone: &phone,
		Facts: map[string]any{"last_deposit_amount": deposit, "signup_country": "Norway"}}
	if _, _, err := w.svc.UpsertAccount(w.ctx, w.api, acct, in); err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	w.out.ack("account", acct)
	var secret string
	err := w.clk.hold(func() error {
		en, err := w.svc.BeginEnrollment(w.ctx, w.api, acct, "")
		if err != nil {
			return fmt.Errorf("begin enrollment: %w", err)
		}
		secret = en.Secret
		step := recovery.Step(w.clk.now())
		if _, err := w.svc.ConfirmEnrollment(w.ctx, w.api, acct, crashCode(secret, step)); err != nil {
			return fmt.Errorf("confirm enrollment: %w", err)
		}
		w.out.ack("enrolled", acct, step)
		return nil
	})
	if err != nil {
		return err
	}
	err = w.clk.hold(func() error {
		_, err := w.svc.Verify(w.ctx, w.api, acct, crashWrongCode(secret, w.clk.now()))
		if !errors.Is(err, recovery.ErrInvalidCode) {
			return fmt.Errorf("a wrong code: %v, want %v", err, recovery.ErrInvalidCode)
		}
		w.out.ack("failed", acct)
		// The confirmation consumed the current step: the phone's next code logs in.
		step := recovery.Step(w.clk.now()) + 1
		if _, err := w.svc.Verify(w.ctx, w.api, acct, crashCode(secret, step)); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		w.out.ack("verified", acct, step)
		return nil
	})
	if err != nil {
		return err
	}

	o, err := w.svc.OpenTicket(w.ctx, w.crew.Requester.actor(), recovery.OpenRequest{Channel: recovery.ChannelConsole,
		Claimed: email, Message: "I lost my phone and cannot sign in"})
	if err != nil {
		return fmt.Errorf("open ticket: %w", err)
	}
	id := o.TicketID
	w.out.ack("ticket", id, recovery.TicketOpen)
	req := w.crew.Requester.actor()
	err = w.clk.hold(func() error {
		if err := w.change(id, func(v int64) error { return w.svc.SendEmailCode(w.ctx, req, id, v, "email_code") }); err != nil {
			return fmt.Errorf("send e-mail code: %w", err)
		}
		w.out.ack("ticket", id, recovery.TicketVerifying)
		code, err := w.mail.fetch(w.ctx, id, "email_code")
		if err != nil {
			return err
		}
		if code == "" {
			return errors.New("the e-mail code was not delivered")
		}
		return w.change(id, func(v int64) error {
			ok, err := w.svc.CheckEmailCode(w.ctx, req, id, v, "email_code", code)
			if err == nil && !ok {
				err = errors.New("the e-mail code did not match")
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("e-mail code: %w", err)
	}
	w.out.ack("item", id, "email_code")
	err = w.change(id, func(v int64) error {
		ok, err := w.svc.CheckKnowledge(w.ctx, req, id, v, "knowledge_last_deposit", deposit)
		if err == nil && !ok {
			err = errors.New("the deposit did not match")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("knowledge: %w", err)
	}
	w.out.ack("item", id, "knowledge_last_deposit")
	err = w.change(id, func(v int64) error {
		return w.svc.RequestReset(w.ctx, req, id, v, "e-mail code and the last deposit match")
	})
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	w.out.ack("ticket", id, recovery.TicketPendingApproval)
	if err := w.approve(id); err != nil {
		return err
	}
	if w.rng.IntN(6) == 0 {
		return w.veto(id)
	}
	return w.finish(id, acct, w.rng.IntN(2) == 0)
}

// change runs a ticket change with the ticket's current version, again if another change
// (the workflow's tick) came in between. A ticket the workflow expired is errMovedOn.
func (w *crashWorker) change(id string, fn func(version int64) error) error {
	for range 5 {
		td, err := w.svc.TicketDetail(w.ctx, id)
		if err != nil {
			return err
		}
		if td.State == recovery.TicketExpired {
			return errMovedOn
		}
		err = fn(td.Version)
		if errors.Is(err, recovery.ErrTicketState) {
			// Expired by a tick between the read and the change?
			if td, rerr := w.svc.TicketDetail(w.ctx, id); rerr == nil && td.State == recovery.TicketExpired {
				return errMovedOn
			}
		}
		if !errors.Is(err, recovery.ErrConflict) {
			return err
		}
	}
	return errors.New("five conflicts in a row")
}

// stepUp gives fn a fresh step-up of the agent, under the clock's read lock.
func (w *crashWorker) stepUp(ag crashAgent, fn func(at time.Time) error) error {
	if last, ok := w.last[ag.ID]; ok {
		// The code of a step the agent already used would be a replay: wait for the next step.
		if err := w.clk.advanceTo(time.Unix((last+1)*30, 0)); err != nil {
			return err
		}
	}
	return w.clk.hold(func() error {
		step := recovery.Step(w.clk.now())
		at, err := w.svc.AgentStepUp(w.ctx, ag.actor(), ag.ID, crashCode(ag.Secret, step))
		if err != nil {
			return fmt.Errorf("step-up: %w", err)
		}
		w.last[ag.ID] = step
		w.out.ack("stepup", ag.ID, step)
		return fn(at)
	})
}

func (w *crashWorker) approve(id string) error {
	err := w.stepUp(w.crew.Approver, func(at time.Time) error {
		return w.change(id, func(v int64) error {
			return w.svc.Approve(w.ctx, w.crew.Approver.actor(), id, v, at, "checklist complete")
		})
	})
	if err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	w.out.ack("ticket", id, recovery.TicketCoolingOff)
	return nil
}

// veto plays the owner who follows the veto link of the approval notice.
func (w *crashWorker) veto(id string) error {
	return w.clk.hold(func() error {
		token, err := w.mail.fetch(w.ctx, id, "veto_request")
		if err != nil {
			return err
		}
		if token == "" {
			return errors.New("the veto link was not delivered")
		}
		if _, err := w.svc.Veto(w.ctx, recovery.Actor{Type: recovery.ActorEndUser, ID: "crashwork"}, token); err != nil {
			return fmt.Errorf("veto: %w", err)
		}
		w.out.ack("ticket", id, recovery.TicketFrozen)
		return nil
	})
}

// finish lets the cooling-off pass, executes the reset and, with reenroll, re-enrolls.
func (w *crashWorker) finish(id, acct string, reenroll bool) error {
	td, err := w.svc.TicketDetail(w.ctx, id)
	if err != nil {
		return err
	}
	if td.State == recovery.TicketCoolingOff {
		if err := w.clk.advanceTo(td.CoolingUntil.Add(time.Second)); err != nil {
			return err
		}
		if err := w.tick(); err != nil {
			return err
		}
	}
	err = w.stepUp(w.crew.Executor, func(at time.Time) error {
		return w.change(id, func(v int64) error { return w.svc.Execute(w.ctx, w.crew.Executor.actor(), id, v, at) })
	})
	if err != nil {
		return fmt.Errorf("execute: %w", err)
	}
	w.out.ack("executed", id, acct)
	if !reenroll {
		return nil
	}
	return w.reenroll(id, acct)
}

// reenroll plays the user who opens the re-enrollment link, if it is still valid.
func (w *crashWorker) reenroll(id, acct string) error {
	return w.clk.hold(func() error {
		token, err := w.mail.fetch(w.ctx, id, "reenroll_link")
		if err != nil || token == "" {
			return err // delivered to a process that was killed: the link is lost with it
		}
		td, err := w.svc.TicketDetail(w.ctx, id)
		if err != nil {
			return err
		}
		if td.State != recovery.TicketExecuted || !w.clk.now().Before(td.LinkExpiresAt) {
			return nil
		}
		en, err := w.svc.BeginEnrollment(w.ctx, w.api, acct, token)
		if err != nil {
			return fmt.Errorf("re-enrollment: %w", err)
		}
		step := recovery.Step(w.clk.now())
		if _, err := w.svc.ConfirmEnrollment(w.ctx, w.api, acct, crashCode(en.Secret, step)); err != nil {
			return fmt.Errorf("confirm re-enrollment: %w", err)
		}
		w.out.ack("reenrolled", id, acct, step)
		return nil
	})
}
