package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// queuePageSize is how many tickets one queue page shows.
const queuePageSize = 25

// queueAges are the queue's "opened more than … ago" filters.
var queueAges = []struct {
	Key   string
	Label string
	D     time.Duration
}{
	{"1h", "1 hour", time.Hour},
	{"24h", "1 day", 24 * time.Hour},
	{"72h", "3 days", 72 * time.Hour},
	{"7d", "7 days", 7 * 24 * time.Hour},
}

// queueRow is one ticket of the queue with its SLA badge.
type queueRow struct {
	recovery.Ticket
	SLA sla
}

// sla is a ticket's service-level badge. The agents' clock runs from the later of the ticket's
// opening and the user's last message; it pauses while the ticket waits on someone else — the
// cooling-off (the owner's chance to veto must never feel like a deadline) and, after the
// reset, the user's re-enrollment — and stops in final states.
type sla struct {
	Label  string // e.g. "waiting 3h 10m", "paused: cooling-off"
	Class  string // sla-ok, sla-warn, sla-late, sla-paused, sla-none
	Paused bool
}

// Thresholds of the SLA badge: answered within 4 hours is on time, after a day it is late.
const (
	slaWarn = 4 * time.Hour
	slaLate = 24 * time.Hour
)

func ticketSLA(t recovery.Ticket, now time.Time) sla {
	switch t.State {
	case recovery.TicketCoolingOff:
		return sla{Label: "paused: cooling-off", Class: "sla-paused", Paused: true}
	case recovery.TicketExecuted:
		return sla{Label: "paused: waiting on the user", Class: "sla-paused", Paused: true}
	case recovery.TicketFrozen:
		return sla{Label: "frozen", Class: "sla-late"}
	}
	if !t.State.Active() {
		return sla{Label: "done", Class: "sla-none"}
	}
	since := t.CreatedAt
	if t.UserMessageAt.After(since) {
		since = t.UserMessageAt
	}
	d := now.Sub(since)
	class := "sla-ok"
	switch {
	case d >= slaLate:
		class = "sla-late"
	case d >= slaWarn:
		class = "sla-warn"
	}
	return sla{Label: "waiting " + ago(d), Class: class}
}

// ago writes a duration the way the console shows ages: "45s", "12m", "3h 10m", "2d 4h".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd %dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// encodeCursor and decodeCursor carry the keyset position in the "after" query parameter:
// Unix nanoseconds of the last ticket's opening, a dot, its id.
func encodeCursor(t recovery.Ticket) string {
	return strconv.FormatInt(t.CreatedAt.UnixNano(), 10) + "." + t.ID
}

func decodeCursor(v string) (*recovery.TicketCursor, error) {
	ns, id, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" || len(id) > 64 {
		return nil, errors.New("bad cursor")
	}
	return &recovery.TicketCursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}

// queueFilter reads the queue's query parameters. Unknown values are refused rather than
// ignored, so that a list never silently shows more than the agent asked for.
func queueFilter(c *gin.Context, me string, now time.Time) (recovery.TicketFilter, error) {
	f := recovery.TicketFilter{Limit: queuePageSize + 1}
	switch st := c.Query("state"); st {
	case "", "active":
		f.States = recovery.ActiveTicketStates
	case "all":
	default:
		ok := false
		for _, s := range allTicketStates {
			if string(s) == st {
				f.States, ok = []recovery.TicketState{s}, true
			}
		}
		if !ok {
			return f, errors.New("unknown state")
		}
	}
	switch ch := c.Query("channel"); ch {
	case "", recovery.ChannelConsole, recovery.ChannelTelegram, recovery.ChannelAPI:
		f.Channel = ch
	default:
		return f, errors.New("unknown channel")
	}
	switch as := c.Query("assignee"); as {
	case "":
	case "me":
		f.AssigneeID = me
	case "none":
		f.AssigneeID = recovery.TicketUnassigned
	default:
		return f, errors.New("unknown assignee")
	}
	switch c.Query("risk") {
	case "":
	case "high":
		f.HighRisk = true
	default:
		return f, errors.New("unknown risk")
	}
	if age := c.Query("age"); age != "" {
		ok := false
		for _, a := range queueAges {
			if a.Key == age {
				f.OpenedBefore, ok = now.Add(-a.D), true
			}
		}
		if !ok {
			return f, errors.New("unknown age")
		}
	}
	if q := strings.TrimSpace(c.Query("q")); q != "" {
		if len(q) > 254 {
			return f, errors.New("search too long")
		}
		f.Search = q
	}
	if after := c.Query("after"); after != "" {
		cur, err := decodeCursor(after)
		if err != nil {
			return f, err
		}
		f.After = cur
	}
	return f, nil
}

// allTicketStates lists every state in workflow order, for filters and tests.
var allTicketStates = []recovery.TicketState{
	recovery.TicketOpen, recovery.TicketVerifying, recovery.TicketPendingApproval, recovery.TicketCoolingOff,
	recovery.TicketReady, recovery.TicketExecuted, recovery.TicketClosed, recovery.TicketRejected,
	recovery.TicketFrozen, recovery.TicketWithdrawn, recovery.TicketExpired,
}

func (s *server) queue() gin.HandlerFunc {
	return func(c *gin.Context) {
		now := s.svc.Now()
		a := currentAgent(c)
		f, err := queueFilter(c, a.ID, now)
		if err != nil {
			s.consoleError(c, http.StatusBadRequest, "That filter is not one the queue knows.")
			return
		}
		tickets, err := s.svc.Tickets(c.Request.Context(), f)
		if err != nil {
			s.failPage(c, err)
			return
		}
		var next string
		if len(tickets) > queuePageSize {
			tickets = tickets[:queuePageSize]
			q := c.Request.URL.Query()
			q.Set("after", encodeCursor(tickets[len(tickets)-1]))
			next = "/console?" + q.Encode()
		}
		rows := make([]queueRow, len(tickets))
		for i, t := range tickets {
			rows[i] = queueRow{Ticket: t, SLA: ticketSLA(t, now)}
		}
		first := ""
		if c.Query("after") != "" {
			q := c.Request.URL.Query()
			q.Del("after")
			first = "/console?" + q.Encode()
		}
		s.renderConsole(c, http.StatusOK, "console/queue", map[string]any{
			"Rows": rows, "Next": next, "First": first, "Now": now,
			"States": allTicketStates, "Ages": queueAges,
			"Q": queryValues(c.Request.URL.Query()),
		})
	}
}

// queryValues is the current filter as a map for the form's selected options.
func queryValues(q url.Values) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"state", "channel", "assignee", "risk", "age", "q"} {
		out[k] = q.Get(k)
	}
	return out
}

// openTicket opens a ticket from the console for the account the agent names (a phone call, an
// e-mail to support); it lands on the ticket, the new one or the account's active one.
func (s *server) openTicket() gin.HandlerFunc {
	return func(c *gin.Context) {
		op, err := s.svc.OpenTicket(c.Request.Context(), agentActor(c), recovery.OpenRequest{
			Channel: recovery.ChannelConsole, Claimed: c.PostForm("claimed"), Message: c.PostForm("message")})
		if err != nil {
			if errors.Is(err, recovery.ErrInvalidInput) {
				s.consoleError(c, http.StatusBadRequest, err.Error())
				return
			}
			s.failPage(c, err)
			return
		}
		s.setFlash(c, "opened")
		c.Redirect(http.StatusSeeOther, "/console/tickets/"+url.PathEscape(op.TicketID))
	}
}
