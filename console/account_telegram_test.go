package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

var startLink = regexp.MustCompile(`https://t\.me/rd_test_bot\?start=([0-9a-f]{32})`)

// TestAccountTelegramLinkAndUnlink: the security page makes a single-use t.me deep link; once
// the bot has redeemed it the page offers Unlink instead, and Unlink removes the link.
func TestAccountTelegramLinkAndUnlink(t *testing.T) {
	e := newEnv(t, envOptions{botName: "rd_test_bot"})
	e.user(t)
	b := e.browser(t)
	b.signIn(t)
	b.enable(t)
	e.clock.Add(30 * time.Second) // a new step, so later codes are not replays
	p := b.get(t, "/account/security").must(t, http.StatusOK, `id="telegram-start"`)
	if strings.Contains(p.body, `id="telegram-unlink"`) {
		t.Fatal("an unlinked account is offered Unlink")
	}
	p = b.post(t, "/account/telegram/link", nil).must(t, http.StatusOK, `id="telegram-link"`)
	m := startLink.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no t.me start link on the page")
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Fatal("the page with a link token may be cached")
	}
	// The bot redeems the token for chat 777.
	if _, err := e.svc.TelegramUpdate(bgCtx, recovery.TelegramIn{UpdateID: 1, ChatID: 777, ChatType: recovery.ChatPrivate, UserID: 777, Text: "/start " + m[1]}); err != nil {
		t.Fatal(err)
	}
	if l, err := e.svc.TelegramLinkOf(bgCtx, userID); err != nil || l.ChatID != "777" {
		t.Fatalf("link after redeeming: %+v %v", l, err)
	}
	p = b.get(t, "/account/security").must(t, http.StatusOK, `id="telegram-unlink"`)
	if strings.Contains(p.body, "777") {
		t.Fatal("the page shows the chat id")
	}
	b.post(t, "/account/telegram/unlink", nil)
	if _, err := e.svc.TelegramLinkOf(bgCtx, userID); err == nil {
		t.Fatal("still linked after Unlink")
	}
	b.get(t, "/account/security").must(t, http.StatusOK, `id="telegram-start"`)
}
