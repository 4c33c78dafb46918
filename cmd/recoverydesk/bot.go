package main

import (
	"context"
	"net/http"
)

// startBot starts the Telegram bot when RECOVERYDESK_TELEGRAM_TOKEN is set: long polling, or,
// with RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET, the handler serve mounts at /telegram/webhook.
// stop waits for the bot to finish.
func (a *app) startBot(ctx context.Context, o *opened, baseURL string) (webhook http.Handler, stop func(), err error) {
	return nil, func() {}, nil
}
