package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// Config is the whole configuration of one process, read once at start from defaults, then the
// environment, then command-line flags (each later source wins). Nothing else reads the
// environment. Values that hold secrets (keys, tokens, the SMTP URL) are never printed.
type Config struct {
	Addr                  string
	BaseURL               string // "" until resolved: defaults to http://<listen address>
	DB                    string
	Keys                  string
	Issuer                string
	APIKeys               string
	TelegramToken         string
	TelegramAPI           string
	TelegramWebhookSecret string
	SMTPURL               string
	MailFrom              string
	HostWebhookURL        string
	HostWebhookSecret     string
	PolicyFile            string
	AuditKey              string
	MetricsToken          string
	TrustedProxies        string

	// Parsed forms.
	StaticAPIKeys     map[string]string // name → key, from APIKeys
	TrustedProxyCIDRs []string          // normalized prefixes, from TrustedProxies

	source map[string]string // env name → where its value came from ("--flag" or the env name)
}

// setting describes one configuration value: its env name (the flag name is derived from it),
// its default and what it means.
type setting struct {
	env    string
	def    string
	shown  string // the default as help describes it, when def is "" but means something
	usage  string
	secret bool // a flag exposes the value in the process list: the usage text says to prefer the env var
	field  func(*Config) *string
	check  func(c *Config, v string) error
}

// DefaultTelegramAPI is the official Bot API endpoint, in the format telegram-bot-api expects.
const DefaultTelegramAPI = "https://api.telegram.org/bot%s/%s"

var settings = []setting{
	{env: "RECOVERYDESK_ADDR", def: "127.0.0.1:8080", usage: "listen address (host:port; port 0 picks a free port)",
		field: func(c *Config) *string { return &c.Addr }, check: checkAddr},
	{env: "RECOVERYDESK_BASE_URL", def: "", shown: "http://<listen address>", usage: "public URL used in links",
		field: func(c *Config) *string { return &c.BaseURL }, check: checkBaseURL},
	{env: "RECOVERYDESK_DB", def: "recoverydesk.db", usage: "SQLite file path, or a postgres:// DSN",
		field: func(c *Config) *string { return &c.DB }, check: checkDB},
	{env: "RECOVERYDESK_KEYS", shown: "key file recoverydesk.key beside the database",
		usage:  "comma list of id:base64(32 bytes); the first seals, all open (rotation)",
		secret: true, field: func(c *Config) *string { return &c.Keys }},
	{env: "RECOVERYDESK_ISSUER", def: "RecoveryDesk", usage: "issuer shown in the authenticator app",
		field: func(c *Config) *string { return &c.Issuer }, check: checkIssuer},
	{env: "RECOVERYDESK_API_KEYS", usage: "comma list of name=key (key at least 32 characters) accepted besides stored API keys",
		secret: true, field: func(c *Config) *string { return &c.APIKeys }, check: checkAPIKeys},
	{env: "RECOVERYDESK_TELEGRAM_TOKEN", shown: "none: bot disabled", usage: "Telegram bot token",
		secret: true, field: func(c *Config) *string { return &c.TelegramToken }, check: checkNoSpace},
	{env: "RECOVERYDESK_TELEGRAM_API", def: DefaultTelegramAPI, usage: "Telegram Bot API endpoint (…/bot%s/%s)",
		field: func(c *Config) *string { return &c.TelegramAPI }, check: checkTelegramAPI},
	{env: "RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET", usage: "set: Telegram webhook mode at /telegram/webhook with this secret token",
		secret: true, field: func(c *Config) *string { return &c.TelegramWebhookSecret }, check: checkWebhookSecret},
	{env: "RECOVERYDESK_SMTP_URL", usage: "SMTP server for e-mail notices (smtp:// or smtps://)",
		secret: true, field: func(c *Config) *string { return &c.SMTPURL }, check: checkSMTPURL},
	{env: "RECOVERYDESK_MAIL_FROM", shown: "none (required with an SMTP URL)", usage: "sender address of e-mail notices",
		field: func(c *Config) *string { return &c.MailFrom }, check: checkMailFrom},
	{env: "RECOVERYDESK_HOST_WEBHOOK_URL", usage: "URL the host platform's events are POSTed to",
		field: func(c *Config) *string { return &c.HostWebhookURL }, check: checkHTTPURL},
	{env: "RECOVERYDESK_HOST_WEBHOOK_SECRET", usage: "HMAC-SHA256 secret signing the host webhook (at least 16 characters)",
		secret: true, field: func(c *Config) *string { return &c.HostWebhookSecret }, check: checkHostWebhookSecret},
	{env: "RECOVERYDESK_POLICY_FILE", shown: "the embedded policy", usage: "recovery policy file (JSON; see recovery/default_policy.json)",
		field: func(c *Config) *string { return &c.PolicyFile }, check: checkReadableFile},
	{env: "RECOVERYDESK_AUDIT_KEY", shown: "key file recoverydesk-audit.key beside the database",
		usage:  "base64 Ed25519 seed (32 bytes) that signs audit checkpoints",
		secret: true, field: func(c *Config) *string { return &c.AuditKey }},
	{env: "RECOVERYDESK_METRICS_TOKEN", shown: "none: loopback clients only", usage: "bearer token that /metrics then requires from every client, loopback included",
		secret: true, field: func(c *Config) *string { return &c.MetricsToken }, check: checkNoSpace},
	{env: "RECOVERYDESK_TRUSTED_PROXIES", usage: "comma list of CIDRs whose X-Forwarded-For is believed",
		field: func(c *Config) *string { return &c.TrustedProxies }, check: checkTrustedProxies},
}

// helpDefault is the default as --help shows it.
func (s setting) helpDefault() string {
	switch {
	case s.shown != "":
		return s.shown
	case s.def != "":
		return s.def
	}
	return "none"
}

// flagName derives a setting's flag from its env name: RECOVERYDESK_TELEGRAM_API → telegram-api.
func flagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "RECOVERYDESK_"), "_", "-"))
}

// isConfigFlag reports whether name is one of the configuration flags every command accepts.
func isConfigFlag(name string) bool {
	for _, s := range settings {
		if flagName(s.env) == name {
			return true
		}
	}
	return false
}

// registerConfigFlags adds a flag per setting to fs. A flag given on the command line is stored
// in overlay (by flag name) and later wins over the environment; its default is not shown as a
// flag default, so that --help never prints a value taken from the environment.
func registerConfigFlags(fs *flag.FlagSet, overlay map[string]string) {
	for _, s := range settings {
		name := flagName(s.env)
		usage := s.usage + " [" + s.env + "]"
		if s.secret {
			usage += " (prefer the environment variable: flags show in the process list)"
		}
		fs.Func(name, usage, func(v string) error {
			overlay[name] = v
			return nil
		})
	}
}

// loadConfig builds the configuration from defaults, getenv and the flags in overlay, and checks
// every value. An error is one line naming the setting (as the env var or flag it came from)
// and never quotes a secret value.
func loadConfig(getenv func(string) string, overlay map[string]string) (*Config, error) {
	c := &Config{source: map[string]string{}}
	for _, s := range settings {
		v, src := s.def, s.env
		if e := strings.TrimSpace(getenv(s.env)); e != "" {
			v = e
		}
		if f, ok := overlay[flagName(s.env)]; ok {
			v, src = strings.TrimSpace(f), "--"+flagName(s.env)
		}
		*s.field(c) = v
		c.source[s.env] = src
	}
	for _, s := range settings {
		if s.check == nil {
			continue
		}
		if err := s.check(c, *s.field(c)); err != nil {
			return nil, fmt.Errorf("%s: %w", c.source[s.env], err)
		}
	}
	return c, nil
}

// Source names where a setting's value came from, for messages: the flag or the env var.
func (c *Config) Source(env string) string {
	if s, ok := c.source[env]; ok {
		return s
	}
	return env
}

// checkDB refuses, before any key file is made beside it, a database Open would refuse.
func checkDB(_ *Config, v string) error {
	if err := sqlstore.CheckDSN(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "sqlstore: "))
	}
	return nil
}

func checkAddr(_ *Config, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", v)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q has no valid host", v)
	}
	return nil
}

func checkBaseURL(_ *Config, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Not quoted: a refused user part may hold a password.
		return errors.New("is not an http:// or https:// URL without user, query or fragment")
	}
	return nil
}

func checkIssuer(_ *Config, v string) error {
	if v == "" || len(v) > 64 {
		return errors.New("must be 1-64 characters")
	}
	for _, r := range v {
		// The issuer prefixes the otpauth label as "Issuer:account"; a colon would split it.
		if r == ':' || unicode.IsControl(r) {
			return errors.New("must not contain a colon or control characters")
		}
	}
	return nil
}

// checkAPIKeys parses name=key entries into c.StaticAPIKeys with the domain's rule.
func checkAPIKeys(c *Config, v string) error {
	keys, err := recovery.ParseStaticAPIKeys(v)
	c.StaticAPIKeys = keys
	return err
}

// checkTrustedProxies parses the CIDR list into c.TrustedProxyCIDRs. A bare address counts as a
// single-host prefix.
func checkTrustedProxies(c *Config, v string) error {
	c.TrustedProxyCIDRs = nil
	if v == "" {
		return nil
	}
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return fmt.Errorf("entry %d %q is not a CIDR (e.g. 10.0.0.0/8) or an IP address", i+1, part)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxyCIDRs = append(c.TrustedProxyCIDRs, p.Masked().String())
	}
	return nil
}

func checkNoSpace(_ *Config, v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("must not contain spaces or control characters")
	}
	return nil
}

func checkTelegramAPI(_ *Config, v string) error {
	u, err := url.Parse(strings.ReplaceAll(v, "%s", "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Count(v, "%s") != 2 {
		// Not quoted: a bot token written into the URL in place of the first %s would show.
		return fmt.Errorf("is not an http(s) URL with two %%s (token, method), like %s", DefaultTelegramAPI)
	}
	return nil
}

var webhookSecretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// checkWebhookSecret applies Telegram's rule for secret_token: 1-256 of A-Z a-z 0-9 _ -.
func checkWebhookSecret(_ *Config, v string) error {
	if v != "" && !webhookSecretPattern.MatchString(v) {
		return errors.New("must be 1-256 letters, digits, _ or - (Telegram's secret_token alphabet)")
	}
	return nil
}

// checkSMTPURL never quotes the value: it may hold a password.
func checkSMTPURL(_ *Config, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
		return errors.New("is not an smtp:// or smtps:// URL with a host")
	}
	// The sender's own parse: port, no path or query. Its errors quote nothing either.
	if _, err := notify.NewSMTP(v, "check@example.com"); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "notify: "))
	}
	return nil
}

// checkHostWebhookSecret requires a secret of at least notify.MinWebhookSecret characters when
// the webhook is configured (an unsigned event would be worthless to the host). Never quoted.
func checkHostWebhookSecret(c *Config, v string) error {
	switch {
	case v == "" && c.HostWebhookURL != "":
		return errors.New("is required when RECOVERYDESK_HOST_WEBHOOK_URL is set")
	case v != "" && len(v) < notify.MinWebhookSecret:
		return fmt.Errorf("must be at least %d characters", notify.MinWebhookSecret)
	}
	return checkNoSpace(c, v)
}

func checkMailFrom(c *Config, v string) error {
	if v == "" {
		if c.SMTPURL != "" {
			return errors.New("is required when RECOVERYDESK_SMTP_URL is set")
		}
		return nil
	}
	if _, err := mail.ParseAddress(v); err != nil {
		return fmt.Errorf("%q is not an e-mail address", v)
	}
	return nil
}

func checkHTTPURL(_ *Config, v string) error {
	if v == "" {
		return nil
	}
	// Not quoted: the URL may carry a token in its path or query.
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("is not an http:// or https:// URL")
	}
	return nil
}

func checkReadableFile(_ *Config, v string) error {
	if v == "" {
		return nil
	}
	f, err := os.Open(v)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", v, errors.Unwrap(err))
	}
	return f.Close()
}

// resolveBaseURL returns the configured public URL, or http://<addr> for the address the server
// actually listens on (a wildcard host is shown as 127.0.0.1).
func (c *Config) resolveBaseURL(listenAddr string) string {
	if c.BaseURL != "" {
		return strings.TrimSuffix(c.BaseURL, "/")
	}
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "http://" + listenAddr
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// redactDSN hides the secrets of a DSN for messages and logs: the password of a URL's user
// part, and every parameter whose name holds "pass", "secret" or "token" (password,
// sslpassword, _auth_pass, …), in a URL's query or as a keyword=value pair. A URL with a user
// part that does not parse is not shown at all.
func redactDSN(dsn string) string {
	base, query, hasQuery := strings.Cut(dsn, "?")
	u, err := url.Parse(base)
	switch {
	case err != nil && strings.Contains(base, "@"):
		return "(a DSN that does not parse as a URL; not shown)"
	case err == nil:
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			base = u.String()
		}
	}
	if !strings.Contains(base, "://") {
		// keyword=value pairs ("host=db password=…"), which no URL holds before its query.
		base = secretPairPattern.ReplaceAllString(base, "${1}xxxxx")
	}
	if !hasQuery {
		return base
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if isSecretParam(name) {
			parts[i] = k + "=xxxxx"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// isSecretParam reports whether a DSN parameter's name says it holds a secret.
func isSecretParam(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "pass") || strings.Contains(name, "secret") || strings.Contains(name, "token")
}

// secretPairPattern matches a keyword=value pair whose keyword holds pass, secret or token,
// with the value quoted ('…') or not.
var secretPairPattern = regexp.MustCompile(`(?i)(\b\w*(?:pass|secret|token)\w*\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
