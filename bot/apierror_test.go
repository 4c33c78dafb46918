package bot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/recovery"
)

// TestOnAPIError: each failed Bot API call is reported once with its method and Telegram's code
// (0 when no answer came); a call that succeeds is not reported.
func TestOnAPIError(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var heard []string
	b := e.newBot(func(o *bot.Options) {
		o.ChatRate = 1000 // no per-chat pacing between the calls below
		o.OnAPIError = func(method string, code int) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, fmt.Sprintf("%s %d", method, code))
		}
	})
	e.tg.SendText(4242, "u", "hello") // the fake server answers only chats that wrote first
	send := func() error {
		return b.SendNotice(context.Background(), recovery.Notice{Channel: recovery.NoticeTelegram, To: "4242", Kind: "status", Body: "hello"})
	}
	if err := send(); err != nil {
		t.Fatalf("a good send: %v", err)
	}
	e.tg.FailNext("sendMessage", 1, 500, 0)
	if err := send(); err == nil {
		t.Fatal("a 500 was not an error")
	}
	e.tg.FailNext("sendMessage", 1, 403, 0)
	if err := send(); err == nil {
		t.Fatal("a 403 was not an error")
	}
	e.tg.SetDown(true)
	var de *recovery.DeliveryError
	if err := send(); !errors.As(err, &de) {
		t.Fatalf("a dropped connection: %v", err)
	}
	e.tg.SetDown(false)
	e.tg.FailNext("sendMessage", 1, 429, 1)
	if err := send(); !errors.As(err, &de) || de.RetryAfter == 0 {
		t.Fatalf("a 429: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"sendMessage 500", "sendMessage 403", "sendMessage 0", "sendMessage 429"}
	if !slices.Equal(heard, want) {
		t.Errorf("heard %q, want %q", heard, want)
	}
}
