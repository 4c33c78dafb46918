package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf16"
)

// Telegram updates as Telegram's webhook delivers them: JSON POSTed to /telegram/webhook with
// the secret in X-Telegram-Bot-Api-Secret-Token. update_ids are unique across runs (they start at
// the run's start time in microseconds, and Telegram's only promise is that they increase), so a
// server never takes an update of this run for a redelivery of an earlier one.

// botClient sends the updates of every chat.
type botClient struct {
	l          *loader
	secret     string // the webhook secret: a credential, never printed
	target     string
	nextUpdate atomic.Int64
	nextQuery  atomic.Int64
}

// chat is one simulated Telegram user in a private chat. It is handed between workers through a
// queue, so that its updates are sent one at a time and in order, as one person types.
type chat struct {
	id     int64
	step   int
	msgID  int
	email  string // the address it claims: a load account's, or an unknown one
	botMsg int    // the bot's message whose button the user presses (a plausible id)
}

// conversation is what a chat sends, in order, then again from the start. "" in text with a
// button is a press of that inline button of the bot's greeting.
var conversation = []struct{ text, button string }{
	{text: "/start"},
	{text: "I lost my phone"},
	{button: "lost"},
	{text: "\x00email"}, // the chat's e-mail address
	{text: "My codes don't work since I got a new phone. I still have my SIM card."},
	{text: "/status"},
	{text: "/cancel"},
}

func newBotClient(l *loader, secret string) *botClient {
	b := &botClient{l: l, secret: secret, target: l.cfg.base.String() + "/telegram/webhook"}
	b.nextUpdate.Store(time.Now().UnixMicro())
	return b
}

// makeChats creates n chats with random ids (so that runs do not continue each other's
// conversations); even ones claim the e-mail address of a load account, odd ones an address the
// desk does not know. The queue holds them all.
func (b *botClient) makeChats(n int, accounts []*account) chan *chat {
	q := make(chan *chat, n)
	base := 5_000_000_000 + rand.Int64N(1_000_000_000)
	for i := range n {
		c := &chat{id: base + int64(i), botMsg: 1 + rand.IntN(1000)}
		if i%2 == 0 && len(accounts) > 0 {
			c.email = accounts[(i/2)%len(accounts)].id + "@load.example"
		} else {
			c.email = fmt.Sprintf("lost-%d@unknown.example", c.id)
		}
		q <- c
	}
	return q
}

// update builds the chat's next update and advances it.
func (b *botClient) update(c *chat, now time.Time) []byte {
	step := conversation[c.step%len(conversation)]
	c.step++
	id := b.nextUpdate.Add(1)
	user := map[string]any{"id": c.id, "is_bot": false, "first_name": "Load", "username": fmt.Sprintf("load_%d", c.id), "language_code": "en"}
	chatJSON := map[string]any{"id": c.id, "type": "private", "first_name": "Load", "username": fmt.Sprintf("load_%d", c.id)}
	var u map[string]any
	if step.button != "" {
		bot := map[string]any{"id": fakeBotID, "is_bot": true, "first_name": "rdload", "username": fakeBotName}
		u = map[string]any{"update_id": id, "callback_query": map[string]any{
			"id":            fmt.Sprintf("%d", b.nextQuery.Add(1)),
			"from":          user,
			"chat_instance": fmt.Sprintf("ci%d", c.id),
			"data":          step.button,
			"message": map[string]any{"message_id": c.botMsg, "from": bot, "chat": chatJSON, "date": now.Unix() - 5,
				"text": "Hello! This is the support desk for two-factor authentication."},
		}}
	} else {
		text := step.text
		if text == "\x00email" {
			text = c.email
		}
		c.msgID++
		m := map[string]any{"message_id": c.msgID, "from": user, "chat": chatJSON, "date": now.Unix(), "text": text}
		if text[0] == '/' {
			// Telegram marks a leading command with a bot_command entity (length in UTF-16 units).
			m["entities"] = []map[string]any{{"type": "bot_command", "offset": 0, "length": len(utf16.Encode([]rune(text)))}}
		}
		u = map[string]any{"update_id": id, "message": m}
	}
	data, _ := json.Marshal(u)
	return data
}

// send posts the next update of a free chat and checks the answer (200); false when the phase
// ended first.
func (b *botClient) send(ctx context.Context, mw *mixWorker, m *mixer) bool {
	var c *chat
	select {
	case c = <-m.chats:
	case <-m.stop:
		return false
	}
	defer func() { m.chats <- c }()
	if !time.Now().Before(m.deadline) || ctx.Err() != nil {
		return false
	}
	body := b.update(c, time.Now())
	t := mw.tally(kindBot)
	t0 := time.Now()
	status, err := b.post(ctx, body)
	t.lat = append(t.lat, time.Since(t0))
	t.requests++
	switch {
	case err != nil:
		if ctx.Err() == nil {
			b.l.errs.add("bot update: transport error", err.Error())
		}
	case status != http.StatusOK:
		b.l.errs.add(fmt.Sprintf("bot update answered HTTP %d (want 200)", status),
			fmt.Sprintf("conversation step %d", (c.step-1)%len(conversation)))
	default:
		t.answered++
	}
	return true
}

func (b *botClient) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", b.secret)
	resp, err := b.l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
