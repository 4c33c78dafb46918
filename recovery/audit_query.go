package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Audit search limits: a page of the console's audit log, and the batch an export reads at a time.
const (
	DefaultAuditPage = 50
	MaxAuditPage     = 500
	auditExportBatch = 1000
)

// AuditFilter selects audit events. Empty fields select everything.
type AuditFilter struct {
	// Action is an exact action ("ticket.approved") or a prefix ending in "." ("ticket.").
	Action     string
	ActorType  string
	ActorID    string
	TicketID   string
	TargetType string
	TargetID   string
	From       time.Time // events at or after From; zero: no bound
	Until      time.Time // events before Until; zero: no bound
	BeforeSeq  int64     // keyset paging backwards: only seq < BeforeSeq; 0: from the head
	AfterSeq   int64     // only seq > AfterSeq (exports walk forwards); 0: from the start
	Ascending  bool      // seq order instead of newest first
	Limit      int       // DefaultAuditPage when ≤ 0, at most MaxAuditPage
}

// check refuses filters no event can match because they are malformed, so that the console
// answers 400 instead of an empty page that looks like "nothing happened".
func (f AuditFilter) check() error {
	for name, v := range map[string]string{"action": f.Action, "actor type": f.ActorType, "actor": f.ActorID,
		"ticket": f.TicketID, "target type": f.TargetType, "target": f.TargetID} {
		if len(v) > 200 || !utf8.ValidString(v) {
			return invalidf("the %s filter is too long or not text", name)
		}
	}
	if f.BeforeSeq < 0 || f.AfterSeq < 0 {
		return invalidf("a sequence number is never negative")
	}
	if !f.From.IsZero() && !f.Until.IsZero() && !f.From.Before(f.Until) {
		return invalidf("the time range is empty: from must be before until")
	}
	return nil
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Events []Event
	// NextBefore is the BeforeSeq of the next (older) page, 0 when this is the last one.
	NextBefore int64
}

// AuditLog reads one page of the audit log for the console, newest first.
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) (AuditPage, error) {
	if err := f.check(); err != nil {
		return AuditPage{}, err
	}
	if f.Limit <= 0 {
		f.Limit = DefaultAuditPage
	}
	f.Limit = min(f.Limit, MaxAuditPage)
	f.Ascending = false
	want := f.Limit
	f.Limit++ // one more tells whether an older page exists
	var page AuditPage
	err := s.store.View(ctx, func(tx ReadTx) error {
		evs, err := tx.AuditQuery(f)
		if err != nil {
			return err
		}
		if len(evs) > want {
			evs = evs[:want]
			page.NextBefore = evs[want-1].Seq
		}
		page.Events = evs
		return nil
	})
	return page, err
}

// ExportAuditEvents calls fn with every event matching f in seq order (f's paging fields and
// order are ignored), reading in batches so that memory stays flat however long the chain is.
// fn returning an error stops the export with that error.
func (s *Service) ExportAuditEvents(ctx context.Context, f AuditFilter, fn func(Event) error) error {
	if err := f.check(); err != nil {
		return err
	}
	f.BeforeSeq, f.AfterSeq, f.Ascending, f.Limit = 0, 0, true, auditExportBatch
	for {
		var batch []Event
		err := s.store.View(ctx, func(tx ReadTx) error {
			var err error
			batch, err = tx.AuditQuery(f)
			return err
		})
		if err != nil {
			return err
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(batch) < f.Limit {
			return nil
		}
		f.AfterSeq = batch[len(batch)-1].Seq
	}
}

// VerifyCache keeps the console's view of the chain's integrity between requests. Walking a chain
// of a million events takes seconds, so walks run in the background: each continues from the
// last verified event, and a full walk from the first event runs at least every FullVerifyEvery
// (an edit of an old row is caught then, and by `recoverydesk audit verify` at any time). The
// zero value is ready.
type VerifyCache struct {
	mu      sync.Mutex
	v       *ChainVerifier // where the last walk stopped; nil before the first
	after   int64          // the last seq v has read
	rep     ChainReport
	at      time.Time // when rep was made
	fullAt  time.Time // when the last walk from the first event began
	err     error     // the last walk's failure, reported once
	running chan struct{}
}

// FullVerifyEvery bounds how long an edit of an already verified event can go unseen by the
// console's cached verify status.
const FullVerifyEvery = time.Hour

// VerifyAuditCached returns the chain's latest verify report and when it was made. When that
// report is older than maxAge (or there is none), a walk starts in the background; the call that
// starts the first walk waits for it at most wait; pending is true while no report exists.
func (s *Service) VerifyAuditCached(ctx context.Context, c *VerifyCache, maxAge, wait time.Duration) (rep ChainReport, at time.Time, pending bool, err error) {
	c.mu.Lock()
	now := s.now()
	if c.err != nil {
		err, c.err = c.err, nil
		c.mu.Unlock()
		return ChainReport{}, time.Time{}, false, err
	}
	stale := c.v == nil || now.Sub(c.at) >= maxAge || now.Before(c.at)
	started := false
	if stale && c.running == nil {
		c.running, started = make(chan struct{}), true
		go s.verifyWalk(context.WithoutCancel(ctx), c, now)
	}
	running, have := c.running, c.v != nil
	c.mu.Unlock()
	// Only the request that starts the very first walk waits, a little, so that a short chain
	// shows its result at once; every other request answers with what there is.
	if started && !have && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-running:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		err, c.err = c.err, nil
		return ChainReport{}, time.Time{}, false, err
	}
	return c.rep, c.at, c.v == nil, nil
}

// verifyWalk walks the chain for c: on from c's verifier, or from the first event when there is
// none, the chain was bad, or the last full walk is older than FullVerifyEvery.
func (s *Service) verifyWalk(ctx context.Context, c *VerifyCache, now time.Time) {
	c.mu.Lock()
	v, after, full := c.v, c.after, false
	if v == nil || !v.Report().OK() || now.Sub(c.fullAt) >= FullVerifyEvery || now.Before(c.fullAt) {
		v, after, full = NewChainVerifier(), 0, true
	} else {
		cp := *v // the page goes on showing the old report while this walk runs
		v = &cp
	}
	c.mu.Unlock()
	err := s.eachEventAfter(ctx, after, func(e Event) bool {
		ok := v.Add(e)
		after = e.Seq
		return ok
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.err = err
	} else {
		c.v, c.after, c.rep, c.at = v, after, v.Report(), now
		if full {
			c.fullAt = now
		}
	}
	close(c.running)
	c.running = nil
}

// PendingApprovals lists up to limit tickets waiting for a supervisor's approval, those that
// have waited longest first.
func (s *Service) PendingApprovals(ctx context.Context, limit int) ([]Ticket, error) {
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	var out []Ticket
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.TicketsOldestFirst(TicketPendingApproval, limit)
		return err
	})
	return out, err
}

// AccountOverview is what the console's account lookup shows: contact data masked, the 2FA
// state, the tickets and the security timeline. It holds no password hash, fact or secret.
type AccountOverview struct {
	ID             string
	DisplayName    string
	MaskedEmail    string
	MaskedPhone    string
	Staff          bool
	CreatedAt      time.Time
	TwoFactor      Status
	TelegramLinked bool
	Tickets        []Ticket // newest first
	Timeline       []TimelineEntry
}

// TimelineEntry is an audit event told in plain words.
type TimelineEntry struct {
	Seq      int64
	Time     time.Time
	Action   string
	Actor    string // "agent agt_…", "the user", "the host platform", "the system"
	Text     string
	TicketID string
}

// Account lookup limits.
const (
	lookupTickets  = 50
	lookupTimeline = 100
)

// LookupAccount finds an account by its id or e-mail (case-insensitive) for an agent. Agents'
// own internal accounts are not found here: their 2FA is the agents admin's business.
func (s *Service) LookupAccount(ctx context.Context, query string) (AccountOverview, error) {
	q := strings.TrimSpace(query)
	if q == "" || len(q) > 254 || !utf8.ValidString(q) {
		return AccountOverview{}, invalidf("type an account id or e-mail address")
	}
	now := s.now()
	var out AccountOverview
	err := s.store.View(ctx, func(tx ReadTx) error {
		a, err := tx.Account(q)
		if errors.Is(err, ErrNotFound) {
			a, err = tx.AccountByEmail(strings.ToLower(q))
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(a.ID, agentAccountPrefix) {
			return fmt.Errorf("account lookup: %w", ErrNotFound)
		}
		out = AccountOverview{ID: a.ID, DisplayName: a.DisplayName, MaskedEmail: MaskEmail(a.Email),
			MaskedPhone: MaskPhone(a.Phone), Staff: a.Staff, CreatedAt: a.CreatedAt}
		f, err := tx.Factor(a.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			out.TwoFactor = Status{State: StateDisabled}
		case err != nil:
			return err
		default:
			codes, err := tx.RecoveryCodes(a.ID)
			if err != nil {
				return err
			}
			out.TwoFactor = Status{State: f.reported(now), RecoveryCodesLeft: len(codes)}
			if now.Before(f.HoldUntil) {
				out.TwoFactor.HoldUntil = f.HoldUntil
			}
		}
		if _, err := tx.TelegramLinkByAccount(a.ID); err == nil {
			out.TelegramLinked = true
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if out.Tickets, err = tx.Tickets(TicketFilter{AccountID: a.ID, Limit: lookupTickets}); err != nil {
			return err
		}
		evs, err := tx.AccountAudit(a.ID, 0, lookupTimeline)
		if err != nil {
			return err
		}
		for _, e := range evs {
			out.Timeline = append(out.Timeline, TimelineEntry{Seq: e.Seq, Time: e.Time, Action: e.Action,
				Actor: DescribeActor(e), Text: DescribeEvent(e), TicketID: e.TicketID})
		}
		return nil
	})
	return out, err
}

// MaskEmail keeps the first character of the local part and the domain: "a•••@example.com".
func MaskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		if email == "" {
			return ""
		}
		return "•••"
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "•••@" + domain
}

// MaskPhone keeps the last two digits: "••• 67".
func MaskPhone(phone string) string {
	var digits []rune
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits = append(digits, r)
		}
	}
	if len(digits) < 4 {
		if phone == "" {
			return ""
		}
		return "•••"
	}
	return "••• " + string(digits[len(digits)-2:])
}

// DescribeActor names who acted, in words.
func DescribeActor(e Event) string {
	switch e.ActorType {
	case ActorAgent:
		return "agent " + e.ActorID
	case ActorEndUser:
		return "the user"
	case ActorTelegramUser:
		return "a Telegram user"
	case ActorAPIKey:
		return "the host platform"
	case ActorSystem:
		return "the system"
	}
	return e.ActorType
}

// eventWords are the plain-word sentences of the security timeline. An action not listed is
// shown by its name.
var eventWords = map[string]string{
	"account.created":            "Account created by the host platform",
	"account.updated":            "Account details changed",
	"enrollment.started":         "Two-factor setup started",
	"factor.enrolled":            "Two-factor authentication turned on",
	"factor.disabled":            "Two-factor authentication turned off",
	"factor.suspended":           "Codes suspended after too many wrong attempts",
	"totp.verified":              "Signed in with a code",
	"totp.failed":                "A wrong or reused code was entered",
	"recovery_code.used":         "A recovery code was used",
	"recovery_code.failed":       "A wrong recovery code was entered",
	"recovery_codes.suspended":   "Recovery codes suspended after too many wrong attempts",
	"recovery_codes.regenerated": "New recovery codes were made",
	"reset.executed":             "Two-factor reset executed",
	"hold.set":                   "Hold set after the reset",
	"telegram.linked":            "Telegram chat linked",
	"ticket.opened":              "Recovery ticket opened",
	"ticket.joined":              "Another request joined the open ticket",
	"ticket.message":             "Message on the ticket",
	"ticket.assigned":            "Ticket assigned",
	"ticket.checklist_item":      "Identity checklist item recorded",
	"ticket.email_code_sent":     "Check code sent to the e-mail address of record",
	"ticket.email_code_failed":   "Wrong e-mail check code",
	"ticket.email_code_refused":  "Expired or used e-mail check code",
	"ticket.verifying":           "Identity checks started",
	"ticket.requested":           "Reset requested",
	"ticket.approved":            "Reset approved; cooling-off started",
	"ticket.denied":              "Reset denied by a supervisor",
	"ticket.rejected":            "Ticket rejected",
	"ticket.withdrawn":           "Request withdrawn by the user",
	"ticket.ready":               "Cooling-off over; ready to execute",
	"ticket.vetoed":              "The owner said \"this wasn't me\"",
	"ticket.frozen":              "Ticket frozen",
	"ticket.unfrozen":            "Ticket unfrozen by an admin",
	"ticket.executed":            "Reset executed",
	"ticket.link_reissued":       "Re-enrollment link issued again",
	"ticket.reenrolled":          "The user set up a new authenticator",
	"ticket.closed":              "Ticket closed",
	"ticket.self_service":        "Closed: the user can still sign in themselves",
	"ticket.expired":             "Ticket expired without progress",
	"alert.raised":               "Security alert raised",
	"notice.queued":              "Notice queued",
	"notice.sent":                "Notice delivered",
	"notice.failed":              "Notice could not be delivered",
	"ip.blocked":                 "An address was blocked for too many wrong codes",
}

// DescribeEvent tells an event in plain words, from its action and reason only: the details
// may hold identifiers an agent does not need on a timeline.
func DescribeEvent(e Event) string {
	text, ok := eventWords[e.Action]
	if !ok {
		text = e.Action
	}
	if e.Reason != "" {
		text += " — “" + e.Reason + "”"
	}
	return text
}

// DashboardStats are the figures of the console's dashboard.
type DashboardStats struct {
	// OpenByState counts tickets in each active state, in the workflow's order.
	OpenByState []StateCount
	// Weeks are the last weeks, oldest first, each starting on a Monday 00:00 UTC; the last one
	// holds now.
	Weeks []WeekStats
}

// StateCount is the number of tickets in one state.
type StateCount struct {
	State TicketState
	Count int
}

// WeekStats are one week's figures.
type WeekStats struct {
	Start time.Time
	// Recovered is how many tickets closed re-enrolled in the week; MedianRecovery is the median
	// time from opening to that close (0 when none).
	Recovered      int
	MedianRecovery time.Duration
	Vetoes         int // owners' vetoes
	Rejections     int // tickets rejected by an agent or denied by a supervisor
}

// activeStates are the states a ticket is open in, in the workflow's order.
var activeStates = []TicketState{TicketOpen, TicketVerifying, TicketPendingApproval, TicketCoolingOff,
	TicketReady, TicketExecuted, TicketFrozen}

// Dashboard computes the dashboard over the last weeks weeks (1 to 52).
func (s *Service) Dashboard(ctx context.Context, weeks int) (DashboardStats, error) {
	weeks = max(1, min(weeks, 52))
	now := s.now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	since := monday.AddDate(0, 0, -7*(weeks-1))
	var out DashboardStats
	for i := range weeks {
		out.Weeks = append(out.Weeks, WeekStats{Start: since.AddDate(0, 0, 7*i)})
	}
	week := func(t time.Time) int {
		if t.Before(since) {
			return -1
		}
		i := int(t.Sub(since) / (7 * 24 * time.Hour))
		if i >= weeks {
			return -1
		}
		return i
	}
	err := s.store.View(ctx, func(tx ReadTx) error {
		counts, err := tx.TicketStateCounts()
		if err != nil {
			return err
		}
		for _, st := range activeStates {
			out.OpenByState = append(out.OpenByState, StateCount{State: st, Count: counts[st]})
		}
		spans, err := tx.ClosedTicketSpans(OutcomeReenrolled, since)
		if err != nil {
			return err
		}
		durations := make([][]time.Duration, weeks)
		for _, sp := range spans {
			if i := week(sp.ClosedAt); i >= 0 {
				durations[i] = append(durations[i], sp.ClosedAt.Sub(sp.CreatedAt))
			}
		}
		for i, ds := range durations {
			out.Weeks[i].Recovered, out.Weeks[i].MedianRecovery = len(ds), median(ds)
		}
		vetoes, err := tx.AuditActionTimes([]string{"ticket.vetoed"}, since)
		if err != nil {
			return err
		}
		for _, t := range vetoes {
			if i := week(t); i >= 0 {
				out.Weeks[i].Vetoes++
			}
		}
		rejections, err := tx.AuditActionTimes([]string{"ticket.rejected", "ticket.denied"}, since)
		if err != nil {
			return err
		}
		for _, t := range rejections {
			if i := week(t); i >= 0 {
				out.Weeks[i].Rejections++
			}
		}
		return nil
	})
	return out, err
}

// median is the middle duration (the mean of the two middle ones for an even count), 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	m := len(ds) / 2
	if len(ds)%2 == 1 {
		return ds[m]
	}
	return (ds[m-1] + ds[m]) / 2
}
