package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/bot/bottest"
)

const botToken = "555000:AAserveTOKENneverLOGGED"

// TestServeBotPolling: with a token, serve polls the Bot API and answers; the token stays out
// of the output.
func TestServeBotPolling(t *testing.T) {
	tg := bottest.New(t, botToken)
	env := with(testEnv(t), "RECOVERYDESK_TELEGRAM_TOKEN", botToken, "RECOVERYDESK_TELEGRAM_API", tg.Endpoint())
	srv := startServer(t, env)
	tg.SendText(77, "u", "/start")
	if m := tg.WaitSent(t, 77, 1, 15*time.Second)[0]; len(m.Buttons) != 3 {
		t.Fatalf("greeting %+v", m)
	}
	srv.stop(t)
	log := srv.stderr.String()
	if !strings.Contains(log, `"msg":"telegram bot started","mode":"polling"`) || strings.Contains(log, "telegram bot disabled") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log+srv.stdout.String(), botToken) {
		t.Error("the bot token appears in the output")
	}
}

// TestServeBotWebhook: with a webhook secret, serve registers BASE_URL/telegram/webhook with the
// secret and processes what Telegram posts there.
func TestServeBotWebhook(t *testing.T) {
	tg := bottest.New(t, botToken)
	const secret = "serve_webhook-SECRET"
	env := with(testEnv(t), "RECOVERYDESK_TELEGRAM_TOKEN", botToken, "RECOVERYDESK_TELEGRAM_API", tg.Endpoint(),
		"RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET", secret)
	srv := startServer(t, env)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if url, sec := tg.Webhook(); url == srv.base+"/telegram/webhook" && sec == secret {
			break
		}
		if time.Now().After(deadline) {
			url, _ := tg.Webhook()
			t.Fatalf("webhook %q not registered at %s", url, srv.base)
		}
		time.Sleep(20 * time.Millisecond)
	}
	up := tg.SendText(78, "u", "/start")
	resp, err := tg.DeliverWebhook(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	tg.WaitSent(t, 78, 1, 15*time.Second)
	srv.stop(t)
	if strings.Contains(srv.stderr.String()+srv.stdout.String(), botToken) || strings.Contains(srv.stderr.String(), secret) {
		t.Error("a secret appears in the output")
	}
}
