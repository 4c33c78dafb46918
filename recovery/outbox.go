package recovery

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Notice channels.
const (
	NoticeEmail    = "email"
	NoticeTelegram = "telegram"
	NoticeWebhook  = "webhook" // the host platform's webhook
)

// Notice states.
const (
	NoticeQueued = "queued" // waiting for its first try or a retry
	NoticeSent   = "sent"
	NoticeFailed = "failed" // given up: a permanent refusal, or too many failed tries
)

// PurposeNotice is the sealing purpose of a notice's body (with the channel and recipient, so
// that a body moved to another recipient's row does not open).
const PurposeNotice = "notice"

// MaskMark replaces each secret of a notice's body in the form shown to agents.
const MaskMark = "••••"

// Outbox delivery numbers.
const (
	// NoticeLease is how long a claim holds a notice. A dispatcher that dies while sending
	// leaves the notice to the others once it runs out (and the host deduplicates on the
	// delivery id, as an e-mail re-sent after a crash is merely a duplicate).
	NoticeLease = 5 * time.Minute
	// noticeSendBudget is the real time one batch may spend sending; what is not sent by then
	// is handed back, well before the lease runs out, so that no claim is sent twice.
	noticeSendBudget = 4 * time.Minute
	// NoticeBackoffBase is the wait after a first failed try; each further failure doubles it
	// up to NoticeBackoffCap.
	NoticeBackoffBase = 30 * time.Second
	NoticeBackoffCap  = time.Hour
	// NoticeMaxAttempts failed tries give up (about 4.5 h of retries with the backoff above,
	// inside the 24 h life of a re-enrollment link).
	NoticeMaxAttempts = 10
	// maxRetryAfter bounds a receiver's Retry-After.
	maxRetryAfter = 24 * time.Hour
	// DefaultDispatchLimit is how many notices one DispatchDue call claims when asked for 0.
	DefaultDispatchLimit = 20
	maxDispatchLimit     = 200
	maxNoticeBody        = 64 << 10
	maxLastError         = 300
	defaultNoticeList    = 50
	maxNoticeList        = 500
)

// dispatcherActor is who the audit chain names for delivery outcomes.
var dispatcherActor = Actor{Type: ActorSystem, ID: "outbox"}

// Notice is one message in the outbox: written in the same transaction as the change that
// causes it, delivered afterwards by a dispatcher with retries.
type Notice struct {
	ID        int64
	Channel   string // NoticeEmail | NoticeTelegram | NoticeWebhook
	To        string // e-mail address | Telegram chat id in decimal | "" for the host webhook
	Kind      string // e.g. veto_request, reenroll_link, reset_executed, agent_reply, status; for the webhook the event name (reset.executed, hold.set, factor.suspended, factor.enrolled)
	AccountID string
	TicketID  string
	Subject   string // e-mail subject; never holds a secret
	// Body is the full text (webhook: the JSON payload). It may hold secret links: it is
	// sealed at rest and only dispatchers see it; Notices returns it empty.
	Body string
	// Masked is Body with every secret replaced by MaskMark: the only form shown to agents.
	Masked        string
	State         string // NoticeQueued | NoticeSent | NoticeFailed
	Attempts      int    // tries made (a try the receiver deferred with a Retry-After is not counted)
	NextAttemptAt time.Time
	CreatedAt     time.Time
	SentAt        time.Time
	LastError     string // scrubbed: never a secret, the body or the recipient
}

// NoticeFilter selects notices for Notices. Empty fields select everything.
type NoticeFilter struct {
	Channel   string
	State     string
	AccountID string
	TicketID  string
	BeforeID  int64 // only ids below it (paging backwards); 0 for no bound
	Limit     int   // default 50, at most 500
}

// noticePayload is what a notice's sealed body holds: the text and the secrets in it, so that
// the dispatcher can scrub them from an error message it stores.
type noticePayload struct {
	Body    string   `json:"b"`
	Secrets []string `json:"s,omitempty"`
}

func validChannel(c string) bool {
	return c == NoticeEmail || c == NoticeTelegram || c == NoticeWebhook
}

func noticeAAD(accountID string) string {
	if accountID == "" {
		return "-"
	}
	return accountID
}

func noticePurpose(channel, to string) string {
	return PurposeNotice + "\x00" + channel + "\x00" + to
}

// checkNotice refuses a notice the domain should never write: these are programming errors,
// and their messages name no value.
func checkNotice(n Notice) error {
	if !validChannel(n.Channel) {
		return fmt.Errorf("recovery: notice channel %q is unknown", n.Channel)
	}
	switch n.Channel {
	case NoticeEmail:
		// As loose as the accounts' own rule: an address the mail library later refuses fails
		// visibly in the outbox rather than rolling back the change that queued it.
		if n.To == "" || len(n.To) > 254 || !strings.Contains(n.To, "@") || !utf8.ValidString(n.To) ||
			strings.ContainsFunc(n.To, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return errors.New("recovery: an e-mail notice needs a plain e-mail address as its recipient")
		}
	case NoticeTelegram:
		id, err := strconv.ParseInt(n.To, 10, 64)
		if err != nil || strconv.FormatInt(id, 10) != n.To {
			return errors.New("recovery: a Telegram notice needs a decimal chat id as its recipient")
		}
	case NoticeWebhook:
		if n.To != "" {
			return errors.New("recovery: a webhook notice has no recipient")
		}
	}
	if n.Kind == "" || len(n.Kind) > 64 || strings.ContainsFunc(n.Kind, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}) {
		return errors.New("recovery: a notice kind is 1-64 of a-z, 0-9, _ and .")
	}
	// A line break in the subject would let it add mail headers.
	if len(n.Subject) > 250 || !utf8.ValidString(n.Subject) || strings.ContainsFunc(n.Subject, unicode.IsControl) {
		return errors.New("recovery: a notice subject is at most 250 bytes of text on one line")
	}
	if n.Body == "" || len(n.Body) > maxNoticeBody || !utf8.ValidString(n.Body) {
		return errors.New("recovery: a notice body is 1 byte to 64 KiB of UTF-8 text")
	}
	return nil
}

// maskSecrets replaces every secret in text with MaskMark, the longest first (so a secret that
// contains another is masked whole).
func maskSecrets(text string, secrets []string) string {
	for _, s := range bySizeDesc(secrets) {
		text = strings.ReplaceAll(text, s, MaskMark)
	}
	return text
}

// bySizeDesc returns the non-empty strings of ss, longest first.
func bySizeDesc(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

// queueNotice writes n inside tx and appends notice.queued (details: channel and kind; never
// the recipient, the body or a secret). secrets are the substrings of n.Body to mask in the
// form agents see (links with tokens, codes); the subject must hold none of them. The body is
// sealed with AAD = account id ("-" when none) and purpose notice/channel/recipient. n.ID,
// State, Attempts and the times are set here and by the store; the notice is due at once.
func (s *Service) queueNotice(tx Tx, al *auditLog, n Notice, secrets ...string) error {
	if err := checkNotice(n); err != nil {
		return err
	}
	secrets = bySizeDesc(secrets)
	for _, sec := range secrets {
		if strings.Contains(n.Subject, sec) {
			return errors.New("recovery: a notice subject must not hold a secret")
		}
	}
	payload, err := json.Marshal(noticePayload{Body: n.Body, Secrets: secrets})
	if err != nil {
		return fmt.Errorf("recovery: notice payload: %w", err)
	}
	sealed, err := s.keys.Seal(payload, noticeAAD(n.AccountID), noticePurpose(n.Channel, n.To))
	if err != nil {
		return fmt.Errorf("recovery: seal notice: %w", err)
	}
	now := al.now
	stored := Notice{
		Channel: n.Channel, To: n.To, Kind: n.Kind, AccountID: n.AccountID, TicketID: n.TicketID,
		Subject: n.Subject, Body: sealed, Masked: maskSecrets(n.Body, secrets),
		State: NoticeQueued, NextAttemptAt: now, CreatedAt: now,
	}
	id, err := tx.AddNotice(stored)
	if err != nil {
		return err
	}
	return al.append(entry{Action: "notice.queued", TargetType: "notice", TargetID: strconv.FormatInt(id, 10),
		TicketID: n.TicketID, Details: map[string]any{"channel": n.Channel, "kind": n.Kind}})
}

// hostEvent is the JSON payload of a host webhook notice.
type hostEvent struct {
	ID      string         `json:"id"`
	Event   string         `json:"event"`
	Account string         `json:"account"`
	Time    string         `json:"time"`
	Data    map[string]any `json:"data"`
}

// queueHostEvent queues a webhook notice when the host webhook is configured, else does
// nothing. The payload is {"id":"<uuid>","event":event,"account":accountID,"time":RFC 3339
// UTC,"data":data}; data must hold no secret. The id is random because the notice id is known
// only after the insert; receivers deduplicate on the X-RecoveryDesk-Delivery header (the
// notice id), which stays the same across retries.
func (s *Service) queueHostEvent(tx Tx, al *auditLog, event, accountID string, data map[string]any) error {
	if !s.webhook {
		return nil
	}
	if data == nil {
		data = map[string]any{}
	}
	body, err := json.Marshal(hostEvent{ID: newUUID(), Event: event, Account: accountID,
		Time: al.now.UTC().Format(time.RFC3339), Data: data})
	if err != nil {
		return fmt.Errorf("recovery: host event %s: %w", event, err)
	}
	return s.queueNotice(tx, al, Notice{Channel: NoticeWebhook, Kind: event, AccountID: accountID,
		Subject: event, Body: string(body)})
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// DeliveryError is what a Sender returns to say more than "failed, retry with backoff".
// Permanent gives up at once (the receiver refused the message for good). RetryAfter > 0 is a
// deferral asked for by the receiver (HTTP 429 Retry-After, Telegram's retry_after): the
// notice waits exactly that long instead of the backoff, the try does not count towards
// NoticeMaxAttempts, and the rest of the batch is handed back for the next round, since a
// receiver that throttles one message throttles the next. Its text is stored (scrubbed) and
// audited: it must not carry a password or token the sender knows of.
type DeliveryError struct {
	Err        error
	RetryAfter time.Duration
	Permanent  bool
}

func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return "delivery failed"
	}
	return e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Sender delivers one notice (with its Body in plain text) and returns nil once the receiver
// has accepted it. It runs outside any transaction and may be called again for the same notice
// (after a crash or a lost lease): receivers deduplicate on n.ID where they can.
type Sender func(ctx context.Context, n Notice) error

// DispatchDue delivers up to limit due notices of channel (DefaultDispatchLimit when limit ≤ 0)
// and returns how many were sent. Several dispatchers, in this process or on other replicas,
// may run at once: notices are claimed in one transaction with a lease (NoticeLease) that
// counts the attempt, sent outside any transaction, one after the other in id order, and each
// outcome is written with its audit event (notice.sent, or notice.failed with the attempt and
// whether it will retry) in the notice's ticket. A failure retries after a backoff doubling
// from NoticeBackoffBase up to NoticeBackoffCap and gives up after NoticeMaxAttempts tries;
// see DeliveryError for Permanent and RetryAfter. Telegram notices go out one at a time per
// chat: a chat's later message waits while an earlier one is queued. A body that does not
// open fails the notice. The error is the store's, or ctx's when it ended the batch: delivery
// failures are recorded, not returned.
func (s *Service) DispatchDue(ctx context.Context, channel string, limit int, send Sender) (sent int, err error) {
	sent, _, err = s.dispatch(ctx, channel, limit, send, nil)
	return sent, err
}

// dispatch is DispatchDue that also reports how many it claimed and calls report (when not
// nil) with each recorded outcome.
func (s *Service) dispatch(ctx context.Context, channel string, limit int, send Sender, report func(Notice)) (sent, claimed int, err error) {
	if !validChannel(channel) {
		return 0, 0, invalidf("unknown notice channel")
	}
	if send == nil {
		return 0, 0, errors.New("recovery: DispatchDue needs a sender")
	}
	if limit <= 0 {
		limit = DefaultDispatchLimit
	}
	limit = min(limit, maxDispatchLimit)
	batch, err := s.claimNotices(ctx, channel, limit)
	if err != nil || len(batch) == 0 {
		return 0, 0, err
	}
	// Outcomes and hand-backs are written even when ctx has ended (a shutdown): a claim left
	// behind would hold its notice until the lease runs out.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer wcancel()
	sctx, cancel := context.WithTimeout(ctx, noticeSendBudget)
	defer cancel()
	for i, n := range batch {
		if sctx.Err() != nil {
			return sent, len(batch), errors.Join(s.releaseNotices(wctx, batch[i:]), ctx.Err())
		}
		plain, serr := s.deliver(sctx, n, send)
		var de *DeliveryError
		if serr != nil && sctx.Err() != nil && !(errors.As(serr, &de) && de.Permanent) {
			// Cut off by our own deadline or shutdown: not the notice's fault.
			return sent, len(batch), errors.Join(s.releaseNotices(wctx, batch[i:]), ctx.Err())
		}
		out, ok, err := s.recordOutcome(wctx, n, serr, plain)
		if err != nil {
			return sent, len(batch), errors.Join(err, s.releaseNotices(wctx, batch[i+1:]))
		}
		if ok && out.State == NoticeSent {
			sent++
		}
		if ok && report != nil {
			report(out)
		}
		if errors.As(serr, &de) && de.RetryAfter > 0 && !de.Permanent {
			return sent, len(batch), s.releaseNotices(wctx, batch[i+1:])
		}
	}
	return sent, len(batch), nil
}

// claimNotices leases up to limit due notices of channel. The due notices are read in a read
// transaction, outside the write: on a long queue (Telegram's per-recipient order makes the query
// heavier) the read held the one writer that every other write waits for — measured at up to
// 0.85 s on PostgreSQL under mixed load. Each claim is one conditional UPDATE, so a notice that
// another dispatcher took or that changed since the read is skipped, and the per-recipient order
// holds: a notice is only read as due while no earlier one of its recipient is queued, and no
// earlier one can be queued later (ids grow).
func (s *Service) claimNotices(ctx context.Context, channel string, limit int) ([]Notice, error) {
	now := s.now()
	var due []Notice
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		due, err = tx.DueNotices(channel, now, channel == NoticeTelegram, limit)
		return err
	})
	if err != nil || len(due) == 0 {
		return nil, err
	}
	var out []Notice
	err = s.store.Update(ctx, func(tx Tx) error {
		out = out[:0]
		for _, n := range due {
			attempts, ok, err := tx.ClaimNotice(n.ID, now, now.Add(NoticeLease))
			if err != nil {
				return err
			}
			if ok {
				n.Attempts = attempts
				out = append(out, n)
			}
		}
		return nil
	})
	return out, err
}

// releaseNotices hands claimed notices back unattempted: the claim ends and its attempt is
// uncounted. A claim lost to another dispatcher meanwhile is left alone.
func (s *Service) releaseNotices(ctx context.Context, claimed []Notice) error {
	if len(claimed) == 0 {
		return nil
	}
	return s.store.Update(ctx, func(tx Tx) error {
		for _, n := range claimed {
			r := n
			r.Attempts--
			if _, err := tx.FinishNotice(r, n.Attempts); err != nil {
				return err
			}
		}
		return nil
	})
}

// errUnopenable is the failure of a notice whose sealed body does not open.
var errUnopenable = errors.New("the notice's body cannot be opened (a missing key, or a row moved or edited)")

// deliver opens the notice's body and hands it to send. It returns the opened payload for
// scrubbing the error, and turns a panicking sender into an error so that one bad notice
// cannot stop the dispatcher.
func (s *Service) deliver(ctx context.Context, n Notice, send Sender) (plain noticePayload, err error) {
	pt, err := s.keys.Open(n.Body, noticeAAD(n.AccountID), noticePurpose(n.Channel, n.To))
	var p noticePayload
	if err == nil {
		err = json.Unmarshal(pt, &p)
	}
	if err != nil {
		return noticePayload{}, &DeliveryError{Err: errUnopenable, Permanent: true}
	}
	n.Body = p.Body
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the sender panicked with a %T", r)
		}
	}()
	return p, send(ctx, n)
}

// recordOutcome writes the outcome of one claimed try with its audit event. ok is false when
// the claim was no longer ours (its lease ran out and another dispatcher took the notice): the
// other dispatcher's outcome is the one recorded.
func (s *Service) recordOutcome(ctx context.Context, n Notice, sendErr error, plain noticePayload) (out Notice, ok bool, err error) {
	now := s.now()
	claimed := n.Attempts
	out = n
	details := map[string]any{"channel": n.Channel, "kind": n.Kind, "attempt": claimed}
	action := "notice.sent"
	var de *DeliveryError
	errors.As(sendErr, &de)
	switch {
	case sendErr == nil:
		out.State, out.SentAt = NoticeSent, now
	case de != nil && de.Permanent:
		out.State = NoticeFailed
	case de != nil && de.RetryAfter > 0:
		out.State, out.Attempts = NoticeQueued, claimed-1
		out.NextAttemptAt = now.Add(min(de.RetryAfter, maxRetryAfter))
		details["deferred"] = true
	case claimed >= NoticeMaxAttempts:
		out.State = NoticeFailed
	default:
		out.State, out.NextAttemptAt = NoticeQueued, now.Add(NoticeBackoff(claimed))
	}
	if sendErr != nil {
		action = "notice.failed"
		out.LastError = scrubError(sendErr, plain, n.To)
		details["retry"] = out.State == NoticeQueued
		details["error"] = out.LastError
		if out.State == NoticeQueued {
			details["next_attempt_at"] = out.NextAttemptAt.UTC().Format(time.RFC3339)
		}
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		if ok, err = tx.FinishNotice(out, claimed); err != nil || !ok {
			return err
		}
		return newAuditLog(tx, now, dispatcherActor).append(entry{Action: action, TargetType: "notice",
			TargetID: strconv.FormatInt(n.ID, 10), TicketID: n.TicketID, Details: details})
	})
	return out, ok, err
}

// NoticeBackoff is the wait after the attempts-th failed try: NoticeBackoffBase doubled per earlier
// failure, at most NoticeBackoffCap.
func NoticeBackoff(attempts int) time.Duration {
	d := NoticeBackoffBase
	for i := 1; i < attempts && d < NoticeBackoffCap; i++ {
		d *= 2
	}
	return min(d, NoticeBackoffCap)
}

// scrubError is the text of a delivery error as stored and audited: the notice's body (when
// quoted whole) and secrets masked, its recipient left out, on one line of at most
// maxLastError bytes. It is the last line of defence; senders already keep bodies, passwords
// and tokens out of their errors.
func scrubError(err error, plain noticePayload, to string) string {
	msg := err.Error()
	if len(plain.Body) >= 8 {
		msg = strings.ReplaceAll(msg, plain.Body, "(body)")
	}
	for _, sec := range plain.Secrets {
		msg = strings.ReplaceAll(msg, sec, MaskMark)
	}
	if len(to) >= 5 {
		msg = strings.ReplaceAll(msg, to, "(recipient)")
	}
	msg = strings.ToValidUTF8(msg, "?")
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxLastError {
		cut := maxLastError
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if msg == "" {
		msg = "delivery failed"
	}
	return msg
}

// RunDispatcher calls DispatchDue for channel until ctx ends: at once again while full batches
// come back, else every interval (2 s when every ≤ 0). Failed deliveries are logged as warnings
// with their scrubbed error, store errors as errors; nothing logged holds a body or recipient.
func (s *Service) RunDispatcher(ctx context.Context, channel string, send Sender, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	report := func(n Notice) {
		if n.State != NoticeSent {
			log.Warn("notice not delivered", "notice", n.ID, "channel", n.Channel, "kind", n.Kind,
				"attempt", n.Attempts, "state", n.State, "err", n.LastError)
		}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, claimed, err := s.dispatch(ctx, channel, DefaultDispatchLimit, send, report)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error("outbox dispatch failed", "channel", channel, "err", err)
		}
		next := every
		if err == nil && claimed == DefaultDispatchLimit {
			next = 0
		}
		t.Reset(next)
	}
}

// Notices lists notices for the console's outbox view, newest first. Body is always empty;
// Masked is the form to show.
func (s *Service) Notices(ctx context.Context, f NoticeFilter) ([]Notice, error) {
	if f.Channel != "" && !validChannel(f.Channel) {
		return nil, invalidf("unknown notice channel")
	}
	if f.State != "" && f.State != NoticeQueued && f.State != NoticeSent && f.State != NoticeFailed {
		return nil, invalidf("unknown notice state")
	}
	if f.Limit <= 0 {
		f.Limit = defaultNoticeList
	}
	f.Limit = min(f.Limit, maxNoticeList)
	var out []Notice
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Notices(f)
		return err
	})
	for i := range out {
		out[i].Body = ""
	}
	return out, err
}
