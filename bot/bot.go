package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Defaults of Options.
const (
	DefaultEndpoint    = tgbotapi.APIEndpoint
	DefaultPollTimeout = 30 * time.Second
	DefaultRate        = 25.0 // messages a second overall (security.md)
	DefaultChatRate    = 1.0  // messages a second per chat
	// maxDownload bounds an attachment's download (Telegram's getFile limit is 20 MB).
	maxDownload = 20 << 20
	// PollLockKey is the PostgreSQL advisory lock that elects the polling replica ("rd/tgpol").
	PollLockKey int64 = 0x72642f7467706f6c
)

// Options configure a Bot. Token, Service and Now are required.
type Options struct {
	Token string
	// Endpoint is the Bot API URL format (token, then method), DefaultEndpoint when empty.
	Endpoint string
	// FileEndpoint is the download URL format (token, then file_path); empty derives it from
	// Endpoint ("…/bot%s/%s" → "…/file/bot%s/%s"), since the library's File.Link ignores a
	// configured endpoint.
	FileEndpoint string
	// WebhookSecret set means webhook mode: Run registers BaseURL+"/telegram/webhook" with
	// this secret_token and WebhookHandler checks it.
	WebhookSecret string
	BaseURL       string
	Service       *recovery.Service
	Logger        *slog.Logger
	// Now is the real clock for pacing (cmd passes time.Now).
	Now        func() time.Time
	HTTPClient *http.Client
	// PollTimeout is getUpdates' long-poll wait (DefaultPollTimeout when 0).
	PollTimeout time.Duration
	// Rate and ChatRate are the token buckets' rates in messages a second (defaults 25 and 1).
	Rate, ChatRate float64
	// Wake, when set, is how often an idle dispatcher looks for due notices (default 1 s); a
	// processed update wakes it at once.
	Wake time.Duration
	// PollLock elects the polling replica: it returns ok when this process may poll, and lost
	// reports whether the lock has since gone. nil means always (SQLite, one process).
	PollLock func(ctx context.Context) (release func(), lost func(context.Context) bool, ok bool, err error)
	// OnAPIError, when set, hears each failed Bot API call (for metrics): method is the Bot API
	// method (getMe, getUpdates, sendMessage, setWebhook, answerCallbackQuery, getFile); code
	// is Telegram's error code (429, 400, 403, 5xx…), or 0 when no answer came (the network).
	// It must be quick and safe for concurrent use.
	OnAPIError func(method string, code int)
}

// Bot is the Telegram bot: it turns updates into calls of the domain and delivers the outbox's
// Telegram notices.
type Bot struct {
	api     *tgbotapi.BotAPI
	svc     *recovery.Service
	log     *slog.Logger
	token   string
	fileURL string
	secret  string
	baseURL string
	client  *http.Client
	poll    time.Duration
	wake    time.Duration
	lock    func(ctx context.Context) (func(), func(context.Context) bool, bool, error)
	limit   *limiter
	kick    chan struct{}
	onError func(method string, code int)
}

// New connects to the Bot API (getMe) and returns the bot. Its errors never carry the token.
func New(o Options) (*Bot, error) {
	if o.Token == "" || o.Service == nil || o.Now == nil {
		return nil, errors.New("bot: a token, the service and a clock are required")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.FileEndpoint == "" {
		if base, ok := strings.CutSuffix(o.Endpoint, "/bot%s/%s"); ok {
			o.FileEndpoint = base + "/file/bot%s/%s"
		} else {
			return nil, errors.New("bot: the endpoint must end in /bot%s/%s, or give FileEndpoint")
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.ChatRate <= 0 {
		o.ChatRate = DefaultChatRate
	}
	if o.Wake <= 0 {
		o.Wake = time.Second
	}
	b := &Bot{svc: o.Service, log: o.Logger, token: o.Token, fileURL: o.FileEndpoint, secret: o.WebhookSecret,
		baseURL: strings.TrimRight(o.BaseURL, "/"), client: o.HTTPClient, poll: o.PollTimeout, wake: o.Wake,
		lock: o.PollLock, limit: newLimiter(o.Now, o.Rate, o.ChatRate), kick: make(chan struct{}, 1), onError: o.OnAPIError}
	api, err := tgbotapi.NewBotAPIWithClient(o.Token, o.Endpoint, o.HTTPClient)
	if err != nil {
		b.apiError("getMe", err)
		return nil, fmt.Errorf("bot: connect to the Bot API: %w", b.scrub(err))
	}
	b.api = api
	return b, nil
}

// UserName is the bot's @username as getMe answered it.
func (b *Bot) UserName() string { return b.api.Self.UserName }

// scrub replaces every error from the library by one whose text lacks the token (transport
// errors carry the request URL, which holds it). A *tgbotapi.Error is kept: it holds only
// Telegram's answer.
func (b *Bot) scrub(err error) error {
	if err == nil {
		return nil
	}
	var tgErr *tgbotapi.Error
	if errors.As(err, &tgErr) && !strings.Contains(err.Error(), b.token) {
		return err
	}
	msg := err.Error()
	if b.token != "" {
		msg = strings.ReplaceAll(msg, b.token, "<token>")
	}
	return errors.New(msg)
}

// apiError tells Options.OnAPIError about a failed Bot API call.
func (b *Bot) apiError(method string, err error) {
	if b.onError == nil || err == nil {
		return
	}
	code := 0
	var tgErr *tgbotapi.Error
	if errors.As(err, &tgErr) {
		code = tgErr.Code
		if tgErr.RetryAfter > 0 {
			code = http.StatusTooManyRequests
		}
	}
	b.onError(method, code)
}

// Run does the bot's background work until ctx ends: the dispatcher, and either polling or, in
// webhook mode, the webhook's registration (updates then arrive through WebhookHandler).
func (b *Bot) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.Dispatch(ctx) })
	var err error
	if b.secret != "" {
		if err = b.SetWebhook(ctx); err == nil {
			<-ctx.Done()
		}
	} else {
		err = b.Poll(ctx)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// SetWebhook registers BaseURL+"/telegram/webhook" with the secret_token (the library's
// WebhookConfig has no field for it, so the parameters are given by hand).
func (b *Bot) SetWebhook(ctx context.Context) error {
	p := tgbotapi.Params{}
	p["url"] = b.baseURL + "/telegram/webhook"
	p["secret_token"] = b.secret
	p["allowed_updates"] = `["message","callback_query"]`
	if _, err := b.api.MakeRequest("setWebhook", p); err != nil {
		b.apiError("setWebhook", err)
		return fmt.Errorf("bot: setWebhook: %w", b.scrub(err))
	}
	b.log.Info("telegram webhook registered", "url", p["url"])
	return nil
}

// Handle processes one update: it parses it, downloads an attachment and hands it to the
// domain, which records it once. processed is false for an update seen before.
func (b *Bot) Handle(ctx context.Context, u tgbotapi.Update) (processed bool, err error) {
	in, answer := Parse(u)
	if answer != "" {
		// The button's spinner stops whatever happens next; a failure here loses nothing.
		if _, err := b.api.Request(tgbotapi.NewCallback(answer, "")); err != nil {
			b.apiError("answerCallbackQuery", err)
			b.log.Debug("answerCallbackQuery failed", "err", b.scrub(err))
		}
	}
	if in.FileID != "" && in.ChatType == recovery.ChatPrivate {
		// A file that cannot be fetched (too large, gone) must not block the updates behind
		// it: the domain keeps the file id and notes that the bytes were not checked.
		sum, err := b.download(ctx, in.FileID)
		if err != nil {
			b.log.Warn("telegram attachment not downloaded", "update", in.UpdateID, "err", err)
		}
		in.FileSHA256 = sum
	}
	processed, err = b.svc.TelegramUpdate(ctx, in)
	if err != nil {
		return false, err
	}
	if processed {
		b.Kick()
	}
	return processed, nil
}

// Parse turns an update into the domain's input; answer is the callback query id to answer
// ("" when none). An update the bot does not serve gives an input with no chat, which the
// domain records and ignores.
func Parse(u tgbotapi.Update) (in recovery.TelegramIn, answer string) {
	in.UpdateID = int64(u.UpdateID)
	var m *tgbotapi.Message
	switch {
	case u.Message != nil:
		m = u.Message
	case u.CallbackQuery != nil:
		answer = u.CallbackQuery.ID
		if u.CallbackQuery.Message == nil || u.CallbackQuery.Message.Chat == nil || u.CallbackQuery.From == nil {
			return in, answer
		}
		c := u.CallbackQuery.Message.Chat
		in.ChatID, in.ChatType, in.UserID = c.ID, c.Type, u.CallbackQuery.From.ID
		in.Button = u.CallbackQuery.Data
		if in.Button == "" {
			in.Button = "?"
		}
		return in, answer
	default:
		return in, ""
	}
	if m.Chat == nil {
		return in, ""
	}
	in.ChatID, in.ChatType = m.Chat.ID, m.Chat.Type
	if m.From != nil {
		in.UserID = m.From.ID
	}
	in.Text = m.Text
	if in.Text == "" {
		in.Text = m.Caption
	}
	switch {
	case len(m.Photo) > 0:
		in.FileID = m.Photo[len(m.Photo)-1].FileID // the largest size
	case m.Document != nil:
		in.FileID = m.Document.FileID
	}
	return in, ""
}

// download fetches a file through the configured endpoint and returns the SHA-256 of its
// bytes. The bytes themselves are not kept: the ticket holds the file id and the hash.
func (b *Bot) download(ctx context.Context, fileID string) (string, error) {
	f, err := b.api.GetFile(tgbotapi.FileConfig{FileID: fileID})
	if err != nil {
		b.apiError("getFile", err)
		return "", fmt.Errorf("bot: getFile: %w", b.scrub(err))
	}
	if f.FilePath == "" || strings.Contains(f.FilePath, "..") {
		return "", errors.New("bot: getFile answered no usable file path")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf(b.fileURL, b.token, f.FilePath), nil)
	if err != nil {
		return "", errors.New("bot: download: bad file URL")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("bot: download: %w", b.scrub(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bot: download: HTTP %d", resp.StatusCode)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return "", fmt.Errorf("bot: download: %w", b.scrub(err))
	}
	if n > maxDownload {
		return "", errors.New("bot: download: file larger than 20 MB")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Kick wakes the dispatcher (a reply was queued).
func (b *Bot) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// chatOf parses a Telegram notice's recipient.
func chatOf(n recovery.Notice) (int64, error) {
	return strconv.ParseInt(n.To, 10, 64)
}
