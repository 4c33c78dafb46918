package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// TicketState is a state of the recovery state machine of design.md.
type TicketState string

const (
	TicketOpen            TicketState = "open"
	TicketVerifying       TicketState = "verifying"
	TicketPendingApproval TicketState = "pending_approval"
	TicketCoolingOff      TicketState = "cooling_off"
	TicketReady           TicketState = "ready"
	TicketExecuted        TicketState = "executed"
	TicketClosed          TicketState = "closed"
	TicketRejected        TicketState = "rejected"
	TicketFrozen          TicketState = "frozen"
	TicketWithdrawn       TicketState = "withdrawn"
	TicketExpired         TicketState = "expired"
)

// ActiveTicketStates are the states of a recovery still in progress: a new request for the same
// account joins such a ticket instead of opening another.
var ActiveTicketStates = []TicketState{TicketOpen, TicketVerifying, TicketPendingApproval, TicketCoolingOff, TicketReady, TicketExecuted, TicketFrozen}

// Active reports whether the state is one of ActiveTicketStates.
func (s TicketState) Active() bool {
	for _, a := range ActiveTicketStates {
		if s == a {
			return true
		}
	}
	return false
}

// Channels a ticket can be opened from.
const (
	ChannelConsole  = "console"
	ChannelTelegram = "telegram"
	ChannelAPI      = "api"
)

// Outcomes of a closed ticket.
const (
	OutcomeReenrolled  = "reenrolled"
	OutcomeSelfService = "self_service"
	OutcomeLinkExpired = "link_expired" // closed by an agent 7 days after the last link expired
)

// Workflow numbers of security.md.
const (
	CoolingOff         = 24 * time.Hour
	CoolingOffHighRisk = 72 * time.Hour
	HoldAfterReset     = 48 * time.Hour
	ReenrollLinkTTL    = 24 * time.Hour
	StepUpMaxAge       = 5 * time.Minute
	TicketIdleExpiry   = 7 * 24 * time.Hour
	CloseAfterLink     = 7 * 24 * time.Hour // an executed ticket whose link expired may be closed this long after
	EmailCodeTTL       = 10 * time.Minute
	EmailCodeAttempts  = 5
	maxMessageRunes    = 4000
	maxReasonRunes     = 1000
)

// Ticket is one recovery request and where it stands.
type Ticket struct {
	ID               string
	AccountID        string // "" when the claimed account does not exist (unmatched)
	Claimed          string // what the requester said: an account id or e-mail
	Channel          string
	ChatID           string // Telegram chat that asked, "" otherwise
	ChatLinkedBefore bool   // the chat was linked to the account before the ticket opened
	State            TicketState
	Outcome          string
	AssigneeID       string
	PolicyVersion    string
	Risk             []RiskSignal
	Staff            bool
	HighRisk         bool
	RequestedBy      string
	RequestedAt      time.Time
	ApprovedBy       string
	ApprovedAt       time.Time
	CoolingUntil     time.Time
	FrozenFrom       TicketState // the state a veto or freeze interrupted
	ExecutedBy       string
	ExecutedAt       time.Time
	HoldUntil        time.Time
	LinkExpiresAt    time.Time
	ClosedAt         time.Time
	Version          int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
	ProgressAt       time.Time // last change of state, checklist or assignment
	UserMessageAt    time.Time // last inbound message
}

// Matched reports whether the claimed account exists.
func (t Ticket) Matched() bool { return t.AccountID != "" }

// TicketFilter selects tickets for lists, newest first (CreatedAt, then ID, descending). Zero
// fields do not filter.
type TicketFilter struct {
	States     []TicketState
	AccountID  string
	Channel    string
	AssigneeID string // an agent id, or TicketUnassigned
	HighRisk   bool   // only high-risk tickets
	// OpenedBefore keeps tickets opened before it (the queue's "older than" age filter).
	OpenedBefore time.Time
	// Search matches a ticket id, an account id or what the requester claimed (an e-mail is
	// matched case-insensitively through the account it names).
	Search string
	// After is the keyset cursor of the next page: tickets strictly after it in list order.
	After *TicketCursor
	Limit int
}

// TicketUnassigned as TicketFilter.AssigneeID selects tickets nobody is assigned to.
const TicketUnassigned = "-"

// TicketCursor is a position in a ticket list: the last ticket of the previous page.
type TicketCursor struct {
	CreatedAt time.Time
	ID        string
}

// Message directions.
const (
	MessageInbound  = "inbound"
	MessageOutbound = "outbound"
	MessageNote     = "note"
)

// TicketMessage is one entry of a ticket's thread.
type TicketMessage struct {
	ID             int64
	TicketID       string
	Direction      string
	AuthorType     string // an Actor* constant
	AuthorID       string
	Body           string
	EvidenceRef    string // e.g. a Telegram file id; never served as active content
	EvidenceSHA256 string
	CreatedAt      time.Time
}

// ChecklistResult is one recorded checklist item. The latest result of an item counts.
type ChecklistResult struct {
	ID             int64
	TicketID       string
	ItemKey        string
	Kind           string
	Passed         bool
	Method         string // how it was established: attested, system_compare, code, automatic
	AgentID        string
	Note           string
	EvidenceSHA256 string
	CreatedAt      time.Time
}

// EmailCode is the one-time code of a ticket's email_code item (stored hashed).
type EmailCode struct {
	TicketID  string
	Hash      string
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// VetoToken is a single-use "this wasn't me" link of a ticket (stored hashed).
type VetoToken struct {
	Hash      string
	TicketID  string
	Channel   string
	CreatedAt time.Time
	UsedAt    time.Time
}

// TelegramLink binds a Telegram chat to an account, made from a logged-in web session.
type TelegramLink struct {
	ChatID    string
	AccountID string
	LinkedAt  time.Time
}

// Workflow refusals. Adapters map them once.
var (
	ErrTicketState         = errors.New("the ticket is not in a state that allows this")
	ErrChecklistMissing    = errors.New("the checklist is not complete")
	ErrSelfService         = errors.New("the user still has a working factor: self-service, not a reset")
	ErrSeparationOfDuty    = errors.New("separation of duties forbids this agent from this action")
	ErrForbidden           = errors.New("the agent's role does not allow this")
	ErrStepUpRequired      = errors.New("a fresh two-factor code from the agent is required")
	ErrUnmatchedTicket     = errors.New("the ticket names no known account")
	ErrLinkUnavailable     = errors.New("the link is not valid any more")
	ErrChatLinkedElsewhere = errors.New("this chat is already linked to another account")
)

// MissingError lists what the checklist still needs (wrapping ErrChecklistMissing).
type MissingError struct{ Missing []string }

func (e *MissingError) Error() string {
	return ErrChecklistMissing.Error() + ": " + strings.Join(e.Missing, "; ")
}

func (e *MissingError) Unwrap() error { return ErrChecklistMissing }

// newTicketID returns a short id users can read out: "RD-" and 10 base32 characters (50 bits).
func newTicketID() (string, error) {
	var b [7]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "RD-" + b32.EncodeToString(b[:])[:10], nil
}

// newSecretToken returns a 128-bit URL-safe token and its storage hash for purpose.
func newSecretToken(purpose string) (token, hash string, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b[:])
	return token, hashToken(purpose, token), nil
}

// evidenceHash is the SHA-256 (hex) of an evidence reference, "" for none.
func evidenceHash(ref string) string {
	if ref == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}

func validReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	if required && reason == "" {
		return "", invalidf("a reason is required")
	}
	if err := validText("reason", reason, maxReasonRunes); err != nil {
		return "", err
	}
	return reason, nil
}

func validMessage(body string) (string, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return "", invalidf("the message is empty")
	}
	if !validUTF8Text(body, maxMessageRunes) {
		return "", invalidf("the message must be valid text of at most %d characters", maxMessageRunes)
	}
	return body, nil
}

// validUTF8Text allows newlines and tabs in multi-line text, unlike validText.
func validUTF8Text(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t' && r != '\r') || r == 0x7f {
			return false
		}
	}
	return true
}

// ticketLog is the audit log of one ticket's transaction: every event carries the ticket id.
type ticketLog struct {
	*auditLog
	ticketID string
}

func (l ticketLog) event(action string, reason string, details map[string]any) error {
	return l.append(entry{Action: action, TargetType: "ticket", TargetID: l.ticketID, TicketID: l.ticketID, Reason: reason, Details: details})
}

// OpenRequest asks for a recovery ticket.
type OpenRequest struct {
	Channel string // ChannelConsole, ChannelTelegram or ChannelAPI
	Claimed string // the account id or e-mail the requester names
	ChatID  string // Telegram chat id (decimal) for ChannelTelegram
	Message string // optional first message
}

// Opened is the answer to OpenTicket.
type Opened struct {
	TicketID string
	// Joined says an active ticket of the account took the request. It reveals that the account
	// exists: adapters must not tell the requester (the bot answers the same either way).
	Joined bool
}

// OpenTicket opens a recovery ticket, or joins the account's active one (one active recovery per
// account). Contact is not authorisation: nothing on the account changes. A claim that names no
// account opens an unmatched ticket, so the requester sees the same answer either way.
func (s *Service) OpenTicket(ctx context.Context, actor Actor, req OpenRequest) (Opened, error) {
	claimed := strings.TrimSpace(req.Claimed)
	if claimed == "" {
		return Opened{}, invalidf("name the account: its e-mail or id")
	}
	if err := validText("account", claimed, 254); err != nil {
		return Opened{}, err
	}
	switch req.Channel {
	case ChannelConsole, ChannelAPI:
		if req.ChatID != "" {
			return Opened{}, invalidf("a chat id belongs to Telegram tickets only")
		}
	case ChannelTelegram:
		if req.ChatID == "" {
			return Opened{}, invalidf("a Telegram ticket needs its chat id")
		}
	default:
		return Opened{}, invalidf("channel must be console, telegram or api")
	}
	var msg string
	if strings.TrimSpace(req.Message) != "" {
		var err error
		if msg, err = validMessage(req.Message); err != nil {
			return Opened{}, err
		}
	}
	id, err := newTicketID()
	if err != nil {
		return Opened{}, err
	}
	now := s.now()
	var out Opened
	err = s.update(ctx, func(tx Tx) (error, error) {
		var err error
		out, err = s.openTicketTx(tx, newAuditLog(tx, now, actor), actor, req, claimed, msg, id, now)
		return nil, err
	})
	return out, err
}

// openTicketTx is OpenTicket inside tx, for callers that open a ticket together with other
// effects (the bot's update processing). claimed and msg are validated; id is a fresh ticket id.
func (s *Service) openTicketTx(tx Tx, al *auditLog, actor Actor, req OpenRequest, claimed, msg, id string, now time.Time) (Opened, error) {
	var out Opened
	err := func() error {
		acc, err := claimedAccount(tx, claimed)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		matched := err == nil
		if matched {
			t, err := tx.ActiveTicket(acc.ID)
			if err == nil {
				out = Opened{TicketID: t.ID, Joined: true}
				return s.joinTicket(tx, ticketLog{al, t.ID}, t, actor, req, msg, now)
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		t := Ticket{
			ID: id, Claimed: claimed, Channel: req.Channel, ChatID: req.ChatID, State: TicketOpen,
			PolicyVersion: s.policy.Version, Version: 1, CreatedAt: now, UpdatedAt: now, ProgressAt: now,
		}
		in := RiskInput{Now: now, Matched: matched, Channel: req.Channel}
		if matched {
			t.AccountID, t.Staff = acc.ID, acc.Staff
			recent, err := tx.CountTickets(acc.ID, now.Add(-RiskWindow))
			if err != nil {
				return err
			}
			link, err := tx.TelegramLinkByAccount(acc.ID)
			switch {
			case err == nil:
				in.TelegramChangedAt = link.LinkedAt
				t.ChatLinkedBefore = req.ChatID != "" && link.ChatID == req.ChatID && link.LinkedAt.Before(now)
			case !errors.Is(err, ErrNotFound):
				return err
			}
			in.Staff, in.EmailChangedAt, in.PhoneChangedAt = acc.Staff, acc.EmailChangedAt, acc.PhoneChangedAt
			in.RecentTickets, in.ChatLinkedBefore = recent+1, t.ChatLinkedBefore
		}
		t.Risk = EvaluateRisk(in)
		t.HighRisk = t.Staff || HighRisk(t.Risk)
		if msg != "" {
			t.UserMessageAt = now
		}
		if err := tx.InsertTicket(t); err != nil {
			return err
		}
		out = Opened{TicketID: t.ID}
		tl := ticketLog{al, t.ID}
		// The claimed value is what the requester typed; it may be someone else's address, so the
		// event records only whether it matched.
		if err := tl.event("ticket.opened", "", map[string]any{
			"channel": t.Channel, "matched": matched, "account_id": t.AccountID, "policy_version": t.PolicyVersion,
			"risk": riskStrings(t.Risk), "high_risk": t.HighRisk, "chat_linked_before": t.ChatLinkedBefore,
		}); err != nil {
			return err
		}
		if msg != "" {
			if err := addMessage(tx, tl, t.ID, MessageInbound, actor, msg, "", now); err != nil {
				return err
			}
		}
		if t.ChatLinkedBefore {
			if item, ok := s.policy.itemOfKind(KindTelegramPrelinked); ok {
				r := ChecklistResult{TicketID: t.ID, ItemKey: item.Key, Kind: item.Kind, Passed: true, Method: "automatic", AgentID: "system", CreatedAt: now}
				if err := recordResult(tx, tl, r); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	return out, err
}

// claimedAccount finds the account a requester named by e-mail or id.
func claimedAccount(tx ReadTx, claimed string) (Account, error) {
	if strings.Contains(claimed, "@") {
		if a, err := tx.AccountByEmail(strings.ToLower(claimed)); !errors.Is(err, ErrNotFound) {
			return a, err
		}
	}
	if CheckAccountID(claimed) != nil {
		return Account{}, ErrNotFound
	}
	return tx.Account(claimed)
}

func riskStrings(rs []RiskSignal) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// joinTicket records a new request for an account that already has an active ticket.
func (s *Service) joinTicket(tx Tx, tl ticketLog, t Ticket, actor Actor, req OpenRequest, msg string, now time.Time) error {
	if err := tl.event("ticket.joined", "", map[string]any{"channel": req.Channel, "state": string(t.State)}); err != nil {
		return err
	}
	body := msg
	if body == "" {
		body = "(a new recovery request for this account, from " + req.Channel + ")"
	}
	if err := addMessage(tx, tl, t.ID, MessageInbound, actor, body, "", now); err != nil {
		return err
	}
	return tx.TouchTicket(t.ID, t.ProgressAt, now)
}

func addMessage(tx Tx, tl ticketLog, ticketID, direction string, actor Actor, body, evidenceRef string, now time.Time) error {
	m := TicketMessage{TicketID: ticketID, Direction: direction, AuthorType: actor.Type, AuthorID: actor.ID,
		Body: body, EvidenceRef: evidenceRef, EvidenceSHA256: evidenceHash(evidenceRef), CreatedAt: now}
	id, err := tx.AddTicketMessage(m)
	if err != nil {
		return err
	}
	d := map[string]any{"message_id": id, "direction": direction, "length": len([]rune(body))}
	if m.EvidenceSHA256 != "" {
		d["evidence_sha256"] = m.EvidenceSHA256
	}
	return tl.event("ticket.message", "", d)
}

func recordResult(tx Tx, tl ticketLog, r ChecklistResult) error {
	if err := tx.AddChecklistResult(r); err != nil {
		return err
	}
	d := map[string]any{"item": r.ItemKey, "kind": r.Kind, "passed": r.Passed, "method": r.Method}
	if r.EvidenceSHA256 != "" {
		d["evidence_sha256"] = r.EvidenceSHA256
	}
	return tl.event("ticket.checklist_item", "", d)
}

// agentFor loads the acting agent and checks they are enabled and hold at least role.
func agentFor(tx ReadTx, actor Actor, role string) (Agent, error) {
	if actor.Type != ActorAgent || actor.ID == "" {
		return Agent{}, ErrForbidden
	}
	a, err := tx.Agent(actor.ID)
	if errors.Is(err, ErrNotFound) {
		return Agent{}, ErrForbidden
	}
	if err != nil {
		return Agent{}, err
	}
	if a.Disabled || !a.AtLeast(role) {
		return Agent{}, ErrForbidden
	}
	return a, nil
}

// isTarget reports whether the agent is the person whose account the ticket is about: agents
// never act on their own account.
func isTarget(tx ReadTx, a Agent, t Ticket) (bool, error) {
	if !t.Matched() {
		return false, nil
	}
	acc, err := tx.Account(t.AccountID)
	if err != nil {
		return false, err
	}
	return acc.EmailKey != "" && strings.EqualFold(acc.EmailKey, a.Email), nil
}

// ticketChange runs fn on a locked ticket as the agent with at least role, checking the version
// the agent saw (0 skips the check: system and end-user actions). fn returns a refusal or error;
// the ticket it leaves in *t is written with the next version when changed is true.
func (s *Service) ticketChange(ctx context.Context, actor Actor, role, ticketID string, version int64,
	fn func(tx Tx, tl ticketLog, a Agent, t *Ticket, now time.Time) (changed bool, refusal, err error)) error {
	now := s.now()
	return s.update(ctx, func(tx Tx) (error, error) {
		var a Agent
		if role != "" {
			var err error
			if a, err = agentFor(tx, actor, role); err != nil {
				if errors.Is(err, ErrForbidden) {
					return ErrForbidden, nil
				}
				return nil, err
			}
		}
		t, err := tx.LockTicket(ticketID)
		if err != nil {
			return nil, err
		}
		if version != 0 && t.Version != version {
			return ErrConflict, nil
		}
		if role != "" && t.Matched() {
			target, err := isTarget(tx, a, t)
			if err != nil {
				return nil, err
			}
			if target {
				return ErrSeparationOfDuty, nil
			}
		}
		tl := ticketLog{newAuditLog(tx, now, actor), t.ID}
		before := t.State
		changed, refusal, err := fn(tx, tl, a, &t, now)
		if refusal != nil || err != nil || !changed {
			return refusal, err
		}
		if t.State != before {
			if err := s.tellRequester(tx, tl, t); err != nil {
				return nil, err
			}
		}
		t.Version++
		t.UpdatedAt = now
		return nil, tx.UpdateTicket(t)
	})
}

// setState moves t to state and records the progress.
// Every transition is its own audit action (ticket.requested, ticket.approved, …), so that a
// ticket's events read as a case file; the details always carry from and to.
func setState(tl ticketLog, t *Ticket, action string, to TicketState, reason string, now time.Time, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	details["from"], details["to"] = string(t.State), string(to)
	t.State, t.ProgressAt = to, now
	return tl.event("ticket."+action, reason, details)
}

// AssignTicket assigns the ticket to an agent ("" unassigns). Any agent may assign.
func (s *Service) AssignTicket(ctx context.Context, actor Actor, ticketID string, version int64, assigneeID string) error {
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, version, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
		if !t.State.Active() {
			return false, ErrTicketState, nil
		}
		if assigneeID != "" {
			b, err := tx.Agent(assigneeID)
			if errors.Is(err, ErrNotFound) || (err == nil && b.Disabled) {
				return false, invalidf("no such enabled agent"), nil
			}
			if err != nil {
				return false, nil, err
			}
		}
		from := t.AssigneeID
		t.AssigneeID, t.ProgressAt = assigneeID, now
		return true, nil, tl.event("ticket.assigned", "", map[string]any{"from": from, "to": assigneeID})
	})
}

// AddNote adds an internal note (never sent to the user).
func (s *Service) AddNote(ctx context.Context, actor Actor, ticketID, body string) error {
	body, err := validMessage(body)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, 0, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
		return false, nil, addMessage(tx, tl, t.ID, MessageNote, tl.actor, body, "", now)
	})
}

// Reply sends an agent's message to the user: it is kept in the thread and, for a Telegram
// ticket, queued to the chat that asked. Replies never carry account data; that is the agent's
// duty, and the console says so.
func (s *Service) Reply(ctx context.Context, actor Actor, ticketID, body string) error {
	body, err := validMessage(body)
	if err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, RoleAgent, ticketID, 0, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
		if err := addMessage(tx, tl, t.ID, MessageOutbound, tl.actor, body, "", now); err != nil {
			return false, nil, err
		}
		if t.Channel == ChannelTelegram {
			n := Notice{Channel: NoticeTelegram, To: t.ChatID, Kind: "agent_reply", AccountID: t.AccountID, TicketID: t.ID, Body: body}
			if err := s.queueNotice(tx, tl.auditLog, n); err != nil {
				return false, nil, err
			}
		}
		return false, nil, nil
	})
}

// UserMessage adds what the user wrote (through the bot or another channel) to the ticket's
// thread. evidenceRef names an attachment (e.g. a Telegram file id); its SHA-256 is kept too.
func (s *Service) UserMessage(ctx context.Context, actor Actor, ticketID, body, evidenceRef string) error {
	body = strings.TrimSpace(body)
	if body == "" && evidenceRef == "" {
		return invalidf("the message is empty")
	}
	if body != "" {
		var err error
		if body, err = validMessage(body); err != nil {
			return err
		}
	}
	if err := validText("evidence", evidenceRef, 512); err != nil {
		return err
	}
	return s.ticketChange(ctx, actor, "", ticketID, 0, func(tx Tx, tl ticketLog, _ Agent, t *Ticket, now time.Time) (bool, error, error) {
		if !t.State.Active() {
			return false, ErrTicketState, nil
		}
		if err := addMessage(tx, tl, t.ID, MessageInbound, tl.actor, body, evidenceRef, now); err != nil {
			return false, nil, err
		}
		return false, nil, tx.TouchTicket(t.ID, t.ProgressAt, now)
	})
}

// TicketDetail is a ticket with its thread, checklist and what the policy still needs, as the
// console shows it. It holds no secret and no stored account fact.
type TicketDetail struct {
	Ticket
	Messages []TicketMessage
	Results  []ChecklistResult
	Missing  []string
	Required []string
}

// TicketDetail reads a ticket for adapters.
func (s *Service) TicketDetail(ctx context.Context, ticketID string) (TicketDetail, error) {
	var d TicketDetail
	err := s.store.View(ctx, func(tx ReadTx) error {
		t, err := tx.Ticket(ticketID)
		if err != nil {
			return err
		}
		d.Ticket = t
		if d.Messages, err = tx.TicketMessages(t.ID); err != nil {
			return err
		}
		if d.Results, err = tx.ChecklistResults(t.ID); err != nil {
			return err
		}
		if t.Matched() {
			d.Missing, _, err = s.missing(tx, t)
			d.Required = s.policy.Required(t.Risk)
		}
		return err
	})
	return d, err
}

// Tickets lists tickets for adapters.
func (s *Service) Tickets(ctx context.Context, f TicketFilter) ([]Ticket, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	f.Search = strings.TrimSpace(f.Search)
	var out []Ticket
	err := s.store.View(ctx, func(tx ReadTx) (err error) {
		// An e-mail finds the tickets of the account it belongs to (e-mails are compared
		// case-insensitively); otherwise it may still match an unmatched ticket's claim.
		if strings.Contains(f.Search, "@") {
			a, err := tx.AccountByEmail(strings.ToLower(f.Search))
			if err == nil {
				f.Search = a.ID
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		out, err = tx.Tickets(f)
		return err
	})
	return out, err
}

// LinkTelegramChat links a chat to an account (the end-user pages and the bot call it once a
// single-use link token is redeemed). A chat linked to another account is refused.
func (s *Service) LinkTelegramChat(ctx context.Context, actor Actor, accountID, chatID string) error {
	if chatID == "" || len(chatID) > 32 {
		return invalidf("bad chat id")
	}
	now := s.now()
	return s.update(ctx, func(tx Tx) (error, error) {
		if _, err := tx.Account(accountID); err != nil {
			return nil, err
		}
		l, err := tx.TelegramLinkByChat(chatID)
		switch {
		case err == nil && l.AccountID != accountID:
			return ErrChatLinkedElsewhere, nil
		case err == nil:
			return nil, nil
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		if err := tx.PutTelegramLink(TelegramLink{ChatID: chatID, AccountID: accountID, LinkedAt: now}); err != nil {
			return nil, err
		}
		return nil, newAuditLog(tx, now, actor).add("telegram.linked", "account", accountID, map[string]any{"chat_id": chatID})
	})
}
