// Package bottest is a fake Telegram Bot API server for tests: the bot under test uses the real
// telegram-bot-api/v5 client over real HTTP, and the fake plays Telegram and the users.
//
// The fake speaks the wire format of the Bot API as telegram-bot-api v5.5.1 uses it: form-encoded
// (or multipart, or JSON) POSTs to URL + "/bot<token>/<method>", answered with
// {"ok":true,"result":…} or {"ok":false,"error_code":…,"description":…,"parameters":…}. It
// implements getMe, getUpdates (long poll, confirmation by offset), sendMessage, editMessageText,
// answerCallbackQuery, setWebhook, deleteWebhook, getWebhookInfo, getFile and file downloads at
// URL + "/file/bot<token>/<file_path>". Other methods answer 404 as Telegram does for unknown ones.
//
// Things a bot must cope with that the fake reproduces: a wrong token answers 401; getUpdates while a
// webhook is set answers 409; a second getUpdates terminates the first with 409 (two pollers); a
// chat that never wrote to the bot answers 400 "chat not found"; HTML that Telegram could not parse
// answers 400 "can't parse entities"; FailNext injects 429 with retry_after or 5xx; SetDown drops
// every connection. Two differences from Telegram, both for tests: webhook URLs may be plain http,
// and a redelivered or pushed update is delivered once even when its update_id is below the
// confirmed offset (that is how a duplicate or out-of-order update reaches a polling bot).
//
// Users are simulated: a private chat's id is the user's id, as in Telegram. Everything is
// recorded under one mutex, so a test may inspect the server while the bot runs.
//
// telegram-bot-api v5.5.1 puts the token in the request URL, so its transport errors
// (*url.Error, e.g. when the API is down) contain the token; the bot must scrub them before
// logging. Its WebhookConfig has no secret_token field and File.Link ignores the configured
// endpoint: a bot sets the secret with MakeRequest("setWebhook", Params{…}) and builds download
// URLs from its endpoint (see FileEndpoint).
package bottest

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Bot API server. Create it with New; it is closed by the test's cleanup.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234 (no trailing slash).
	URL string

	t     testing.TB
	token string
	srv   *httptest.Server
	done  chan struct{} // closed at cleanup so that blocked long polls return

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change; waiters re-check their condition
	now     func() time.Time

	nextUpdateID int
	nextMsgID    int
	nextFileID   int
	nextCallback int

	updates map[int]json.RawMessage // every update ever created, by id (for Redeliver and webhooks)
	queue   []queued                // updates not yet confirmed, in arrival order
	pollGen int                     // increases with every getUpdates; an older long poll ends with 409

	chats     map[int64]chat        // chats that have written to the bot
	messages  map[msgKey]storedMsg  // messages visible in chats (the bot's and the users')
	callbacks map[string]int64      // callback_query id → chat id
	files     map[string]storedFile // file_id → file
	paths     map[string]string     // file_path → file_id
	sent      []Message             // accepted sendMessage / editMessageText / answerCallbackQuery
	calls     []call                // every API call that arrived, failed ones included
	faults    map[string][]fault    // lower-case method → pending injected failures
	down      bool                  // every connection is dropped while true
	webhook   struct{ url, secret string }
}

// Message is one accepted sendMessage, editMessageText or answerCallbackQuery call.
type Message struct {
	Method          string // "sendMessage", "editMessageText" or "answerCallbackQuery"
	ChatID          int64  // for answerCallbackQuery: the chat whose button was pressed
	MessageID       int    // the message sent or edited; 0 for answerCallbackQuery
	Text            string // message text, or the callback answer's notification text
	ParseMode       string
	ReplyMarkup     string     // reply_markup JSON as the bot sent it ("" when none)
	Buttons         [][]Button // inline keyboard parsed from ReplyMarkup, row by row
	CallbackQueryID string     // answerCallbackQuery only
	ShowAlert       bool       // answerCallbackQuery only
	At              time.Time
}

// Button is one inline keyboard button.
type Button struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// HasButton reports whether the message carries an inline button with this callback data.
func (m Message) HasButton(data string) bool {
	for _, row := range m.Buttons {
		for _, b := range row {
			if b.CallbackData == data {
				return true
			}
		}
	}
	return false
}

type queued struct {
	id        int
	raw       json.RawMessage
	delivered bool // returned by a getUpdates at least once; confirmation drops only these
}

type chat struct {
	typ  string // "private" or "group"
	name string
}

type msgKey struct {
	chat int64
	id   int
}

type storedMsg struct {
	fromBot bool
	text    string
	markup  string
	raw     json.RawMessage
}

type storedFile struct {
	id      string
	path    string
	content []byte
}

type call struct {
	method string // lower case
	chatID int64
	at     time.Time
}

type fault struct {
	code       int
	retryAfter int
}

// Bot identity answered by getMe.
const (
	botID       = 7000001
	botUserName = "recoverydesk_test_bot"
)

// New starts a fake Bot API server that accepts token; the server is closed by t.Cleanup.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{
		t:            t,
		token:        token,
		done:         make(chan struct{}),
		changed:      make(chan struct{}),
		now:          time.Now, // arrival times of real HTTP traffic; SetClock replaces it
		nextUpdateID: 1001,
		nextMsgID:    1,
		updates:      map[int]json.RawMessage{},
		chats:        map[int64]chat{},
		messages:     map[msgKey]storedMsg{},
		callbacks:    map[string]int64{},
		files:        map[string]storedFile{},
		paths:        map[string]string{},
		faults:       map[string][]fault{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// Endpoint is the API endpoint format for tgbotapi.NewBotAPIWithClient (token, then method).
func (s *Server) Endpoint() string { return s.URL + "/bot%s/%s" }

// FileEndpoint is the download URL format (token, then file_path), the fake's counterpart of
// tgbotapi.FileEndpoint, which File.Link uses regardless of the configured API endpoint.
func (s *Server) FileEndpoint() string { return s.URL + "/file/bot%s/%s" }

// SetClock replaces the clock that stamps update dates, Message.At and CallTimes (wall clock by
// default, because the fake measures real HTTP traffic).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// notify wakes every waiter; callers hold s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Sent returns every accepted sendMessage, editMessageText and answerCallbackQuery, in order.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// SentTo returns what Sent returns, restricted to one chat.
func (s *Server) SentTo(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentToLocked(chatID)
}

func (s *Server) sentToLocked(chatID int64) []Message {
	var out []Message
	for _, m := range s.sent {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// WaitSent waits until at least n messages were accepted for chatID and returns all of them; it
// fails the test (t.Fatalf, so call it from the test goroutine) after timeout.
func (s *Server) WaitSent(t testing.TB, chatID int64, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got := s.sentToLocked(chatID)
		changed := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timer.C:
			texts := make([]string, len(got))
			for i, m := range got {
				texts[i] = m.Method + " " + strconv.Quote(m.Text)
			}
			t.Fatalf("bottest: chat %d got %d of %d messages within %v: %v", chatID, len(got), n, timeout, texts)
			return nil
		}
	}
}

// FailNext makes the next n calls of method (case-insensitive, e.g. "sendMessage") answer the error
// code: HTTP status code with {"ok":false,"error_code":code,…}; a positive retryAfter adds
// "parameters":{"retry_after":retryAfter} and, for 429, the description Telegram uses.
func (s *Server) FailNext(method string, n int, code int, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(method)
	for range n {
		s.faults[key] = append(s.faults[key], fault{code: code, retryAfter: retryAfter})
	}
}

// SetDown makes every API call and download fail at the connection level while down is true: the
// server closes the connection without an answer, so the client sees a transport error.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Calls returns how many calls of method (case-insensitive) arrived, failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(method)
	n := 0
	for _, c := range s.calls {
		if c.method == key {
			n++
		}
	}
	return n
}

// CallTimes returns the arrival times of the calls of method (case-insensitive) for chatID, failed
// ones included; answerCallbackQuery calls count for the chat whose button was pressed.
func (s *Server) CallTimes(method string, chatID int64) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(method)
	var out []time.Time
	for _, c := range s.calls {
		if c.method == key && c.chatID == chatID {
			out = append(out, c.at)
		}
	}
	return out
}

// Webhook returns the URL and secret_token registered by setWebhook; both are empty when no
// webhook is set (deleteWebhook clears them).
func (s *Server) Webhook() (url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook.url, s.webhook.secret
}

// tokenOK compares in constant time, as production code must; the fake keeps the habit.
func (s *Server) tokenOK(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) == 1
}
