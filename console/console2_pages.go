package console

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// approvalsPage is the supervisors' inbox: tickets pending approval, those waiting longest first.
func (s *server) approvalsPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		ts, err := s.svc.PendingApprovals(c.Request.Context(), 200)
		if err != nil {
			s.failPage(c, err)
			return
		}
		s.renderConsole(c, http.StatusOK, "console/admin_approvals", map[string]any{"Tickets": ts})
	}
}

// accountsPage looks an account up by id or e-mail. Contact data is masked, facts and secrets
// never leave the domain; an unknown account says so (agents may know which accounts exist).
func (s *server) accountsPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		q := c.Query("q")
		data := map[string]any{"Q": q}
		status := http.StatusOK
		if q != "" {
			ov, err := s.svc.LookupAccount(c.Request.Context(), q)
			switch {
			case err == nil:
				data["Account"] = ov
			case errors.Is(err, recovery.ErrNotFound):
				status, data["Error"] = http.StatusNotFound, "No account has this id or e-mail address."
			case errors.Is(err, recovery.ErrInvalidInput):
				status, data["Error"] = http.StatusBadRequest, inputMessage(err)
			default:
				s.failPage(c, err)
				return
			}
		}
		s.renderConsole(c, status, "console/admin_accounts", data)
	}
}

// outboxPage lists notices with their delivery status; only the masked text is shown.
func (s *server) outboxPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		f := recovery.NoticeFilter{Channel: c.Query("channel"), State: c.Query("state"), TicketID: c.Query("ticket"), Limit: 50}
		if v := c.Query("before"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				s.consoleError(c, http.StatusBadRequest, "The page link is not valid.")
				return
			}
			f.BeforeID = n
		}
		ns, err := s.svc.Notices(c.Request.Context(), f)
		if errors.Is(err, recovery.ErrInvalidInput) {
			s.consoleError(c, http.StatusBadRequest, inputMessage(err))
			return
		}
		if err != nil {
			s.failPage(c, err)
			return
		}
		data := map[string]any{"Notices": ns, "Q": queryValues(c.Request.URL.Query())}
		if len(ns) == f.Limit {
			q := c.Request.URL.Query()
			q.Set("before", strconv.FormatInt(ns[len(ns)-1].ID, 10))
			data["Next"] = "/console/outbox?" + q.Encode()
		}
		s.renderConsole(c, http.StatusOK, "console/admin_outbox", data)
	}
}
