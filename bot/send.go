package bot

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// chatMargin widens the per-chat interval a little, so that network jitter between our send
// and Telegram's arrival never makes two messages look closer than the limit.
const chatMargin = 1.02

// limiter paces sending: a token bucket for all chats (rate a second, burst rate/5), one message
// per 1/chatRate per chat, and a global pause after Telegram's 429 retry_after.
type limiter struct {
	now      func() time.Time
	rate     float64
	burst    float64 // bucket size
	interval time.Duration

	mu     sync.Mutex
	tokens float64
	filled time.Time
	paused time.Time // no sending before
	last   map[int64]time.Time
}

func newLimiter(now func() time.Time, rate, chatRate float64) *limiter {
	// The bucket holds a fifth of a second's tokens: a full bucket plus a second's refill stays
	// within 1.2 × rate in any one second (30 at the default 25/s, Telegram's own limit).
	burst := max(1, rate/5)
	return &limiter{now: now, rate: rate, burst: burst, tokens: burst, filled: now(),
		interval: time.Duration(float64(time.Second) / chatRate * chatMargin), last: map[int64]time.Time{}}
}

// wait blocks until chat may be sent to, and takes the send.
func (l *limiter) wait(ctx context.Context, chat int64) error {
	for {
		d := l.take(chat)
		if d <= 0 {
			return nil
		}
		sleep(ctx, d)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// take takes a send for chat and returns 0, or returns how long to wait before asking again.
func (l *limiter) take(chat int64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.paused) {
		return l.paused.Sub(now)
	}
	l.tokens = min(l.burst, l.tokens+now.Sub(l.filled).Seconds()*l.rate)
	l.filled = now
	var wait time.Duration
	if l.tokens < 1 {
		wait = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	}
	if last, ok := l.last[chat]; ok {
		wait = max(wait, last.Add(l.interval).Sub(now))
	}
	if wait > 0 {
		return wait
	}
	l.tokens--
	l.last[chat] = now
	if len(l.last) > 4096 {
		for c, t := range l.last {
			if now.Sub(t) > l.interval {
				delete(l.last, c)
			}
		}
	}
	return 0
}

// pause stops all sending for d (Telegram's retry_after applies to the bot, not one message).
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(d); until.After(l.paused) {
		l.paused = until
	}
}

// Dispatch delivers the outbox's Telegram notices until ctx ends: at once after a processed
// update (Kick) or a batch that sent something, else every Options.Wake. Nothing is lost while
// Telegram is unreachable: a notice stays queued in the outbox and is retried.
func (b *Bot) Dispatch(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
		sent, err := b.svc.DispatchDue(ctx, recovery.NoticeTelegram, 0, b.SendNotice)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.log.Error("telegram dispatch failed", "err", err)
		}
		next := b.wake
		if sent > 0 && err == nil {
			next = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// menuKeyboard is recovery.BotMenu as inline buttons, one a row.
func menuKeyboard() tgbotapi.InlineKeyboardMarkup {
	var rows [][]tgbotapi.InlineKeyboardButton
	for _, m := range recovery.BotMenu {
		rows = append(rows, tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData(m.Text, m.Data)))
	}
	return tgbotapi.NewInlineKeyboardMarkup(rows...)
}

// SendNotice is the recovery.Sender of Telegram notices: paced by the token buckets, sent as
// plain text (no parse mode: the text is never interpreted as markup), the greeting with its
// buttons. Telegram's answers map to the outbox's outcomes: 429 → a deferral of retry_after,
// 400 and 403 (chat not found, bot blocked) → permanent, anything else → retry with backoff.
// Errors never carry the token.
func (b *Bot) SendNotice(ctx context.Context, n recovery.Notice) error {
	chat, err := chatOf(n)
	if err != nil {
		return &recovery.DeliveryError{Err: errors.New("bad chat id"), Permanent: true}
	}
	if err := b.limit.wait(ctx, chat); err != nil {
		return err
	}
	msg := tgbotapi.NewMessage(chat, n.Body)
	msg.DisableWebPagePreview = true
	if n.Kind == recovery.NoticeKindBotMenu {
		msg.ReplyMarkup = menuKeyboard()
	}
	_, err = b.api.Send(msg)
	if err == nil {
		return nil
	}
	b.apiError("sendMessage", err)
	var tgErr *tgbotapi.Error
	if errors.As(err, &tgErr) {
		e := errors.New("telegram: " + http.StatusText(tgErr.Code) + ": " + tgErr.Message)
		switch {
		case tgErr.RetryAfter > 0:
			ra := time.Duration(tgErr.RetryAfter) * time.Second
			b.limit.pause(ra)
			return &recovery.DeliveryError{Err: e, RetryAfter: ra}
		case tgErr.Code == http.StatusBadRequest || tgErr.Code == http.StatusForbidden:
			return &recovery.DeliveryError{Err: e, Permanent: true}
		}
		return &recovery.DeliveryError{Err: e}
	}
	return &recovery.DeliveryError{Err: b.scrub(err)}
}
