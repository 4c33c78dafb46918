package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// consoleCookie is the console's session cookie (console/console_auth.go).
const consoleCookie = "rd_console"

// maxKnownTickets bounds the ticket ids kept from the queue pages.
const maxKnownTickets = 200

// ticketLink finds the ticket links of a queue page.
var ticketLink = regexp.MustCompile(`href="/console/tickets/([A-Za-z0-9-]{1,64})"`)

// consoleClient is one signed-in agent, shared by every worker as a browser's tabs share one
// session. The ticket ids of the latest queue page are what ticket and note requests open.
type consoleClient struct {
	l       *loader
	session string // the session cookie's value: a credential, never printed

	mu      sync.Mutex
	tickets []string
}

// pageAnswer is what a console request returned.
type pageAnswer struct {
	status   int
	location string
	ctype    string
	body     []byte // kept only when asked for
	cookie   string // a new rd_console value, if set
}

// page sends one console request with the session (if any) and reads the whole answer.
func (c *consoleClient) page(ctx context.Context, method, path string, form url.Values, keepBody bool) (pageAnswer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.l.cfg.base.String()+path, body)
	if err != nil {
		return pageAnswer{}, err
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// A browser's form post from the console's own page; the server refuses cross-origin ones.
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if c.session != "" {
		req.AddCookie(&http.Cookie{Name: consoleCookie, Value: c.session})
	}
	resp, err := c.l.client.Do(req)
	if err != nil {
		return pageAnswer{}, err
	}
	defer resp.Body.Close()
	a := pageAnswer{status: resp.StatusCode, location: resp.Header.Get("Location"), ctype: resp.Header.Get("Content-Type")}
	for _, ck := range resp.Cookies() {
		if ck.Name == consoleCookie && ck.Value != "" {
			a.cookie = ck.Value
		}
	}
	if keepBody {
		a.body, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			return pageAnswer{}, err
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return pageAnswer{}, err
	}
	return a, nil
}

// signIn signs in like a browser: the password form, then the TOTP form with the code of the
// current step; if the server refuses it (this agent signed in during this step already, which
// consumed it), the code of the next step, which the server's ±1 window accepts. The queue is
// then read once, so that ticket requests have ids from the start. Errors never carry the
// password, the secret, a code or the session.
func (c *consoleClient) signIn(ctx context.Context, a agentLogin) error {
	ctx, cancel := context.WithTimeout(ctx, 4*c.l.cfg.timeout)
	defer cancel()
	r, err := c.page(ctx, http.MethodPost, "/console/signin", url.Values{"email": {a.email}, "password": {a.password}}, false)
	if err != nil {
		return fmt.Errorf("console sign-in: %w", err)
	}
	if r.status != http.StatusSeeOther || r.location != "/console/signin/totp" || r.cookie == "" {
		return fmt.Errorf("console sign-in as %s: the password step answered HTTP %d (want 303 to /console/signin/totp with a session; is the e-mail or password wrong?)", a.email, r.status)
	}
	c.session = r.cookie
	cur := recovery.Step(time.Now())
	var last int
	tried := ""
	for _, st := range []int64{cur, cur + 1} {
		code, err := recovery.CodeAt(a.totpSecret, st)
		if err != nil {
			return errors.New("console sign-in: the agent's TOTP secret is not usable base32")
		}
		if code == tried {
			continue
		}
		tried = code
		r, err = c.page(ctx, http.MethodPost, "/console/signin/totp", url.Values{"code": {code}}, false)
		if err != nil {
			return fmt.Errorf("console sign-in: %w", err)
		}
		last = r.status
		if r.status == http.StatusSeeOther && r.location == "/console" && r.cookie != "" {
			c.session = r.cookie
			return c.refreshTickets(ctx)
		}
		if r.status != http.StatusUnauthorized {
			break
		}
	}
	return fmt.Errorf("console sign-in as %s: the TOTP step answered HTTP %d (want 303 to /console; 401 twice: this "+
		"agent's codes of this and the next step are used, or the secret is wrong; 429: wait for its backoff)", a.email, last)
}

// refreshTickets reads the queue once (not timed).
func (c *consoleClient) refreshTickets(ctx context.Context) error {
	r, err := c.page(ctx, http.MethodGet, "/console", nil, true)
	if err != nil {
		return fmt.Errorf("console queue: %w", err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("console queue after sign-in answered HTTP %d (want 200)", r.status)
	}
	c.learnTickets(r.body)
	return nil
}

// learnTickets keeps the ticket ids a queue page links to (the latest page wins).
func (c *consoleClient) learnTickets(body []byte) {
	var ids []string
	seen := map[string]bool{}
	for _, m := range ticketLink.FindAllSubmatch(body, -1) {
		if id := string(m[1]); !seen[id] && len(ids) < maxKnownTickets {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return // an empty queue: keep what was known, those pages still exist
	}
	c.mu.Lock()
	c.tickets = ids
	c.mu.Unlock()
}

func (c *consoleClient) ticketCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickets)
}

func (c *consoleClient) randomTicket(intn func(int) int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tickets) == 0 {
		return ""
	}
	return c.tickets[intn(len(c.tickets))]
}

// noteTexts are the internal notes agents write.
var noteTexts = []string{
	"Called the customer back, no answer. Will try again after lunch.",
	"Customer confirmed the last four digits of the card on file.",
	"Waiting for the customer to send a photo of the ID.",
	"Customer says the new phone arrived; asked them to try a recovery code first.",
}

// do sends one console request of kind and checks the answer; false when the phase ended.
func (c *consoleClient) do(ctx context.Context, mw *mixWorker, kind string) bool {
	method, path, wantStatus := http.MethodGet, "", http.StatusOK
	var form url.Values
	switch kind {
	case kindQueue:
		path = "/console"
	case kindAudit:
		path = "/console/audit"
	case kindDashboard:
		path = "/console/dashboard"
	case kindTicket, kindNote:
		id := c.randomTicket(mw.rng.IntN)
		if id == "" {
			kind, path = kindQueue, "/console" // no ticket known yet: the agent looks at the queue
			break
		}
		path = "/console/tickets/" + url.PathEscape(id)
		if kind == kindNote {
			method, wantStatus = http.MethodPost, http.StatusSeeOther
			form = url.Values{"body": {noteTexts[mw.rng.IntN(len(noteTexts))]}}
			path += "/note"
		}
	}
	t := mw.tally(kind)
	t0 := time.Now()
	r, err := c.page(ctx, method, path, form, kind == kindQueue)
	t.lat = append(t.lat, time.Since(t0))
	t.requests++
	label := "console " + kind
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.l.errs.add(label+": transport error", err.Error())
		}
	case r.status != wantStatus:
		c.l.errs.add(fmt.Sprintf("%s answered HTTP %d (want %d)", label, r.status, wantStatus),
			method+" "+routeOf(path)+locationNote(r.location))
	case kind == kindNote && r.location != strings.TrimSuffix(path, "/note"):
		c.l.errs.add(label+": redirected elsewhere than the ticket", "Location "+routeOf(r.location))
	case kind != kindNote && !strings.HasPrefix(r.ctype, "text/html"):
		c.l.errs.add(label+": not an HTML page", "Content-Type "+r.ctype)
	default:
		t.answered++
		if kind == kindQueue {
			c.learnTickets(r.body)
		}
	}
	return true
}

// routeOf names a console path by its route (ticket ids are not secrets, but keep lines short).
func routeOf(path string) string {
	if rest, ok := strings.CutPrefix(path, "/console/tickets/"); ok {
		_, tail, _ := strings.Cut(rest, "/")
		if tail != "" {
			return "/console/tickets/:id/" + tail
		}
		return "/console/tickets/:id"
	}
	return path
}

func locationNote(loc string) string {
	if loc == "" {
		return ""
	}
	return " → " + routeOf(loc)
}
