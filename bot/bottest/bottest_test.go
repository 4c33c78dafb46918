package bottest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/recoverydesk/recoverydesk/bot/bottest"
)

const token = "123456:AAtestTOKENforBOTTEST"

func newBot(t *testing.T, s *bottest.Server) *tgbotapi.BotAPI {
	t.Helper()
	bot, err := tgbotapi.NewBotAPIWithClient(token, s.Endpoint(), &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewBotAPIWithClient: %v", err)
	}
	return bot
}

// apiError unwraps the library's error type, failing the test when err is something else.
func apiError(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var tgErr *tgbotapi.Error
	if !errors.As(err, &tgErr) {
		t.Fatalf("want *tgbotapi.Error, got %T %v", err, err)
	}
	return tgErr
}

func getUpdates(t *testing.T, bot *tgbotapi.BotAPI, cfg tgbotapi.UpdateConfig) []tgbotapi.Update {
	t.Helper()
	ups, err := bot.GetUpdates(cfg)
	if err != nil {
		t.Fatalf("GetUpdates(%+v): %v", cfg, err)
	}
	return ups
}

func ids(ups []tgbotapi.Update) []int {
	out := make([]int, len(ups))
	for i, u := range ups {
		out[i] = u.UpdateID
	}
	return out
}

func TestGetMeAndToken(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)
	if bot.Self.UserName != "recoverydesk_test_bot" || !bot.Self.IsBot {
		t.Fatalf("Self = %+v", bot.Self)
	}

	_, err := tgbotapi.NewBotAPIWithClient("123456:wrong", s.Endpoint(), &http.Client{})
	e := apiError(t, err)
	if e.Code != http.StatusUnauthorized || e.Message != "Unauthorized" {
		t.Fatalf("wrong token: %+v", e)
	}
	if got := s.Calls("getMe"); got != 2 {
		t.Fatalf("Calls(getMe) = %d, want 2", got)
	}

	// The library puts the token in the URL, so a transport error carries it: the bot must scrub
	// such errors before they reach a log (security.md rule 2). This pins that behaviour down.
	s.SetDown(true)
	_, err = bot.GetMe()
	if err == nil || !strings.Contains(err.Error(), token) {
		t.Fatalf("down: want a transport error naming the URL with the token, got %v", err)
	}
	var tgErr *tgbotapi.Error
	if errors.As(err, &tgErr) {
		t.Fatalf("down: want a transport error, got API error %+v", tgErr)
	}
	s.SetDown(false)
	if _, err := bot.GetMe(); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := s.Calls("getme"); got != 4 {
		t.Fatalf("Calls(getme) = %d, want 4 (the dropped call counts)", got)
	}

	_, err = bot.MakeRequest("sendSticker", nil)
	if e := apiError(t, err); e.Code != http.StatusNotFound {
		t.Fatalf("unknown method: %+v", e)
	}
}

func TestPollingDeliversAndConfirms(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)

	u1 := s.SendText(42, "alice", "/start tok123")
	u2 := s.PressButton(42, "status")
	u3, photoID := s.SendPhoto(42, pngBytes(t, 3, 2))
	u4 := s.SendGroupText(-1001, "hello group")

	ups := getUpdates(t, bot, tgbotapi.UpdateConfig{})
	if want := []int{u1, u2, u3, u4}; !slices.Equal(ids(ups), want) {
		t.Fatalf("update ids %v, want %v", ids(ups), want)
	}
	m := ups[0].Message
	if m == nil || !m.IsCommand() || m.Command() != "start" || m.CommandArguments() != "tok123" ||
		m.From.UserName != "alice" || m.Chat.ID != 42 || !m.Chat.IsPrivate() {
		t.Fatalf("text update: %+v", m)
	}
	if cq := ups[1].CallbackQuery; cq == nil || cq.Data != "status" || cq.From.ID != 42 || cq.Message != nil {
		t.Fatalf("callback update: %+v", ups[1].CallbackQuery)
	}
	if p := ups[2].Message.Photo; len(p) != 1 || p[0].FileID != photoID || p[0].Width != 3 || p[0].Height != 2 {
		t.Fatalf("photo update: %+v", p)
	}
	if g := ups[3].Message; !g.Chat.IsGroup() || g.From.ID == -1001 || g.Text != "hello group" {
		t.Fatalf("group update: %+v chat %+v", g, g.Chat)
	}

	// Without an offset nothing is confirmed: the same updates come again.
	if again := getUpdates(t, bot, tgbotapi.UpdateConfig{Limit: 2}); !slices.Equal(ids(again), []int{u1, u2}) {
		t.Fatalf("unconfirmed with limit 2: %v", ids(again))
	}
	// offset = last + 1 confirms all of them, for good.
	if got := getUpdates(t, bot, tgbotapi.UpdateConfig{Offset: u4 + 1}); len(got) != 0 {
		t.Fatalf("after confirming: %v", ids(got))
	}
	if got := getUpdates(t, bot, tgbotapi.UpdateConfig{}); len(got) != 0 {
		t.Fatalf("confirmed updates came back: %v", ids(got))
	}

	// A redelivered update reaches the bot once although its id is below the offset (a duplicate).
	s.Redeliver(u1)
	dup := getUpdates(t, bot, tgbotapi.UpdateConfig{Offset: u4 + 1})
	if !slices.Equal(ids(dup), []int{u1}) || dup[0].Message.Text != "/start tok123" {
		t.Fatalf("redelivered: %v", ids(dup))
	}
	if got := getUpdates(t, bot, tgbotapi.UpdateConfig{Offset: u4 + 1}); len(got) != 0 {
		t.Fatalf("redelivered update not confirmed: %v", ids(got))
	}

	// Out of order: raw updates come in the order pushed, and their chat becomes known.
	s.PushRaw(json.RawMessage(`{"update_id":5001,"message":{"message_id":9,"date":1,"chat":{"id":77,"type":"private"},"from":{"id":77,"is_bot":false,"first_name":"x"},"text":"second"}}`))
	s.PushRaw(json.RawMessage(`{"update_id":5000,"message":{"message_id":8,"date":1,"chat":{"id":77,"type":"private"},"from":{"id":77,"is_bot":false,"first_name":"x"},"text":"first"}}`))
	if got := getUpdates(t, bot, tgbotapi.UpdateConfig{Offset: u4 + 1}); !slices.Equal(ids(got), []int{5001, 5000}) {
		t.Fatalf("pushed: %v", ids(got))
	}
	if _, err := bot.Send(tgbotapi.NewMessage(77, "hi")); err != nil {
		t.Fatalf("reply to pushed chat: %v", err)
	}
	if next := s.SendText(77, "x", "later"); next != 5002 {
		t.Fatalf("update id after pushes = %d, want 5002", next)
	}
}

func TestLongPoll(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)

	start := time.Now()
	if got := getUpdates(t, bot, tgbotapi.UpdateConfig{Timeout: 1}); len(got) != 0 {
		t.Fatalf("empty long poll returned %v", ids(got))
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("empty long poll with timeout 1 s returned after %v", d)
	}

	type result struct {
		ups []tgbotapi.Update
		err error
	}
	done := make(chan result, 1)
	before := s.Calls("getUpdates")
	go func() {
		ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		done <- result{ups, err}
	}()
	waitFor(t, func() bool { return s.Calls("getUpdates") > before })
	start = time.Now()
	id := s.SendText(42, "alice", "hello")
	r := <-done
	if r.err != nil || !slices.Equal(ids(r.ups), []int{id}) {
		t.Fatalf("long poll: %v %v", ids(r.ups), r.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("long poll woke after %v", d)
	}

	// Two pollers (two bot instances): the newer getUpdates terminates the older one with 409, as
	// Telegram does, and gets the update.
	results := make(chan result, 2)
	for range 2 {
		go func() {
			ups, err := bot.GetUpdates(tgbotapi.UpdateConfig{Offset: id + 1, Timeout: 30})
			results <- result{ups, err}
		}()
	}
	r = <-results // the older poller ends as soon as the newer one arrives
	if e := apiError(t, r.err); e.Code != http.StatusConflict || !strings.Contains(e.Message, "terminated by other getUpdates") {
		t.Fatalf("terminated poller: %+v", e)
	}
	next := s.SendText(42, "alice", "again")
	r = <-results
	if r.err != nil || !slices.Equal(ids(r.ups), []int{next}) {
		t.Fatalf("remaining poller: %v %v", ids(r.ups), r.err)
	}
}

func TestGetUpdatesChanSeesEverything(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)
	ch := bot.GetUpdatesChan(tgbotapi.UpdateConfig{Timeout: 1})
	defer func() {
		// The library's loop ends after its current poll; draining waits for that, so that it does not
		// poll the closed server (and log the URL with the token).
		bot.StopReceivingUpdates()
		for range ch {
		}
	}()
	var want []int
	for i := range 5 {
		want = append(want, s.SendText(int64(100+i), "u", fmt.Sprint("m", i)))
	}
	var got []int
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case u := <-ch:
			got = append(got, u.UpdateID)
		case <-timeout:
			t.Fatalf("got %v of %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSendMessageRecordsButtons(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)
	s.SendText(42, "alice", "/status")

	msg := tgbotapi.NewMessage(42, "Was this you?")
	msg.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(
		tgbotapi.NewInlineKeyboardRow(
			tgbotapi.NewInlineKeyboardButtonData("Yes", "confirm:7"),
			tgbotapi.NewInlineKeyboardButtonData("No", "veto:7"),
		),
		tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonURL("Help", "https://example.com/help")),
	)
	sent, err := bot.Send(msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.Chat.ID != 42 || sent.Text != "Was this you?" || sent.From.UserName != bot.Self.UserName {
		t.Fatalf("result: %+v", sent)
	}
	got := s.SentTo(42)
	wantButtons := [][]bottest.Button{
		{{Text: "Yes", CallbackData: "confirm:7"}, {Text: "No", CallbackData: "veto:7"}},
		{{Text: "Help", URL: "https://example.com/help"}},
	}
	if len(got) != 1 || got[0].Method != "sendMessage" || got[0].MessageID != sent.MessageID ||
		!equalButtons(got[0].Buttons, wantButtons) || !got[0].HasButton("veto:7") || got[0].HasButton("veto:8") {
		t.Fatalf("recorded: %+v", got)
	}

	// The user presses a button: the callback carries the message, the answer and the edit are recorded.
	s.PressButton(42, "veto:7")
	ups := getUpdates(t, bot, tgbotapi.UpdateConfig{})
	cq := ups[len(ups)-1].CallbackQuery
	if cq == nil || cq.Message == nil || cq.Message.MessageID != sent.MessageID || cq.Data != "veto:7" {
		t.Fatalf("callback: %+v", cq)
	}
	if _, err := bot.Request(tgbotapi.NewCallback(cq.ID, "Frozen")); err != nil {
		t.Fatalf("answerCallbackQuery: %v", err)
	}
	if _, err := bot.Send(tgbotapi.NewEditMessageText(42, sent.MessageID, "Request frozen.")); err != nil {
		t.Fatalf("edit: %v", err)
	}
	got = s.WaitSent(t, 42, 3, time.Second)
	if got[1].Method != "answerCallbackQuery" || got[1].Text != "Frozen" || got[1].CallbackQueryID != cq.ID ||
		got[2].Method != "editMessageText" || got[2].Text != "Request frozen." || got[2].MessageID != sent.MessageID {
		t.Fatalf("recorded: %+v", got)
	}
	if n := len(s.CallTimes("answerCallbackQuery", 42)); n != 1 {
		t.Fatalf("CallTimes(answerCallbackQuery, 42) = %d", n)
	}

	refusals := []struct {
		name string
		c    tgbotapi.Chattable
		want string
	}{
		{"unknown chat", tgbotapi.NewMessage(999, "hi"), "Bad Request: chat not found"},
		{"empty text", tgbotapi.NewMessage(42, ""), "Bad Request: message text is empty"},
		{"unescaped user input", htmlMessage(42, "<b>Ticket</b> for <script>"), `Bad Request: can't parse entities: Unsupported start tag "script" at byte offset 18`},
		{"unclosed tag", htmlMessage(42, "<b>Ticket"), `Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{"too long", tgbotapi.NewMessage(42, strings.Repeat("é", 4097)), "Bad Request: message is too long"},
		{"edit unchanged", tgbotapi.NewEditMessageText(42, sent.MessageID, "Request frozen."), "Bad Request: message is not modified"},
		{"edit unknown", tgbotapi.NewEditMessageText(42, 9999, "x"), "Bad Request: message to edit not found"},
		{"answer unknown", tgbotapi.NewCallback("nope", ""), "Bad Request: query is too old"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bot.Request(tc.c)
			if e := apiError(t, err); e.Code != http.StatusBadRequest || !strings.HasPrefix(e.Message, tc.want) {
				t.Fatalf("got %d %q, want 400 %q", e.Code, e.Message, tc.want)
			}
		})
	}
	if n := len(s.Sent()); n != 3 {
		t.Fatalf("refused calls were recorded as sent: %d", n)
	}
	if _, err := bot.Send(htmlMessage(42, "<b>Ticket</b> for &lt;script&gt; &amp; &#128274;")); err != nil {
		t.Fatalf("escaped HTML refused: %v", err)
	}
}

func TestFaults(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)
	s.SendText(42, "alice", "hi")

	s.FailNext("sendMessage", 1, http.StatusTooManyRequests, 7)
	s.FailNext("SENDMESSAGE", 1, http.StatusInternalServerError, 0)
	_, err := bot.Send(tgbotapi.NewMessage(42, "one"))
	if e := apiError(t, err); e.Code != 429 || e.RetryAfter != 7 || e.Message != "Too Many Requests: retry after 7" {
		t.Fatalf("first: %+v", e)
	}
	_, err = bot.Send(tgbotapi.NewMessage(42, "one"))
	if e := apiError(t, err); e.Code != 500 || e.RetryAfter != 0 {
		t.Fatalf("second: %+v", e)
	}
	if _, err := bot.Send(tgbotapi.NewMessage(42, "one")); err != nil {
		t.Fatalf("third: %v", err)
	}
	if got := s.Calls("sendMessage"); got != 3 {
		t.Fatalf("Calls = %d, want 3", got)
	}
	if times := s.CallTimes("sendMessage", 42); len(times) != 3 || times[2].Before(times[0]) {
		t.Fatalf("CallTimes = %v", times)
	}
	if got := s.SentTo(42); len(got) != 1 || got[0].Text != "one" {
		t.Fatalf("only the accepted call is sent: %+v", got)
	}
	// A fault for one method leaves the others alone.
	s.FailNext("getFile", 1, 500, 0)
	if _, err := bot.GetMe(); err != nil {
		t.Fatalf("getMe during getFile fault: %v", err)
	}

	s.SetDown(true)
	if _, err := bot.Send(tgbotapi.NewMessage(42, "while down")); err == nil {
		t.Fatal("send while down succeeded")
	}
	s.SetDown(false)
	if got := s.SentTo(42); len(got) != 1 {
		t.Fatalf("a message sent while down was recorded: %+v", got)
	}
	if got := s.Calls("sendMessage"); got != 4 {
		t.Fatalf("Calls while down not counted: %d", got)
	}

	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return clock })
	if _, err := bot.Send(tgbotapi.NewMessage(42, "stamped")); err != nil {
		t.Fatal(err)
	}
	if times := s.CallTimes("sendMessage", 42); !times[len(times)-1].Equal(clock) {
		t.Fatalf("SetClock not used: %v", times[len(times)-1])
	}
}

func TestFiles(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)
	content := []byte("%PDF-1.4 passport scan")
	_, docID := s.SendDocument(42, "passport.pdf", content)

	ups := getUpdates(t, bot, tgbotapi.UpdateConfig{})
	doc := ups[0].Message.Document
	if doc == nil || doc.FileID != docID || doc.FileName != "passport.pdf" || doc.MimeType != "application/pdf" || doc.FileSize != len(content) {
		t.Fatalf("document: %+v", doc)
	}
	f, err := bot.GetFile(tgbotapi.FileConfig{FileID: docID})
	if err != nil {
		t.Fatalf("GetFile: %v", err)
	}
	// File.Link ignores the configured endpoint; the bot must build the URL from its own endpoint.
	if !strings.HasPrefix(f.Link(token), "https://api.telegram.org/file/bot") {
		t.Fatalf("Link = %q", f.Link(token))
	}
	got := fetch(t, fmt.Sprintf(s.FileEndpoint(), token, f.FilePath), http.StatusOK)
	if !bytes.Equal(got, content) {
		t.Fatalf("downloaded %q", got)
	}
	fetch(t, fmt.Sprintf(s.FileEndpoint(), "123456:wrong", f.FilePath), http.StatusUnauthorized)
	fetch(t, fmt.Sprintf(s.FileEndpoint(), token, "documents/nope.pdf"), http.StatusNotFound)

	_, err = bot.GetFile(tgbotapi.FileConfig{FileID: "nope"})
	if e := apiError(t, err); e.Code != 400 || e.Message != "Bad Request: invalid file_id" {
		t.Fatalf("unknown file: %+v", e)
	}
}

func TestWebhook(t *testing.T) {
	s := bottest.New(t, token)
	bot := newBot(t, s)

	var (
		mu      sync.Mutex
		headers []string
		bodies  []tgbotapi.Update
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := bot.HandleUpdate(r)
		if err != nil {
			http.Error(w, "bad update", http.StatusBadRequest)
			return
		}
		mu.Lock()
		headers = append(headers, r.Header.Get("X-Telegram-Bot-Api-Secret-Token"))
		bodies = append(bodies, *u)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	// v5.5.1's WebhookConfig has no secret_token: a bot passes it through MakeRequest.
	const secret = "s3cr3t_-TOKEN"
	url := hook.URL + "/telegram/webhook"
	if _, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": url, "secret_token": secret}); err != nil {
		t.Fatalf("setWebhook: %v", err)
	}
	if gotURL, gotSecret := s.Webhook(); gotURL != url || gotSecret != secret {
		t.Fatalf("Webhook() = %q, %q", gotURL, gotSecret)
	}
	_, err := bot.MakeRequest("setWebhook", tgbotapi.Params{"url": url, "secret_token": "has space"})
	if e := apiError(t, err); e.Code != 400 {
		t.Fatalf("bad secret: %+v", e)
	}

	_, err = bot.GetUpdates(tgbotapi.UpdateConfig{})
	if e := apiError(t, err); e.Code != http.StatusConflict {
		t.Fatalf("getUpdates with webhook: %+v", e)
	}

	id := s.SendText(42, "alice", "/start")
	if info, err := bot.GetWebhookInfo(); err != nil || info.URL != url || info.PendingUpdateCount != 1 {
		t.Fatalf("GetWebhookInfo = %+v, %v", info, err)
	}
	resp, err := s.DeliverWebhook(context.Background(), id)
	if err != nil {
		t.Fatalf("DeliverWebhook: %v", err)
	}
	resp.Body.Close()
	mu.Lock()
	if resp.StatusCode != 200 || len(bodies) != 1 || bodies[0].UpdateID != id || bodies[0].Message.Text != "/start" || headers[0] != secret {
		t.Fatalf("delivered: %d %+v %q", resp.StatusCode, bodies, headers)
	}
	mu.Unlock()
	if info, _ := bot.GetWebhookInfo(); info.PendingUpdateCount != 0 {
		t.Fatalf("delivered update still pending: %+v", info)
	}
	if _, err := s.DeliverWebhook(context.Background(), 424242); err == nil {
		t.Fatal("DeliverWebhook of an unknown update succeeded")
	}

	if _, err := bot.Request(tgbotapi.DeleteWebhookConfig{}); err != nil {
		t.Fatalf("deleteWebhook: %v", err)
	}
	if gotURL, gotSecret := s.Webhook(); gotURL != "" || gotSecret != "" {
		t.Fatalf("after deleteWebhook: %q %q", gotURL, gotSecret)
	}
	if _, err := s.DeliverWebhook(context.Background(), id); err == nil {
		t.Fatal("DeliverWebhook without a webhook succeeded")
	}
	if _, err := bot.GetUpdates(tgbotapi.UpdateConfig{}); err != nil {
		t.Fatalf("getUpdates after deleteWebhook: %v", err)
	}
}

func htmlMessage(chatID int64, text string) tgbotapi.MessageConfig {
	m := tgbotapi.NewMessage(chatID, text)
	m.ParseMode = tgbotapi.ModeHTML
	return m
}

func equalButtons(a, b [][]bottest.Button) bool {
	return slices.EqualFunc(a, b, func(x, y []bottest.Button) bool { return slices.Equal(x, y) })
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fetch(t *testing.T, url string, wantStatus int) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != wantStatus {
		t.Fatalf("GET: status %d (want %d), %v", resp.StatusCode, wantStatus, err)
	}
	return body
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
