package recovery

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The Telegram conversation. The bot adapter parses an update and downloads an attachment;
// TelegramUpdate decides everything else — the conversation step, the ticket effects and the
// reply — and writes it in one transaction together with the update_id, so that an update
// Telegram delivers twice is processed once. Replies are Telegram notices in the outbox (kind
// NoticeKindBotReply, or NoticeKindBotMenu for the greeting, to which the bot adds the buttons of
// BotMenu), delivered by the bot's dispatcher with the agents' replies. The texts live here
// because what a reply may say (never account data, the same words whether an account exists
// or not) is a rule of the domain.

// Conversation states of a chat.
const (
	BotStateIdle          = "idle"
	BotStateAwaitingEmail = "awaiting_email"
	BotStateInTicket      = "in_ticket"
)

// Notice kinds of the bot's own replies.
const (
	NoticeKindBotReply = "bot_reply"
	NoticeKindBotMenu  = "bot_menu" // the greeting: the bot renders BotMenu as inline buttons
)

// Callback data of the greeting's inline buttons.
const (
	ButtonLost    = "lost"
	ButtonStatus  = "status"
	ButtonSupport = "support"
)

// BotButton is one inline button of the greeting.
type BotButton struct{ Text, Data string }

// BotMenu is the greeting's inline keyboard, one button a row.
var BotMenu = []BotButton{
	{"I lost my authenticator", ButtonLost},
	{"Status of my request", ButtonStatus},
	{"Talk to support", ButtonSupport},
}

// Telegram numbers of security.md.
const (
	TelegramLinkTokenTTL = 10 * time.Minute
	// telegramUpdateMemory is how long processed update ids are remembered: far beyond the
	// 24 h for which Telegram redelivers an unconfirmed update.
	telegramUpdateMemory = 7 * 24 * time.Hour
	purposeTelegramLink  = "telegram-link"
	maxEvidenceRef       = 512
)

// Chat types (Telegram's chat.type). Only private chats are served.
const ChatPrivate = "private"

// TelegramIn is one Telegram update as the bot parsed it.
type TelegramIn struct {
	UpdateID int64
	ChatID   int64
	ChatType string // "private", "group", "supergroup", "channel"; "" for updates without a chat
	UserID   int64  // the sender; in a private chat it equals ChatID
	Text     string // message text or caption
	Button   string // callback data of a pressed inline button
	// FileID and FileSHA256 describe a photo or document: the Telegram file id and the SHA-256
	// (hex) of the bytes the bot downloaded. FileSHA256 is "" when the download failed.
	FileID     string
	FileSHA256 string
}

// ParseTelegramCommand splits "/cmd arg" (also "/cmd@botname arg") into the lower-case command
// without the slash and its trimmed argument; ok is false for text that is not a command.
func ParseTelegramCommand(text string) (cmd, arg string, ok bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") || len(text) < 2 {
		return "", "", false
	}
	head, rest, _ := strings.Cut(text[1:], " ")
	head, _, _ = strings.Cut(head, "@")
	head = strings.ToLower(head)
	if head == "" || len(head) > 32 {
		return "", "", false
	}
	for _, r := range head {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return "", "", false
		}
	}
	return head, strings.TrimSpace(rest), true
}

// Bot texts. Short and friendly; none names account data, and the answer after an e-mail is
// the same whether or not the account exists.
const (
	textGreeting = "Hello! This is the support desk for two-factor authentication. " +
		"If you lost your authenticator app or phone, we can help you get back into your account.\n\nWhat would you like to do?"
	textAskEmail        = "Please send the e-mail address of your account."
	textBadEmail        = "That does not look like an e-mail address. Please send the address you use to sign in, for example name@example.com."
	textOpened          = "Thank you. Your request %s is with our support team. Nothing changes on any account just because you asked.\n\nYou can write here anything you want support to know; screenshots and documents are welcome. /status shows where things stand, /cancel withdraws the request."
	textRelayed         = "Sent to support."
	textNoTicket        = "You have no open request. Tap \"I lost my authenticator\" to start one."
	textTalkNoTicket    = "To talk to support, please first send the e-mail address of your account."
	textTalkInTicket    = "Write your message here and support will read it in your request %s."
	textAlreadyOpen     = "You already have request %s open. Write here anything you want support to know."
	textCancelled       = "Your request %s is withdrawn. If you need help again, send /start."
	textCannotCancel    = "Request %s can no longer be withdrawn here (%s). If something is wrong, write here and support will read it."
	textClosedStart     = "Your request %s is finished. Send /start if you need help again."
	textAttachNoTicket  = "Please start a request first: tap \"I lost my authenticator\", then send the file again."
	textLinked          = "This chat is now linked to your account. Messages about your account's security can reach you here."
	textLinkInvalid     = "This link does not work. Links work once and for 10 minutes: create a new one on your account's security page."
	textLinkedElsewhere = "This chat is already linked to another account. Unlink it on that account's security page first."
	textUnknown         = "Sorry, I did not understand that. Send /start to see what I can do."
	textTooLong         = "That message is too long or contains characters I cannot pass on. Please send a shorter text."
	textTimeSync        = "If your codes are refused although the app shows them, your phone's clock may be off: " +
		"turn on automatic date and time on your phone, and enable time synchronization in your authenticator app's settings " +
		"(in Google Authenticator: Settings → Time correction for codes → Sync now). Then try a fresh code."
)

// codesComplaint reports whether text says that codes do not work (English only, deliberately
// loose: the advice does no harm when it is not needed).
func codesComplaint(text string) bool {
	t := strings.ToLower(text)
	if !strings.Contains(t, "code") {
		return false
	}
	for _, w := range []string{"not work", "doesn't work", "doesnt work", "don't work", "dont work", "wrong", "invalid",
		"incorrect", "not accepted", "rejected", "refused", "fail", "not valid", "isn't valid", "not right"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// looksLikeEmail is the bot's loose check before a claim: one @ with text on both sides and a
// dot in the domain, no spaces.
func looksLikeEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return len(s) <= 254 && at > 0 && at < len(s)-1 && strings.Contains(s[at+1:], ".") &&
		!strings.ContainsAny(s, " \t\r\n<>") && utf8.ValidString(s)
}

// statusText says where a ticket stands, in plain words. own is false when the chat joined a
// ticket another channel opened: it hears exactly what a chat that named an unknown e-mail hears
// about its own unmatched ticket — waiting for an agent, or declined, withdrawn or expired — since
// anything else would reveal that the account exists and what happens to it.
func statusText(t Ticket, own bool) string {
	id := t.ID
	if !own {
		switch t.State {
		case TicketRejected, TicketWithdrawn, TicketExpired:
		default:
			t.State = TicketOpen
		}
	}
	utc := func(x time.Time) string { return x.UTC().Format("2 Jan 2006 15:04 UTC") }
	switch t.State {
	case TicketOpen:
		return "Your request " + id + " is waiting for a support agent. Nothing on your account changes just because you asked."
	case TicketVerifying:
		return "Your request " + id + ": a support agent is checking that the account is yours, for example with a code sent to the e-mail address of the account or questions only its owner can answer. Reply here if they ask you something."
	case TicketPendingApproval:
		return "Your request " + id + ": the checks are done and a second member of our team is reviewing them. Two people must agree before any reset; that protects you."
	case TicketCoolingOff:
		return "Your request " + id + " is approved. For your protection there is a waiting period until " + utc(t.CoolingUntil) +
			": if someone else asked in your name, the real owner can still stop it. After that the reset is carried out."
	case TicketReady:
		return "Your request " + id + ": the waiting period is over and the reset will be carried out shortly."
	case TicketExecuted:
		return "Your request " + id + " has been carried out. The link to set up your authenticator again has been sent; it works once, for 24 hours."
	case TicketFrozen:
		return "Your request " + id + " is paused: someone said it was not them. Support will look into it and write to you."
	case TicketClosed:
		if t.Outcome == OutcomeSelfService {
			return "Your request " + id + " is closed: you can still sign in with a recovery code or your old device, so no reset was needed."
		}
		return "Your request " + id + " is closed."
	case TicketRejected:
		return "Your request " + id + " was declined because we could not confirm it, so nothing was changed. Send /start to begin again."
	case TicketWithdrawn:
		return "You withdrew request " + id + ". Send /start if you need help again."
	case TicketExpired:
		return "Request " + id + " expired after 7 days without progress. Send /start to begin again."
	}
	return "Your request " + id + " is with our support team."
}

// botTurn is one update's processing inside the transaction: the reply it queues and the state
// it leaves.
type botTurn struct {
	s      *Service
	tx     Tx
	al     *auditLog
	actor  Actor
	in     TelegramIn
	chatID string
	chat   BotChat
	now    time.Time
	menu   bool
	reply  []string
}

func (b *botTurn) say(format string, args ...any) {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	b.reply = append(b.reply, format)
}

// TelegramUpdate processes one update exactly once: it records in.UpdateID, runs the
// conversation step and queues the reply in one transaction, and reports processed = false for
// an update_id seen before (nothing is done again). Updates from other than private chats are
// recorded and ignored. The polling offset is advanced past in.UpdateID in the same
// transaction.
func (s *Service) TelegramUpdate(ctx context.Context, in TelegramIn) (processed bool, err error) {
	if in.UpdateID < 0 {
		return false, invalidf("bad update id")
	}
	if len(in.FileID) > maxEvidenceRef || !utf8.ValidString(in.FileID) || len(in.Button) > 64 {
		in.FileID, in.FileSHA256, in.Button = "", "", ""
	}
	id, err := newTicketID()
	if err != nil {
		return false, err
	}
	now := s.now()
	err = s.update(ctx, func(tx Tx) (error, error) {
		processed = false
		fresh, err := tx.MarkTelegramUpdate(in.UpdateID, now)
		if err != nil || !fresh {
			return nil, err
		}
		processed = true
		if err := tx.AdvanceTelegramOffset(in.UpdateID + 1); err != nil {
			return nil, err
		}
		if in.UpdateID%256 == 0 {
			if err := tx.PruneTelegramUpdates(now.Add(-telegramUpdateMemory)); err != nil {
				return nil, err
			}
		}
		if in.ChatType != ChatPrivate || in.ChatID <= 0 {
			return nil, nil // groups and channels are not served (security.md: a chat proves nothing there)
		}
		b := &botTurn{s: s, tx: tx, in: in, now: now, chatID: strconv.FormatInt(in.ChatID, 10),
			actor: Actor{Type: ActorTelegramUser, ID: strconv.FormatInt(in.UserID, 10), RequestID: "tg-" + strconv.FormatInt(in.UpdateID, 10)}}
		b.al = newAuditLog(tx, now, b.actor)
		b.chat, err = tx.BotChat(b.chatID)
		if errors.Is(err, ErrNotFound) {
			b.chat, err = BotChat{ChatID: b.chatID, State: BotStateIdle}, nil
		}
		if err != nil {
			return nil, err
		}
		before := b.chat
		if err := b.step(id); err != nil {
			return nil, err
		}
		if b.chat != before {
			b.chat.UpdatedAt = now
			if err := tx.PutBotChat(b.chat); err != nil {
				return nil, err
			}
		}
		if len(b.reply) == 0 {
			return nil, nil
		}
		kind := NoticeKindBotReply
		if b.menu {
			kind = NoticeKindBotMenu
		}
		n := Notice{Channel: NoticeTelegram, To: b.chatID, Kind: kind, TicketID: b.chat.TicketID, Body: strings.Join(b.reply, "\n\n")}
		return nil, s.queueNotice(tx, b.al, n)
	})
	return processed, err
}

// step decides the reply to one update of a private chat.
func (b *botTurn) step(newID string) error {
	in := b.in
	if cmd, arg, ok := ParseTelegramCommand(in.Text); ok && in.Button == "" {
		switch cmd {
		case "start":
			if arg != "" {
				return b.redeemLink(arg)
			}
			b.menu = true
			b.say(textGreeting)
			return nil
		case "help", "menu":
			b.menu = true
			b.say(textGreeting)
			return nil
		case "lost":
			return b.lost()
		case "status":
			return b.status()
		case "cancel":
			return b.cancel()
		}
		b.say(textUnknown)
		return nil
	}
	switch in.Button {
	case ButtonLost:
		return b.lost()
	case ButtonStatus:
		return b.status()
	case ButtonSupport:
		return b.askEmailUnlessInTicket(textTalkInTicket, textTalkNoTicket)
	case "":
	default:
		b.say(textUnknown)
		return nil
	}
	switch b.chat.State {
	case BotStateAwaitingEmail:
		return b.email(newID)
	case BotStateInTicket:
		return b.relay()
	}
	if in.FileID != "" {
		b.say(textAttachNoTicket)
		return nil
	}
	if codesComplaint(in.Text) {
		b.say(textTimeSync)
	}
	b.menu = true
	b.say(textGreeting)
	return nil
}

// ticket returns the chat's ticket while it is active; a finished one returns the chat to idle.
func (b *botTurn) ticket() (Ticket, bool, error) {
	if b.chat.State != BotStateInTicket || b.chat.TicketID == "" {
		return Ticket{}, false, nil
	}
	t, err := b.tx.Ticket(b.chat.TicketID)
	if errors.Is(err, ErrNotFound) {
		b.chat.State, b.chat.TicketID = BotStateIdle, ""
		return Ticket{}, false, nil
	}
	if err != nil {
		return Ticket{}, false, err
	}
	return t, t.State.Active(), nil
}

func (b *botTurn) lost() error { return b.askEmailUnlessInTicket(textAlreadyOpen, textAskEmail) }

// askEmailUnlessInTicket points a chat with an active ticket to it (inTicket, with the ticket id),
// and otherwise asks for the account's e-mail (ask).
func (b *botTurn) askEmailUnlessInTicket(inTicket, ask string) error {
	t, ok, err := b.ticket()
	if err != nil {
		return err
	}
	if ok {
		b.say(inTicket, t.ID)
		return nil
	}
	b.chat.State, b.chat.TicketID = BotStateAwaitingEmail, ""
	b.say(ask)
	return nil
}

func (b *botTurn) status() error {
	if b.chat.State != BotStateInTicket || b.chat.TicketID == "" {
		b.say(textNoTicket)
		return nil
	}
	t, err := b.tx.Ticket(b.chat.TicketID)
	if errors.Is(err, ErrNotFound) {
		b.chat.State, b.chat.TicketID = BotStateIdle, ""
		b.say(textNoTicket)
		return nil
	}
	if err != nil {
		return err
	}
	b.say(statusText(t, t.ChatID == b.chatID))
	return nil
}

// cancel withdraws the chat's request while it has not been carried out (Withdraw's rule).
func (b *botTurn) cancel() error {
	t, ok, err := b.ticket()
	if err != nil {
		return err
	}
	if !ok {
		b.say(textNoTicket)
		return nil
	}
	if t.ChatID != b.chatID {
		// A chat that joined another channel's ticket cannot withdraw it (it proves nothing): it
		// stops following it, and hears the words an unmatched request's withdrawal gets, so
		// that the answer does not tell whether the account exists.
		b.chat.State, b.chat.TicketID = BotStateIdle, ""
		b.say(textCancelled, t.ID)
		return nil
	}
	t, err = b.tx.LockTicket(t.ID)
	if err != nil {
		return err
	}
	if !t.State.withdrawable() {
		b.say(textCannotCancel, t.ID, strings.ReplaceAll(string(t.State), "_", " "))
		return nil
	}
	tl := ticketLog{b.al, t.ID}
	t.ClosedAt = b.now
	if err := setState(tl, &t, "withdrawn", TicketWithdrawn, "", b.now, map[string]any{"channel": ChannelTelegram}); err != nil {
		return err
	}
	t.Version++
	t.UpdatedAt = b.now
	if err := b.tx.UpdateTicket(t); err != nil {
		return err
	}
	b.chat.State, b.chat.TicketID = BotStateIdle, ""
	b.say(textCancelled, t.ID)
	return nil
}

// email opens or joins the ticket of the claimed address; the answer is the same either way.
func (b *botTurn) email(newID string) error {
	if b.in.FileID != "" {
		b.say(textAskEmail)
		return nil
	}
	claimed := strings.TrimSpace(b.in.Text)
	if _, _, isCmd := ParseTelegramCommand(claimed); isCmd || !looksLikeEmail(claimed) || validText("account", claimed, 254) != nil {
		if codesComplaint(claimed) {
			b.say(textTimeSync)
		}
		b.say(textBadEmail)
		return nil
	}
	req := OpenRequest{Channel: ChannelTelegram, Claimed: claimed, ChatID: b.chatID}
	out, err := b.s.openTicketTx(b.tx, b.al, b.actor, req, claimed, "", newID, b.now)
	if err != nil {
		return err
	}
	b.chat.State, b.chat.TicketID = BotStateInTicket, out.TicketID
	b.say(textOpened, out.TicketID)
	return nil
}

// relay adds what the user wrote (text and/or an attachment's reference) to the ticket thread.
func (b *botTurn) relay() error {
	t, ok, err := b.ticket()
	if err != nil {
		return err
	}
	if !ok {
		id := b.chat.TicketID
		b.chat.State, b.chat.TicketID = BotStateIdle, ""
		if id != "" {
			b.say(textClosedStart, id)
		} else {
			b.say(textNoTicket)
		}
		return nil
	}
	body := strings.TrimSpace(b.in.Text)
	if body == "" && b.in.FileID == "" {
		b.say(textUnknown)
		return nil
	}
	if body != "" {
		if body, err = validMessage(body); err != nil {
			b.say(textTooLong)
			return nil
		}
	}
	if b.in.FileID != "" && body == "" {
		body = "(attachment)"
	}
	tl := ticketLog{b.al, t.ID}
	m := TicketMessage{TicketID: t.ID, Direction: MessageInbound, AuthorType: b.actor.Type, AuthorID: b.actor.ID,
		Body: body, EvidenceRef: b.in.FileID, EvidenceSHA256: b.in.FileSHA256, CreatedAt: b.now}
	if m.EvidenceRef != "" && m.EvidenceSHA256 == "" {
		m.Body += "\n(the file could not be downloaded; its Telegram file id is kept)"
	}
	mid, err := b.tx.AddTicketMessage(m)
	if err != nil {
		return err
	}
	d := map[string]any{"message_id": mid, "direction": MessageInbound, "length": len([]rune(body)), "channel": ChannelTelegram}
	if m.EvidenceSHA256 != "" {
		d["evidence_sha256"] = m.EvidenceSHA256
	}
	if err := tl.event("ticket.message", "", d); err != nil {
		return err
	}
	if err := b.tx.TouchTicket(t.ID, t.ProgressAt, b.now); err != nil {
		return err
	}
	b.say(textRelayed)
	if codesComplaint(body) {
		b.say(textTimeSync)
	}
	return nil
}

// redeemLink links the chat to the account that created token. Unknown, expired and used
// tokens get one answer; a chat linked to another account is refused. Both are audited.
func (b *botTurn) redeemLink(token string) error {
	fail := func(why string) error {
		b.say(textLinkInvalid)
		return b.al.add("telegram.link_failed", "telegram_chat", b.chatID, map[string]any{"why": why})
	}
	if len(token) != 32 || strings.Trim(token, "0123456789abcdef") != "" {
		return fail("malformed")
	}
	hash := hashToken(purposeTelegramLink, token)
	lt, err := b.tx.TelegramLinkToken(hash)
	if errors.Is(err, ErrNotFound) {
		return fail("unknown")
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(lt.Hash), []byte(hash)) != 1 {
		return fail("unknown")
	}
	if !lt.UsedAt.IsZero() {
		return fail("used")
	}
	if !b.now.Before(lt.ExpiresAt) {
		return fail("expired")
	}
	l, err := b.tx.TelegramLinkByChat(b.chatID)
	switch {
	case err == nil && l.AccountID != lt.AccountID:
		b.say(textLinkedElsewhere)
		return b.al.add("telegram.link_refused", "account", lt.AccountID, map[string]any{"chat_id": b.chatID, "why": "chat_linked_elsewhere"})
	case err != nil && !errors.Is(err, ErrNotFound):
		return err
	}
	ok, err := b.tx.UseTelegramLinkToken(hash, b.now)
	if err != nil {
		return err
	}
	if !ok {
		return fail("used")
	}
	if err := b.tx.PutTelegramLink(TelegramLink{ChatID: b.chatID, AccountID: lt.AccountID, LinkedAt: b.now}); err != nil {
		return err
	}
	b.say(textLinked)
	return b.al.add("telegram.linked", "account", lt.AccountID, map[string]any{"chat_id": b.chatID, "via": "link_token"})
}

// CreateTelegramLinkToken issues a single-use token (128 bits, TelegramLinkTokenTTL) that links
// the Telegram chat which sends "/start <token>" to the account. The end-user pages call it from
// a logged-in session and show the token (as a t.me deep link) once; only its hash is stored.
func (s *Service) CreateTelegramLinkToken(ctx context.Context, actor Actor, accountID string) (token string, expiresAt time.Time, err error) {
	token, hash, err := newSecretToken(purposeTelegramLink)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	expiresAt = now.Add(TelegramLinkTokenTTL)
	err = s.update(ctx, func(tx Tx) (error, error) {
		if _, err := tx.Account(accountID); err != nil {
			return nil, err
		}
		if err := tx.PutTelegramLinkToken(TelegramLinkToken{Hash: hash, AccountID: accountID, CreatedAt: now, ExpiresAt: expiresAt}); err != nil {
			return nil, err
		}
		return nil, newAuditLog(tx, now, actor).add("telegram.link_token_created", "account", accountID,
			map[string]any{"expires_at": expiresAt.UTC().Format(time.RFC3339)})
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, expiresAt, nil
}

// UnlinkTelegram removes the account's Telegram link (nothing to do when there is none).
func (s *Service) UnlinkTelegram(ctx context.Context, actor Actor, accountID string) error {
	now := s.now()
	return s.update(ctx, func(tx Tx) (error, error) {
		l, err := tx.TelegramLinkByAccount(accountID)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if err := tx.DeleteTelegramLink(l.ChatID); err != nil {
			return nil, err
		}
		return nil, newAuditLog(tx, now, actor).add("telegram.unlinked", "account", accountID, map[string]any{"chat_id": l.ChatID})
	})
}

// TelegramLinkOf returns the account's Telegram link (ErrNotFound when none).
func (s *Service) TelegramLinkOf(ctx context.Context, accountID string) (TelegramLink, error) {
	var l TelegramLink
	err := s.store.View(ctx, func(tx ReadTx) (err error) {
		l, err = tx.TelegramLinkByAccount(accountID)
		return err
	})
	return l, err
}

// TelegramOffset returns the next update_id the poller asks getUpdates for: one past the
// highest update processed, persisted with the updates themselves.
func (s *Service) TelegramOffset(ctx context.Context) (int64, error) {
	var off int64
	err := s.store.View(ctx, func(tx ReadTx) (err error) {
		off, err = tx.TelegramOffset()
		return err
	})
	return off, err
}
