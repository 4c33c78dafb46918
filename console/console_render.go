package console

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// navItem is one link of the console's top navigation.
type navItem struct {
	Href, Label string
	Active      bool
}

// consoleNav lists the console's sections in display order; a section shows only when the
// route table has a GET route at one of its paths that the agent's role may open (the
// secondary pages appear as soon as console2_*.go registers them).
var consoleNavSections = [...]struct {
	label string
	paths []string
}{
	{"Queue", []string{"/console"}},
	{"Approvals", []string{"/console/approvals"}},
	{"Accounts", []string{"/console/accounts"}},
	{"Audit log", []string{"/console/audit"}},
	{"Outbox", []string{"/console/outbox"}},
	{"Agents", []string{"/console/agents", "/console/admin/agents"}},
	{"Dashboard", []string{"/console/dashboard"}},
}

func (s *server) nav(c *gin.Context, a recovery.Agent) []navItem {
	allowed := map[string]bool{}
	for _, r := range s.consoleTable() {
		if r.Method == http.MethodGet && a.AtLeast(r.MinRole) {
			allowed[r.Path] = true
		}
	}
	cur := c.Request.URL.Path
	var out []navItem
	for _, sec := range consoleNavSections {
		for _, p := range sec.paths {
			if allowed[p] {
				active := cur == p || (p != "/console" && strings.HasPrefix(cur, p+"/")) ||
					(p == "/console" && strings.HasPrefix(cur, "/console/tickets"))
				out = append(out, navItem{Href: p, Label: sec.label, Active: active})
				break
			}
		}
	}
	return out
}

// flashCookie carries a one-time notice across a redirect after a successful POST. Its value
// is a key of flashMessages, never free text, so nothing user-controlled or secret travels in it.
const flashCookie = "rd_flash"

// flashMessages are the notices a redirect may carry.
var flashMessages = map[string]string{
	"assigned":      "The ticket is assigned to you.",
	"replied":       "Your reply is queued for the user.",
	"noted":         "The internal note is saved.",
	"recorded":      "The checklist item is recorded.",
	"match":         "The answer matches.",
	"no_match":      "The answer does not match.",
	"code_sent":     "An e-mail code is on its way to the account's address.",
	"code_ok":       "The e-mail code is correct.",
	"code_wrong":    "The e-mail code is wrong.",
	"requested":     "The reset is requested; a second person must approve it.",
	"approved":      "Approved. The cooling-off period has started.",
	"denied":        "The reset is denied.",
	"executed":      "The reset is executed. The user gets a re-enrollment link.",
	"reissued":      "A new re-enrollment link is on its way; the old one no longer works.",
	"rejected":      "The ticket is rejected.",
	"frozen":        "The ticket is frozen.",
	"unfrozen":      "The ticket is unfrozen and waits for approval again.",
	"closed":        "The ticket is closed.",
	"stepped_up":    "Code accepted. You can approve, deny or execute for the next 5 minutes.",
	"opened":        "The ticket is open.",
	"saved":         "Saved.",
	"signed_out":    "You are signed out.",
	"session_ended": "Your session has ended. Please sign in again.",
}

// setFlash sets the notice the next console page shows (key of flashMessages).
func (s *server) setFlash(c *gin.Context, key string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: key, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies()})
}

// takeFlash returns the pending notice (and clears it), "" if none.
func (s *server) takeFlash(c *gin.Context) string {
	key, err := c.Cookie(flashCookie)
	if err != nil || key == "" {
		return ""
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies()})
	return flashMessages[key]
}

// renderConsole renders a console page (assets/templates/<page>.html, e.g. "console/queue")
// through the console frame ("console_layout" in _console_layout.html: the header with the
// agent, the navigation and sign-out, the flash notice, then the page's "content"). It adds to
// data: "Agent" (recovery.Agent), "Nav" ([]navItem), "Flash" (string; a handler's own "Flash"
// wins), "Error" (left as the handler set it), "StepUpAt" (time.Time) and "Now" (the domain
// clock's time, for relative times). The answer carries the HTML CSP and no-store.
func (s *server) renderConsole(c *gin.Context, status int, page string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	a := currentAgent(c)
	data["Agent"] = a
	data["Nav"] = s.nav(c, a)
	if _, ok := data["Flash"]; !ok {
		data["Flash"] = s.takeFlash(c)
	}
	data["StepUpAt"] = s.stepUpAt(c)
	if _, ok := data["Now"]; !ok {
		data["Now"] = s.svc.Now()
	}
	s.renderFrame(c, status, page, "console_layout", data)
}

// renderFrame executes page through the named frame template into a buffer and writes it with
// the HTML security headers (as render does for "layout").
func (s *server) renderFrame(c *gin.Context, status int, page, frame string, data any) {
	t, ok := s.pages[page]
	if !ok {
		s.failPage(c, fmt.Errorf("console: no page %q", page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, frame, data); err != nil {
		s.failPage(c, fmt.Errorf("console: render %s: %w", page, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", htmlCSP)
	h.Set("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}

// consoleError answers a console request with a short error page (the frame without
// navigation when nobody is signed in).
func (s *server) consoleError(c *gin.Context, status int, msg string) {
	data := map[string]any{"Status": status, "Message": msg}
	if currentAgent(c).ID == "" {
		s.renderFrame(c, status, "console/error", "layout", data)
		return
	}
	s.renderConsole(c, status, "console/error", data)
}
