package console

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"

	"github.com/recoverydesk/recoverydesk/assets"
	"github.com/recoverydesk/recoverydesk/recovery"
)

// DefaultMaxBodyBytes limits request bodies when Options.MaxBodyBytes is 0. The host API's
// largest body (an account with 64 facts of ≤ 256 characters) fits comfortably.
const DefaultMaxBodyBytes = 64 << 10

// Options configure the HTTP surface. Service is required.
type Options struct {
	Service *recovery.Service
	// Logger receives one JSON line per request and the errors behind 5xx answers; nil
	// discards. It never receives bodies, codes, secrets, keys or Authorization headers.
	Logger *slog.Logger
	// TrustedProxies are CIDRs (or single addresses) whose X-Forwarded-For is believed
	// (RECOVERYDESK_TRUSTED_PROXIES). None by default: the client address is the peer's.
	TrustedProxies []string
	// BaseURL is the public URL used in links (RECOVERYDESK_BASE_URL).
	BaseURL string
	// MaxBodyBytes limits every request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// TelegramWebhook, when set, is mounted at POST /telegram/webhook (the bot's webhook mode;
	// the handler checks Telegram's secret header itself).
	TelegramWebhook http.Handler
	// TelegramBotName is the bot's username (without "@") for the t.me links of "Link Telegram"
	// on the end-user security page; "" hides that section.
	TelegramBotName string
}

// server holds what the handlers share. It is built once by New and only read afterwards.
type server struct {
	svc     *recovery.Service
	log     *slog.Logger
	baseURL string
	maxBody int64
	pages   pages
	openapi []byte
	static  gin.HandlerFunc
	// telegramWebhook is Options.TelegramWebhook.
	telegramWebhook http.Handler
	// telegramBot is Options.TelegramBotName.
	telegramBot string
}

// New builds the whole HTTP surface. It fails if an option is invalid or an embedded template or
// asset is broken, so that a bad build stops start-up instead of failing requests.
//
// Gin's mode is process-wide state; New sets release mode (idempotently, with an atomic store)
// because debug mode prints every route and warnings to stdout, bypassing our logger. Nothing
// flips it per request.
func New(opts Options) (http.Handler, error) {
	if opts.Service == nil {
		return nil, errors.New("console: a recovery.Service is required")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, errors.New("console: MaxBodyBytes must not be negative")
	}
	s := &server{svc: opts.Service, log: opts.Logger, baseURL: opts.BaseURL, maxBody: opts.MaxBodyBytes,
		telegramWebhook: opts.TelegramWebhook, telegramBot: strings.TrimPrefix(opts.TelegramBotName, "@")}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	var err error
	if s.pages, err = parsePages(assets.FS, templateFuncs()); err != nil {
		return nil, err
	}
	if s.openapi, err = loadOpenAPI(assets.FS); err != nil {
		return nil, err
	}
	if s.static, err = staticFiles(assets.FS); err != nil {
		return nil, err
	}

	if gin.Mode() != gin.ReleaseMode {
		gin.SetMode(gin.ReleaseMode)
	}
	r := gin.New()
	// Unknown paths answer 404 and wrong methods 405, both in the JSON error shape; no redirects,
	// which would turn an API call into a GET and repeat token-carrying paths in Location.
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// security.md rule 6: X-Forwarded-For only, and only from the configured proxies. gin.New
	// trusts every address until SetTrustedProxies says otherwise, and it would believe the
	// header on a Unix socket regardless; ForwardedByClientIP=false rules that out when no
	// proxy is configured.
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	r.ForwardedByClientIP = len(opts.TrustedProxies) > 0
	r.TrustedPlatform = ""
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("console: trusted proxies: %w", err)
	}
	s.routes(r)
	return r, nil
}

// loadOpenAPI reads the embedded OpenAPI description and checks that it is a YAML document
// declaring an OpenAPI 3 version and some paths.
func loadOpenAPI(fsys fs.FS) ([]byte, error) {
	b, err := fs.ReadFile(fsys, "openapi.yaml")
	if err != nil {
		return nil, fmt.Errorf("console: openapi.yaml: %w", err)
	}
	var doc struct {
		OpenAPI string         `yaml:"openapi"`
		Paths   map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("console: openapi.yaml: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) == 0 {
		return nil, errors.New("console: openapi.yaml is not an OpenAPI 3 description with paths")
	}
	return b, nil
}
