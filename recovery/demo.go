package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The demo desk: agents with known passwords and TOTP secrets, customers and tickets in every
// state, made through the same domain operations an agent's clicks run, so the audit chain
// reads as if people had worked the desk for weeks. Never for production data: the passwords
// are printed and the secrets are shown.

// DemoMarkerEmail is the e-mail of the demo admin; its presence means the demo was seeded.
const DemoMarkerEmail = "admin@demo.recoverydesk.test"

// DemoAgent is a seeded agent with what it signs in with.
type DemoAgent struct {
	Email    string
	Name     string
	Role     string
	Password string
	Secret   string // base32 TOTP secret, for oathtool --totp -b
}

// DemoCustomer is a seeded end user the newcomer may sign in as on the end-user pages.
type DemoCustomer struct {
	ID       string
	Email    string
	Password string // "" when the customer has none
	Secret   string // base32 TOTP secret, "" without 2FA
}

// DemoResult says what SeedDemo did.
type DemoResult struct {
	Existed   bool // the demo was already there: nothing was done
	Agents    []DemoAgent
	Customers []DemoCustomer
	Tickets   map[TicketState]int
}

// demoClock is the seeding clock: demo data is dated in the past and moved forward by hand,
// never beyond the real time (a TOTP step consumed in the future would refuse the printed
// secrets' codes until then).
type demoClock struct {
	mu  sync.Mutex
	t   time.Time
	end time.Time
}

func (c *demoClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.end) {
		t = c.end
	}
	if t.After(c.t) {
		c.t = t
	}
}

func (c *demoClock) add(d time.Duration) { c.set(c.now().Add(d)) }

// demoSeeder drives a Service whose clock it owns.
type demoSeeder struct {
	ctx    context.Context
	svc    *Service
	clock  *demoClock
	api    Actor
	agents map[string]Actor // by short name
	secret map[string]string
	n      int
	pool   []DemoCustomer // customers with 2FA waiting for a ticket
	res    *DemoResult
}

// SeedDemo seeds the demo desk into store, with opts (opts.Now is the real clock; the seeding
// runs on its own clock in the past and ends at the real time). It is idempotent: when the demo
// admin exists it does nothing and reports Existed.
func SeedDemo(ctx context.Context, store Store, opts Options) (DemoResult, error) {
	real := time.Now
	if opts.Now != nil {
		real = opts.Now
	}
	end := real().UTC().Truncate(time.Second)
	// Twelve weeks back: the customers are older than the policy's 30-day window for changed
	// contact data, so their tickets carry no risk signal. 10 s into a step: no operation lands on a step boundary.
	start := end.Add(-12 * 7 * 24 * time.Hour).Truncate(time.Minute).Add(10 * time.Second)
	clk := &demoClock{t: start, end: end}
	opts.Now = clk.now
	svc, err := New(store, opts)
	if err != nil {
		return DemoResult{}, err
	}
	err = store.View(ctx, func(tx ReadTx) error {
		_, err := tx.AgentByEmail(DemoMarkerEmail)
		return err
	})
	if err == nil {
		return DemoResult{Existed: true}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return DemoResult{}, err
	}
	res := &DemoResult{Tickets: map[TicketState]int{}}
	d := &demoSeeder{ctx: ctx, svc: svc, clock: clk, api: Actor{Type: ActorAPIKey, ID: "demo", RequestID: "demo"},
		agents: map[string]Actor{}, secret: map[string]string{}, res: res}
	if err := d.seed(end); err != nil {
		return DemoResult{}, fmt.Errorf("demo: %w", err)
	}
	err = store.View(ctx, func(tx ReadTx) error {
		counts, err := tx.TicketStateCounts()
		res.Tickets = counts
		return err
	})
	return *res, err
}

var demoAgents = []struct{ short, email, name, role, password string }{
	{"admin", DemoMarkerEmail, "Ada Admin", RoleAdmin, "demo-admin-password"},
	{"sup1", "sam@demo.recoverydesk.test", "Sam Supervisor", RoleSupervisor, "demo-sam-password"},
	{"sup2", "sue@demo.recoverydesk.test", "Sue Supervisor", RoleSupervisor, "demo-sue-password"},
	{"agent1", "alex@demo.recoverydesk.test", "Alex Agent", RoleAgent, "demo-alex-password"},
	{"agent2", "bo@demo.recoverydesk.test", "Bo Agent", RoleAgent, "demo-bo-password"},
}

// demoTickets is how many tickets the demo opens (one customer each, so that no customer has
// repeated tickets), with a few to spare.
const demoTickets = 40

var demoNames = []string{"Mia Schmidt", "Noah Rossi", "Lea Dubois", "Omar Haddad", "Yuki Sato", "Ines Costa",
	"Jonas Berg", "Aisha Khan", "Luca Bianchi", "Sofia Novak", "Mateo Garcia", "Hana Kim"}

var demoCountries = []string{"Germany", "Italy", "France", "Spain", "Japan", "Portugal", "Norway", "Austria"}

func (d *demoSeeder) seed(end time.Time) error {
	ctx := d.ctx
	for _, a := range demoAgents {
		agent, link, err := d.svc.CreateAgent(ctx, Actor{Type: ActorSystem, ID: "demo"}, a.email, a.name, a.role)
		if err != nil {
			return err
		}
		token := link[strings.LastIndex(link, "/")+1:]
		if _, err := d.svc.CompleteSetup(ctx, token, a.password); err != nil {
			return err
		}
		actor := Actor{Type: ActorAgent, ID: agent.ID, RequestID: "demo"}
		en, err := d.svc.AgentBeginEnrollment(ctx, actor, agent.ID)
		if err != nil {
			return err
		}
		if _, err := d.svc.AgentConfirmEnrollment(ctx, actor, agent.ID, d.code(en.Secret)); err != nil {
			return err
		}
		d.agents[a.short], d.secret[a.short] = actor, en.Secret
		d.res.Agents = append(d.res.Agents, DemoAgent{Email: a.email, Name: a.name, Role: a.role, Password: a.password, Secret: en.Secret})
	}
	// Customers to sign in as on the end-user pages: one with 2FA, one without.
	if _, err := d.customer("demo-mia", "Mia Schmidt", "mia-demo-password", true, true); err != nil {
		return err
	}
	if _, err := d.customer("demo-noah", "Noah Rossi", "noah-demo-password", false, true); err != nil {
		return err
	}

	for range demoTickets {
		c, err := d.customer(fmt.Sprintf("cust-%04d", d.n+1), demoNames[d.n%len(demoNames)], "", true, false)
		if err != nil {
			return err
		}
		d.pool = append(d.pool, c)
	}
	// Six past weeks: recoveries of different lengths, a rejection, a denial and a veto each
	// week or two, so that the dashboard has a history.
	for w := range 6 {
		d.clock.set(end.Add(-time.Duration(7-w) * 7 * 24 * time.Hour))
		for i := range 1 + w%3 {
			if err := d.recovered(time.Duration(2+3*i+w) * time.Hour); err != nil {
				return err
			}
		}
		if err := d.rejected(); err != nil {
			return err
		}
		if w%2 == 1 {
			if err := d.vetoedThenDenied(); err != nil {
				return err
			}
		}
	}
	// The current state of the desk, dated in the last two days.
	d.clock.set(end.Add(-8 * 24 * time.Hour))
	if _, err := d.opened("I changed phones and the codes are gone"); err != nil { // will expire
		return err
	}
	if err := d.recovered(90 * time.Minute); err != nil {
		return err
	}
	d.clock.set(end.Add(-40 * time.Hour))
	if _, err := d.approved(); err != nil { // ready after the tick below
		return err
	}
	executed, err := d.approved()
	if err != nil {
		return err
	}
	frozen, err := d.approved()
	if err != nil {
		return err
	}
	if err := d.veto(frozen); err != nil {
		return err
	}
	d.clock.set(end.Add(-12 * time.Hour))
	if _, err := d.svc.Tick(ctx); err != nil { // ready tickets, and the stale one expires
		return err
	}
	if err := d.execute(executed, "sup1"); err != nil {
		return err
	}
	if err := d.rejected(); err != nil {
		return err
	}
	id, err := d.opened("Please cancel, I found my old phone")
	if err != nil {
		return err
	}
	if err := d.svc.Withdraw(ctx, Actor{Type: ActorEndUser, ID: "demo", RequestID: "demo"}, id); err != nil {
		return wrapDemo("withdraw", err)
	}
	if err := d.selfService(); err != nil {
		return err
	}
	d.clock.set(end.Add(-3 * time.Hour))
	if _, err := d.approved(); err != nil { // cooling off
		return err
	}
	d.clock.set(end.Add(-90 * time.Minute))
	for range 2 {
		if _, err := d.requested(); err != nil {
			return err
		}
	}
	d.clock.set(end.Add(-50 * time.Minute))
	id, err = d.opened("Lost my phone on the train")
	if err != nil {
		return err
	}
	if err := d.emailCode(id); err != nil { // verifying
		return err
	}
	d.clock.set(end.Add(-20 * time.Minute))
	if _, err := d.opened("Hi, new phone, no codes. Can you help?"); err != nil {
		return err
	}
	if _, err := d.opened("My authenticator app was deleted <script>alert(1)</script>"); err != nil {
		return err
	}
	return nil
}

// code is the TOTP code of secret at the seeding clock.
func (d *demoSeeder) code(secret string) string {
	c, _ := CodeAt(secret, Step(d.clock.now()))
	return c
}

// customer upserts a customer and, with twoFactor, enrolls its TOTP.
func (d *demoSeeder) customer(id, name, password string, twoFactor, listed bool) (DemoCustomer, error) {
	d.n++
	email := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + fmt.Sprintf("+%d@example.com", d.n)
	in := AccountInput{Email: &email, DisplayName: &name, Phone: ptrTo(fmt.Sprintf("+49 30 5550%03d", d.n)),
		Facts: map[string]any{"last_deposit_amount": fmt.Sprintf("%d.50 EUR", 100+d.n*7), "signup_country": demoCountries[d.n%len(demoCountries)]}}
	if password != "" {
		in.Password = &password
	}
	if _, _, err := d.svc.UpsertAccount(d.ctx, d.api, id, in); err != nil {
		return DemoCustomer{}, err
	}
	c := DemoCustomer{ID: id, Email: email, Password: password}
	if twoFactor {
		en, err := d.svc.BeginEnrollment(d.ctx, d.api, id, "")
		if err != nil {
			return DemoCustomer{}, err
		}
		if _, err := d.svc.ConfirmEnrollment(d.ctx, d.api, id, d.code(en.Secret)); err != nil {
			return DemoCustomer{}, err
		}
		c.Secret = en.Secret
	}
	if listed {
		d.res.Customers = append(d.res.Customers, c)
	}
	return c, nil
}

func ptrTo[T any](v T) *T { return &v }

// opened takes a customer with 2FA from the pool and opens a console ticket for it with a first message.
func (d *demoSeeder) opened(msg string) (string, error) {
	if len(d.pool) == 0 {
		return "", errors.New("the demo ran out of customers")
	}
	c := d.pool[0]
	d.pool = d.pool[1:]
	d.clock.add(time.Minute)
	o, err := d.svc.OpenTicket(d.ctx, d.api, OpenRequest{Channel: ChannelConsole, Claimed: c.Email, Message: msg})
	if err != nil {
		return "", err
	}
	return o.TicketID, nil
}

func (d *demoSeeder) version(id string) (int64, error) {
	td, err := d.svc.TicketDetail(d.ctx, id)
	return td.Version, err
}

var (
	demoSixDigits    = regexp.MustCompile(`\b\d{6}\b`)
	demoReenrollLink = regexp.MustCompile(`/reenroll/([A-Za-z0-9_-]{22,})`)
	demoVetoLink     = regexp.MustCompile(`/veto/([A-Za-z0-9_-]{22,})`)
)

// emailCode sends the e-mail check code and reads it back, as the user would from their mailbox.
func (d *demoSeeder) emailCode(id string) error {
	v, err := d.version(id)
	if err != nil {
		return err
	}
	agent := d.agents["agent1"]
	if err := d.svc.SendEmailCode(d.ctx, agent, id, v, "email_code"); err != nil {
		return wrapDemo("send e-mail code", err)
	}
	body, err := d.noticeBody(id, "email_code")
	if err != nil {
		return err
	}
	code := demoSixDigits.FindString(body)
	d.clock.add(2 * time.Minute)
	if v, err = d.version(id); err != nil {
		return err
	}
	ok, err := d.svc.CheckEmailCode(d.ctx, agent, id, v, "email_code", code)
	if err == nil && !ok {
		err = errors.New("the e-mail code did not match")
	}
	return err
}

// noticeBody opens the newest notice of kind for the ticket: the demo plays the user reading
// their mail.
func (d *demoSeeder) noticeBody(ticketID, kind string) (string, error) {
	var ns []Notice
	err := d.svc.store.View(d.ctx, func(tx ReadTx) error {
		var err error
		ns, err = tx.Notices(NoticeFilter{TicketID: ticketID, Channel: NoticeEmail, Limit: 50})
		return err
	})
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		if n.Kind != kind {
			continue
		}
		pt, err := d.svc.keys.Open(n.Body, noticeAAD(n.AccountID), noticePurpose(n.Channel, n.To))
		if err != nil {
			return "", err
		}
		var p noticePayload
		if err := json.Unmarshal(pt, &p); err != nil {
			return "", err
		}
		return p.Body, nil
	}
	return "", fmt.Errorf("no %s notice for ticket %s", kind, ticketID)
}

// verified opens a ticket and passes its checklist.
func (d *demoSeeder) verified() (string, error) {
	id, err := d.opened("I lost my phone and cannot sign in")
	if err != nil {
		return "", err
	}
	if err := d.emailCode(id); err != nil {
		return "", err
	}
	td, err := d.svc.TicketDetail(d.ctx, id)
	if err != nil {
		return "", err
	}
	var facts map[string]any
	err = d.svc.store.View(d.ctx, func(tx ReadTx) error {
		a, err := tx.Account(td.AccountID)
		if err != nil {
			return err
		}
		facts, err = d.svc.AccountFacts(a)
		return err
	})
	if err != nil {
		return "", err
	}
	for key, fact := range map[string]string{"knowledge_last_deposit": "last_deposit_amount", "knowledge_signup_country": "signup_country"} {
		d.clock.add(time.Minute)
		v, err := d.version(id)
		if err != nil {
			return "", err
		}
		if _, err := d.svc.CheckKnowledge(d.ctx, d.agents["agent1"], id, v, key, fmt.Sprint(facts[fact])); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (d *demoSeeder) requested() (string, error) {
	id, err := d.verified()
	if err != nil {
		return "", err
	}
	d.clock.add(3 * time.Minute)
	v, err := d.version(id)
	if err != nil {
		return "", err
	}
	return id, wrapDemo("request", d.svc.RequestReset(d.ctx, d.agents["agent1"], id, v, "e-mail code and both facts match"))
}

// stepUp enters the agent's current code, a step after its last one.
func (d *demoSeeder) stepUp(short string) (time.Time, error) {
	d.clock.add(31 * time.Second)
	a := d.agents[short]
	return d.svc.AgentStepUp(d.ctx, a, a.ID, d.code(d.secret[short]))
}

func (d *demoSeeder) approved() (string, error) {
	id, err := d.requested()
	if err != nil {
		return "", err
	}
	at, err := d.stepUp("sup2")
	if err != nil {
		return "", err
	}
	v, err := d.version(id)
	if err != nil {
		return "", err
	}
	return id, wrapDemo("approve", d.svc.Approve(d.ctx, d.agents["sup2"], id, v, at, "checklist complete, requester is not the target"))
}

func (d *demoSeeder) execute(id, short string) error {
	at, err := d.stepUp(short)
	if err != nil {
		return err
	}
	v, err := d.version(id)
	if err != nil {
		return err
	}
	if err := d.svc.Execute(d.ctx, d.agents[short], id, v, at); err != nil {
		td, _ := d.svc.TicketDetail(d.ctx, id)
		return fmt.Errorf("execute a %s ticket (cooling until %s, now %s, risk %v, created %s): %w", td.State, td.CoolingUntil, d.clock.now(), td.Risk, td.CreatedAt, err)
	}
	return nil
}

// recovered takes a ticket from opening to re-enrollment; took is the wait before the user
// opens the link (the cooling-off comes on top).
func (d *demoSeeder) recovered(took time.Duration) error {
	id, err := d.approved()
	if err != nil {
		return err
	}
	td, err := d.svc.TicketDetail(d.ctx, id)
	if err != nil {
		return err
	}
	d.clock.set(td.CoolingUntil.Add(time.Minute))
	if _, err := d.svc.Tick(d.ctx); err != nil {
		return err
	}
	if err := d.execute(id, "sup1"); err != nil {
		return err
	}
	body, err := d.noticeBody(id, "reenroll_link")
	if err != nil {
		return err
	}
	m := demoReenrollLink.FindStringSubmatch(body)
	if m == nil {
		return errors.New("no re-enrollment link in the notice")
	}
	token := m[1]
	d.clock.add(took)
	en, err := d.svc.BeginEnrollment(d.ctx, d.api, td.AccountID, token)
	if err != nil {
		return err
	}
	d.clock.add(time.Minute)
	_, err = d.svc.ConfirmEnrollment(d.ctx, d.api, td.AccountID, d.code(en.Secret))
	return err
}

func (d *demoSeeder) rejected() error {
	id, err := d.opened("Reset my 2FA now, I am the owner, no time for checks")
	if err != nil {
		return err
	}
	d.clock.add(10 * time.Minute)
	v, err := d.version(id)
	if err != nil {
		return err
	}
	return wrapDemo("reject", d.svc.Reject(d.ctx, d.agents["agent2"], id, v, "requester could not pass the e-mail code and pushed for speed"))
}

// veto plays the owner following the veto link of the approval notice.
func (d *demoSeeder) veto(id string) error {
	body, err := d.noticeBody(id, "veto_request")
	if err != nil {
		return err
	}
	m := demoVetoLink.FindStringSubmatch(body)
	if m == nil {
		return errors.New("no veto link in the notice")
	}
	token := m[1]
	d.clock.add(2 * time.Hour)
	_, err = d.svc.Veto(d.ctx, Actor{Type: ActorEndUser, ID: "demo", RequestID: "demo"}, token)
	return wrapDemo("veto", err)
}

func (d *demoSeeder) vetoedThenDenied() error {
	id, err := d.approved()
	if err != nil {
		return err
	}
	if err := d.veto(id); err != nil {
		return err
	}
	d.clock.add(time.Hour)
	v, err := d.version(id)
	if err != nil {
		return err
	}
	if err := d.svc.Unfreeze(d.ctx, d.agents["admin"], id, v, "owner vetoed; returning to a supervisor to deny"); err != nil {
		return wrapDemo("unfreeze", err)
	}
	at, err := d.stepUp("sup1")
	if err != nil {
		return err
	}
	if v, err = d.version(id); err != nil {
		return err
	}
	return wrapDemo("deny", d.svc.Deny(d.ctx, d.agents["sup1"], id, v, at, "the owner vetoed: this was not them"))
}

func (d *demoSeeder) selfService() error {
	id, err := d.opened("Can't find my phone")
	if err != nil {
		return err
	}
	d.clock.add(5 * time.Minute)
	v, err := d.version(id)
	if err != nil {
		return err
	}
	return wrapDemo("self-service", d.svc.RecordPossession(d.ctx, d.agents["agent2"], id, v, "possession", true, "user still has a recovery code"))
}

// wrapDemo names the demo step that failed.
func wrapDemo(step string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}
