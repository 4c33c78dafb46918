package console

import (
	"bufio"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// verifyMaxAge is how long the audit page reuses its verify report before a walk of the events
// appended since (recovery.VerifyCache; a full walk at least hourly), and verifyWait how long a
// request waits for that walk before it shows the report it has: the page never hangs on a long
// chain.
const (
	verifyMaxAge = time.Minute
	verifyWait   = 300 * time.Millisecond
)

// auditTimeLayouts are the accepted forms of the from/until filters (UTC): the date and the
// browser's datetime-local value.
var auditTimeLayouts = []string{"2006-01-02T15:04", "2006-01-02"}

// auditFilter reads the audit log's filters from the query string.
func auditFilter(q url.Values) (recovery.AuditFilter, error) {
	f := recovery.AuditFilter{Action: strings.TrimSpace(q.Get("action")), ActorID: strings.TrimSpace(q.Get("actor")),
		TicketID: strings.TrimSpace(q.Get("ticket")), TargetType: strings.TrimSpace(q.Get("target_type")),
		TargetID: strings.TrimSpace(q.Get("target"))}
	for name, dst := range map[string]*time.Time{"from": &f.From, "until": &f.Until} {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			continue
		}
		var err error
		for _, l := range auditTimeLayouts {
			var t time.Time
			if t, err = time.ParseInLocation(l, v, time.UTC); err == nil {
				*dst = t
				break
			}
		}
		if err != nil {
			return f, invalid("the " + name + " time is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM)")
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, invalid("the page link is not valid")
		}
		f.BeforeSeq = n
	}
	return f, nil
}

// auditPage shows the filtered audit log newest first, a page at a time (keyset by seq), with
// the chain's verify status.
func (s *server) auditPage(verify *recovery.VerifyCache) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		q := c.Request.URL.Query()
		data := map[string]any{"Q": queryValues(q)}
		rep, at, pending, err := s.svc.VerifyAuditCached(ctx, verify, verifyMaxAge, verifyWait)
		if err != nil {
			s.failPage(c, err)
			return
		}
		data["Verify"], data["VerifiedAt"], data["VerifyPending"] = rep, at, pending
		f, err := auditFilter(q)
		if err == nil {
			var page recovery.AuditPage
			if page, err = s.svc.AuditLog(ctx, f); err == nil {
				data["Events"] = page.Events
				if page.NextBefore > 0 {
					next := url.Values{}
					for k, v := range q {
						next[k] = v
					}
					next.Set("before", strconv.FormatInt(page.NextBefore, 10))
					data["Next"] = "/console/audit?" + next.Encode()
				}
			}
		}
		exp := url.Values{}
		for k, v := range q {
			if k != "before" {
				exp[k] = v
			}
		}
		data["ExportQuery"] = exp.Encode()
		status := http.StatusOK
		if err != nil {
			if !errors.Is(err, recovery.ErrInvalidInput) {
				s.failPage(c, err)
				return
			}
			status, data["Error"] = http.StatusBadRequest, inputMessage(err)
		}
		s.renderConsole(c, status, "console/admin_audit", data)
	}
}

// auditExport streams the filtered events in seq order, written by write.
func (s *server) auditExport(contentType, ext string, start func(w *bufio.Writer) (func(recovery.Event) error, func() error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		f, err := auditFilter(c.Request.URL.Query())
		if err != nil {
			s.consoleError(c, http.StatusBadRequest, inputMessage(err))
			return
		}
		h := c.Writer.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Disposition", `attachment; filename="recoverydesk-audit.`+ext+`"`)
		h.Set("Cache-Control", "no-store")
		c.Status(http.StatusOK)
		w := bufio.NewWriter(c.Writer)
		write, finish := start(w)
		if err := s.svc.ExportAuditEvents(c.Request.Context(), f, write); err != nil {
			// The status is sent; the cut-short file is the client's sign, the cause is logged.
			state(c).cause = err
			return
		}
		if err := finish(); err == nil {
			w.Flush()
		}
	}
}

// auditExportJSONL exports in the chain's own format, one event a line (Event.MarshalJSONL), so
// that the file can be checked like `recoverydesk audit export` output.
func (s *server) auditExportJSONL() gin.HandlerFunc {
	return s.auditExport("application/x-ndjson", "jsonl", func(w *bufio.Writer) (func(recovery.Event) error, func() error) {
		return func(e recovery.Event) error {
			line, err := e.MarshalJSONL()
			if err != nil {
				return err
			}
			w.Write(line)
			return w.WriteByte('\n')
		}, func() error { return nil }
	})
}

// auditCSVHeader names the CSV columns: the JSONL fields in the same order as the chain's
// canonical form lists them by meaning.
var auditCSVHeader = []string{"seq", "time", "actor_type", "actor_id", "action", "target_type", "target_id",
	"ticket_id", "reason", "details", "request_id", "prev_hash", "hash"}

// csvCell defuses spreadsheet formulas: a cell that a spreadsheet would evaluate (starting with
// = + - @ or a tab or carriage return) gets a leading apostrophe. Reasons are typed by agents.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (s *server) auditExportCSV() gin.HandlerFunc {
	return s.auditExport("text/csv; charset=utf-8", "csv", func(w *bufio.Writer) (func(recovery.Event) error, func() error) {
		cw := csv.NewWriter(w)
		cw.Write(auditCSVHeader)
		return func(e recovery.Event) error {
				details := string(e.Details)
				if details == "" {
					details = "{}"
				}
				return cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(recovery.TimeLayout),
					e.ActorType, csvCell(e.ActorID), e.Action, e.TargetType, csvCell(e.TargetID), csvCell(e.TicketID),
					csvCell(e.Reason), details, csvCell(e.RequestID), e.PrevHash, e.Hash})
			}, func() error {
				cw.Flush()
				return cw.Error()
			}
	})
}
