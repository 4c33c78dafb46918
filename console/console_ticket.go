package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// ticketTimelineLimit bounds the audit timeline at the bottom of a ticket page.
const ticketTimelineLimit = 200

// checklistRow is one policy item as the ticket page shows it: what to do, whether the policy
// requires it for this ticket, and its latest recorded result (never the stored fact).
type checklistRow struct {
	recovery.PolicyItem
	Required bool
	Missing  bool
	Result   *recovery.ChecklistResult
}

// timelineRow is one audit event of the ticket, told in words.
type timelineRow struct {
	Seq   int64
	Time  time.Time
	Actor string
	What  string
}

// ticketActions says which forms the ticket page offers: what the state allows and the agent's
// role may do (the domain decides again on submit).
type ticketActions struct {
	Assign, Reply, Checklist, Request, Approve, Execute, Reissue, Reject, Close, Freeze, Unfreeze bool
}

func actionsFor(t recovery.Ticket, a recovery.Agent) ticketActions {
	sup, admin := a.AtLeast(recovery.RoleSupervisor), a.AtLeast(recovery.RoleAdmin)
	st := t.State
	working := st == recovery.TicketOpen || st == recovery.TicketVerifying
	return ticketActions{
		Assign:    st.Active() && t.AssigneeID != a.ID,
		Reply:     st.Active(),
		Checklist: working && t.Matched(),
		Request:   working && t.Matched(),
		Approve:   sup && st == recovery.TicketPendingApproval,
		Execute:   sup && st == recovery.TicketReady,
		Reissue:   st == recovery.TicketExecuted,
		Reject:    working || st == recovery.TicketPendingApproval,
		Close:     st == recovery.TicketExecuted,
		Freeze:    sup && (st == recovery.TicketPendingApproval || st == recovery.TicketCoolingOff || st == recovery.TicketReady),
		Unfreeze:  admin && st == recovery.TicketFrozen,
	}
}

// ticketPage shows the ticket. status, errMsg and draft let an action that failed re-render
// the page with its message and with what the agent typed kept in the forms.
func (s *server) showTicket(c *gin.Context, status int, errMsg string, draft map[string]string) {
	ctx := c.Request.Context()
	id := c.Param("id")
	d, err := s.svc.TicketDetail(ctx, id)
	if errors.Is(err, recovery.ErrNotFound) {
		s.consoleError(c, http.StatusNotFound, "There is no ticket with that id.")
		return
	}
	if err != nil {
		s.failPage(c, err)
		return
	}
	now := s.svc.Now()
	data := map[string]any{"T": d, "Now": now, "SLA": ticketSLA(d.Ticket, now), "Draft": draft,
		"Actions": actionsFor(d.Ticket, currentAgent(c)), "StepUpFresh": s.stepUpFresh(c, now)}
	if errMsg != "" {
		data["Error"] = errMsg
	}
	if d.Matched() {
		acc, err := s.svc.LookupAccount(ctx, d.AccountID)
		if err != nil && !errors.Is(err, recovery.ErrNotFound) {
			s.failPage(c, err)
			return
		}
		if err == nil {
			acc.Timeline, acc.Tickets = nil, nil // the ticket page shows its own timeline
			data["Account"] = acc
		}
	}
	var risks []string
	for _, r := range d.Risk {
		risks = append(risks, r.Explain())
	}
	data["Risks"] = risks
	data["Checklist"] = checklistRows(s.svc.Policy(), d)
	page, err := s.svc.AuditLog(ctx, recovery.AuditFilter{TicketID: d.ID, Ascending: true, Limit: ticketTimelineLimit})
	if err != nil {
		s.failPage(c, err)
		return
	}
	tl := make([]timelineRow, len(page.Events))
	for i, e := range page.Events {
		tl[i] = timelineRow{Seq: e.Seq, Time: e.Time, Actor: recovery.DescribeActor(e), What: recovery.DescribeEvent(e)}
	}
	data["Timeline"] = tl
	s.renderConsole(c, status, "console/ticket", data)
}

// stepUpFresh reports whether the session's step-up is recent enough for approve and execute.
func (s *server) stepUpFresh(c *gin.Context, now time.Time) bool {
	at := s.stepUpAt(c)
	return !at.IsZero() && now.Sub(at) <= recovery.StepUpMaxAge
}

func checklistRows(p *recovery.Policy, d recovery.TicketDetail) []checklistRow {
	required, missing := map[string]bool{}, map[string]bool{}
	for _, k := range d.Required {
		required[k] = true
	}
	for _, k := range d.Missing {
		missing[k] = true
	}
	latest := map[string]*recovery.ChecklistResult{}
	for i := range d.Results {
		latest[d.Results[i].ItemKey] = &d.Results[i] // results are in order: the last one counts
	}
	var rows []checklistRow
	for _, it := range p.Items {
		rows = append(rows, checklistRow{PolicyItem: it, Required: required[it.Key], Missing: missing[it.Key], Result: latest[it.Key]})
	}
	return rows
}

func (s *server) ticketPage() gin.HandlerFunc {
	return func(c *gin.Context) { s.showTicket(c, http.StatusOK, "", nil) }
}

// actionMessage maps a domain refusal to what the agent reads; status 0 means an unexpected
// error (a 500). Messages never carry a secret: the domain's own texts name rules only.
func actionMessage(err error) (int, string) {
	var missing *recovery.MissingError
	switch {
	case errors.As(err, &missing):
		return http.StatusUnprocessableEntity, "The checklist is not complete. Still needed: " + strings.Join(missing.Missing, "; ") + "."
	case errors.Is(err, recovery.ErrConflict):
		return http.StatusConflict, "Someone else changed this ticket while you were working on it. The page now shows the current state; what you typed is still in the form."
	case errors.Is(err, recovery.ErrStepUpRequired):
		return http.StatusPreconditionRequired, "This needs a fresh code from your authenticator app: enter it in the step-up box, then try again."
	case errors.Is(err, recovery.ErrSeparationOfDuty):
		return http.StatusForbidden, "Separation of duties: you cannot do this on this ticket (you requested the reset, or the account is yours)."
	case errors.Is(err, recovery.ErrForbidden):
		return http.StatusForbidden, "Your role does not allow this on this ticket (staff accounts need an admin)."
	case errors.Is(err, recovery.ErrTicketState):
		return http.StatusConflict, "The ticket's state does not allow this any more."
	case errors.Is(err, recovery.ErrSelfService):
		return http.StatusConflict, "The user still has a working factor (a recovery code or the old device): point them to self-service instead of a reset."
	case errors.Is(err, recovery.ErrUnmatchedTicket):
		return http.StatusConflict, "The ticket names no known account."
	case errors.Is(err, recovery.ErrInvalidCode):
		return http.StatusUnprocessableEntity, "That code did not work. Enter the current code from your authenticator app."
	case errors.Is(err, recovery.ErrTooManyAttempts):
		return http.StatusTooManyRequests, "Too many attempts. Wait a little and try again."
	case errors.Is(err, recovery.ErrSuspended):
		return http.StatusLocked, "Your two-factor authentication is suspended after too many wrong codes. Ask an admin to reset it."
	case errors.Is(err, recovery.ErrInvalidInput):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, recovery.ErrNotFound):
		return http.StatusNotFound, "There is no such ticket or item."
	case errors.Is(err, recovery.ErrUnauthorized):
		return http.StatusUnauthorized, "Your session has ended. Please sign in again."
	}
	return 0, ""
}

// draftFields are the form fields kept when an action fails, so that nothing typed is lost.
var draftFields = []string{"body", "reason", "note", "evidence", "answer", "code", "item"}

// ticketAction runs one POST action on the ticket. do returns the flash key of success. On a
// refusal the ticket page is shown again with the message and the agent's input.
func (s *server) ticketAction(do func(c *gin.Context, id string, version int64) (string, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		var version int64
		if v := c.PostForm("version"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				s.consoleError(c, http.StatusBadRequest, "The form is out of date. Reload the ticket.")
				return
			}
			version = n
		}
		flash, err := do(c, id, version)
		if err == nil {
			s.setFlash(c, flash)
			c.Redirect(http.StatusSeeOther, "/console/tickets/"+url.PathEscape(id))
			return
		}
		status, msg := actionMessage(err)
		if status == 0 {
			s.failPage(c, err)
			return
		}
		draft := map[string]string{"form": c.PostForm("form")}
		for _, f := range draftFields {
			draft[f] = c.PostForm(f)
		}
		draft["code"] = "" // a code is single use: never put it back into a page
		s.showTicket(c, status, msg, draft)
	}
}

// needVersion refuses a state-changing form without the version the agent saw.
func needVersion(version int64) error {
	if version <= 0 {
		return recovery.ErrConflict
	}
	return nil
}

func (s *server) assign() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "assigned", s.svc.AssignTicket(c.Request.Context(), agentActor(c), id, v, currentAgent(c).ID)
	})
}

func (s *server) reply() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, _ int64) (string, error) {
		return "replied", s.svc.Reply(c.Request.Context(), agentActor(c), id, c.PostForm("body"))
	})
}

func (s *server) note() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, _ int64) (string, error) {
		return "noted", s.svc.AddNote(c.Request.Context(), agentActor(c), id, c.PostForm("body"))
	})
}

// checklist records one item; the "op" field picks the input of the item's kind.
func (s *server) checklist() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		ctx, actor, key := c.Request.Context(), agentActor(c), c.PostForm("item")
		switch c.PostForm("op") {
		case "knowledge":
			ok, err := s.svc.CheckKnowledge(ctx, actor, id, v, key, c.PostForm("answer"))
			return pick(ok, "match", "no_match"), err
		case "send_code":
			return "code_sent", s.svc.SendEmailCode(ctx, actor, id, v, key)
		case "check_code":
			ok, err := s.svc.CheckEmailCode(ctx, actor, id, v, key, c.PostForm("code"))
			return pick(ok, "code_ok", "code_wrong"), err
		case "attest":
			return "recorded", s.svc.Attest(ctx, actor, id, v, key, c.PostForm("passed") == "yes", c.PostForm("note"), c.PostForm("evidence"))
		case "possession":
			return "recorded", s.svc.RecordPossession(ctx, actor, id, v, key, c.PostForm("works") == "yes", c.PostForm("note"))
		}
		return "", recovery.ErrInvalidInput
	})
}

func pick(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func (s *server) requestReset() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "requested", s.svc.RequestReset(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

func (s *server) approve() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "approved", s.svc.Approve(c.Request.Context(), agentActor(c), id, v, s.stepUpAt(c), c.PostForm("reason"))
	})
}

func (s *server) deny() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "denied", s.svc.Deny(c.Request.Context(), agentActor(c), id, v, s.stepUpAt(c), c.PostForm("reason"))
	})
}

func (s *server) execute() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "executed", s.svc.Execute(c.Request.Context(), agentActor(c), id, v, s.stepUpAt(c))
	})
}

func (s *server) reissue() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "reissued", s.svc.ReissueLink(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

func (s *server) reject() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "rejected", s.svc.Reject(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

func (s *server) closeTicket() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "closed", s.svc.CloseTicket(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

func (s *server) freeze() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "frozen", s.svc.Freeze(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

func (s *server) unfreeze() gin.HandlerFunc {
	return s.ticketAction(func(c *gin.Context, id string, v int64) (string, error) {
		if err := needVersion(v); err != nil {
			return "", err
		}
		return "unfrozen", s.svc.Unfreeze(c.Request.Context(), agentActor(c), id, v, c.PostForm("reason"))
	})
}

// stepUp records a fresh TOTP code of the agent in the session and returns to the ticket the
// form came from ("ticket"), or to the queue.
func (s *server) stepUp() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := c.Cookie(sessionCookie)
		back := "/console"
		if id := c.PostForm("ticket"); id != "" && len(id) <= 64 {
			back = "/console/tickets/" + url.PathEscape(id)
			c.Params = append(c.Params, gin.Param{Key: "id", Value: id})
		}
		if _, err := s.svc.AgentSessionStepUp(c.Request.Context(), agentActor(c), token, c.PostForm("code")); err != nil {
			status, msg := actionMessage(err)
			if status == 0 {
				s.failPage(c, err)
				return
			}
			if c.Param("id") != "" {
				s.showTicket(c, status, msg, nil)
				return
			}
			s.consoleError(c, status, msg)
			return
		}
		s.setFlash(c, "stepped_up")
		c.Redirect(http.StatusSeeOther, back)
	}
}
