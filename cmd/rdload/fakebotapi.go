package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The fake Bot API lets a server run its Telegram bot in webhook mode during a load run without
// reaching Telegram: the server calls getMe at start, setWebhook, and then sendMessage (and
// answerCallbackQuery for button presses) for every reply its dispatcher delivers. The fake
// answers those calls in the wire format that telegram-bot-api v5 decodes — the shapes of
// bot/bottest, which the bot's own tests run against — and counts them. It keeps no messages
// and checks no texts: it is a sink, so that its cost stays out of the measurement.

const fakeBotAPIUsage = `rdload fake-botapi — a minimal fake Telegram Bot API for load runs

Usage: rdload fake-botapi [--listen ADDR] [--token TOKEN]

Serves POST/GET <base>/bot<token>/<method> until SIGINT or SIGTERM and answers getMe, setWebhook,
deleteWebhook, getWebhookInfo, sendMessage, editMessageText and answerCallbackQuery with ok:true
(other methods: 404, as Telegram answers unknown ones). Start it before the server, and start the
server in webhook mode against it:

  RECOVERYDESK_TELEGRAM_TOKEN=123:load RECOVERYDESK_TELEGRAM_API=http://ADDR/bot%s/%s \
  RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET=<secret> recoverydesk serve

It prints "fake-botapi listening on http://ADDR" when ready, the calls counted so far at
GET /rdload/stats (JSON), and the counts as its last line when it stops:
  fake_botapi: getMe=<n> sendMessage=<n> … total=<n>

Flags:
`

// fakeBotAPI is the fake's handler and its call counts.
type fakeBotAPI struct {
	token   string // "" accepts any token
	nextMsg atomic.Int64

	mu     sync.Mutex
	counts map[string]int // by method as Telegram names it; "unknown" and "unauthorized" too
}

func newFakeBotAPI(token string) *fakeBotAPI {
	return &fakeBotAPI{token: token, counts: map[string]int{}}
}

// fakeMethods maps a lower-case method name (Telegram matches them case-insensitively) to its
// canonical name.
var fakeMethods = map[string]string{
	"getme": "getMe", "setwebhook": "setWebhook", "deletewebhook": "deleteWebhook",
	"getwebhookinfo": "getWebhookInfo", "sendmessage": "sendMessage",
	"editmessagetext": "editMessageText", "answercallbackquery": "answerCallbackQuery",
}

// fakeBotID and fakeBotName are the identity getMe answers.
const (
	fakeBotID   = 7000002
	fakeBotName = "rdload_fake_bot"
)

func (f *fakeBotAPI) count(method string) {
	f.mu.Lock()
	f.counts[method]++
	f.mu.Unlock()
}

// Counts returns a copy of the call counts.
func (f *fakeBotAPI) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}

// summary is the fake's last line: every counted method in name order, then the total.
func (f *fakeBotAPI) summary() string {
	c := f.Counts()
	names := make([]string, 0, len(c))
	total := 0
	for k, v := range c {
		names = append(names, k)
		total += v
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("fake_botapi:")
	for _, k := range names {
		fmt.Fprintf(&b, " %s=%d", k, c[k])
	}
	fmt.Fprintf(&b, " total=%d", total)
	return b.String()
}

func (f *fakeBotAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rdload/stats" && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.Counts())
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, found := strings.Cut(rest, "/")
	name := fakeMethods[strings.ToLower(method)]
	switch {
	case !ok || !found || name == "":
		f.count("unknown")
		fakeAnswer(w, http.StatusNotFound, nil)
		return
	case f.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(f.token)) != 1:
		f.count("unauthorized")
		fakeAnswer(w, http.StatusUnauthorized, nil)
		return
	}
	p, err := fakeParams(r)
	if err != nil {
		f.count("bad_request")
		fakeAnswer(w, http.StatusBadRequest, nil)
		return
	}
	f.count(name)
	bot := map[string]any{"id": fakeBotID, "is_bot": true, "first_name": "rdload", "username": fakeBotName}
	switch name {
	case "getMe":
		fakeAnswer(w, http.StatusOK, bot)
	case "getWebhookInfo":
		fakeAnswer(w, http.StatusOK, map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": 0})
	case "sendMessage", "editMessageText":
		chatID, _ := strconv.ParseInt(p.Get("chat_id"), 10, 64)
		id := int(f.nextMsg.Add(1))
		if name == "editMessageText" {
			id, _ = strconv.Atoi(p.Get("message_id"))
		}
		fakeAnswer(w, http.StatusOK, map[string]any{
			"message_id": id, "from": bot, "date": time.Now().Unix(), "text": p.Get("text"),
			"chat": map[string]any{"id": chatID, "type": "private", "first_name": "load"},
		})
	default: // setWebhook, deleteWebhook, answerCallbackQuery
		fakeAnswer(w, http.StatusOK, true)
	}
}

// fakeAnswer writes {"ok":true,"result":…} or, for an error status, Telegram's error shape.
func fakeAnswer(w http.ResponseWriter, status int, result any) {
	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": status, "description": http.StatusText(status)})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

// fakeParams reads the parameters as the Bot API accepts them: query, form, multipart or JSON.
func fakeParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			return nil, err
		}
		p := r.URL.Query()
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				p.Set(k, s)
			} else {
				p.Set(k, string(v))
			}
		}
		return p, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		return r.Form, nil
	default:
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
}

// serveFakeBotAPI listens on addr and serves f until ctx ends. ready receives the base URL once
// the listener is open.
func serveFakeBotAPI(ctx context.Context, addr string, f *fakeBotAPI, ready func(base string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	ready("http://" + ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runFakeBotAPI is `rdload fake-botapi`.
func runFakeBotAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rdload fake-botapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, fakeBotAPIUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:18091", "`ADDR` to listen on (host:port; port 0 picks one)")
	token := fs.String("token", "", "accept only this bot `TOKEN` (default: any; the token is never printed)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rdload fake-botapi: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	f := newFakeBotAPI(*token)
	err := serveFakeBotAPI(ctx, *listen, f, func(base string) {
		fmt.Fprintf(stdout, "fake-botapi listening on %s\n", base)
	})
	fmt.Fprintln(stdout, f.summary())
	return err
}
