package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/recoverydesk/recoverydesk/bot"
)

// startBot starts the Telegram bot when RECOVERYDESK_TELEGRAM_TOKEN is set: long polling (on the
// one replica holding the poll lock, with PostgreSQL), or, with
// RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET, the handler serve mounts at /telegram/webhook (on every
// replica). Its dispatcher delivers the outbox's Telegram notices either way. name is the bot's
// username, for the end-user pages' t.me links ("" without a bot). stop cancels the
// bot and waits for it. A Bot API that cannot be reached at start fails the start: a wrong
// token or endpoint should be seen at once.
func (a *app) startBot(ctx context.Context, o *opened, baseURL string, onAPIError func(method string, code int)) (webhook http.Handler, name string, stop func(), err error) {
	cfg := o.cfg
	if cfg.TelegramToken == "" {
		return nil, "", func() {}, nil
	}
	b, err := bot.New(bot.Options{
		Token:         cfg.TelegramToken,
		Endpoint:      cfg.TelegramAPI,
		WebhookSecret: cfg.TelegramWebhookSecret,
		BaseURL:       baseURL,
		Service:       o.svc,
		Logger:        a.log.With("component", "telegram"),
		Now:           a.now, // cmd owns the clock; the bot paces sending with it
		HTTPClient:    &http.Client{Timeout: bot.DefaultPollTimeout + 30*time.Second},
		PollLock: func(ctx context.Context) (func(), func(context.Context) bool, bool, error) {
			return o.store.TryLock(ctx, bot.PollLockKey)
		},
		OnAPIError: onAPIError, // counted by /metrics
	})
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", cfg.Source("RECOVERYDESK_TELEGRAM_TOKEN"), err)
	}
	mode := "polling"
	if cfg.TelegramWebhookSecret != "" {
		mode = "webhook"
		webhook = b.WebhookHandler()
	}
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Run(bctx); err != nil {
			a.log.Error("telegram bot stopped", "err", err)
		}
	})
	a.log.Info("telegram bot started", "mode", mode, "bot", b.UserName())
	return webhook, b.UserName(), func() {
		cancel()
		wg.Wait()
	}, nil
}
