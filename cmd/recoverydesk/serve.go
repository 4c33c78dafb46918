package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/recoverydesk/recoverydesk/console"
)

// HTTP server limits. The write timeout bounds the slowest handler (an enrollment renders a QR
// PNG; a verify waits for a durable commit); request bodies are limited by the console
// (console.DefaultMaxBodyBytes).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 10 * time.Second
)

const serveHelp = `
Serve RecoveryDesk on RECOVERYDESK_ADDR (default 127.0.0.1:8080): the agent console (/console),
the end-user pages (/account, /reenroll/<token>, /veto/<token>), the host platform's JSON API
(/api/v1, described by /api/openapi.yaml) and the health checks /healthz and /readyz. This is the
default command: 'recoverydesk' alone serves. With RECOVERYDESK_TELEGRAM_TOKEN it also runs the
Telegram bot (long polling, or webhook mode at /telegram/webhook with
RECOVERYDESK_TELEGRAM_WEBHOOK_SECRET). Background work: the outbox dispatchers (e-mail over SMTP
or into recoverydesk-mail/, the host webhook) and the workflow's timers. On a database without
agents it prints a one-time /setup/<token> link for the first admin. --demo seeds demo data
first (see 'recoverydesk demo --help').

On start it applies pending database migrations. With SQLite and no RECOVERYDESK_KEYS it uses
the master key file recoverydesk.key beside the database, creating it (mode 0600) on the first
start, together with the database; likewise the audit signing key recoverydesk-audit.key. With
PostgreSQL, RECOVERYDESK_KEYS is required so that every replica shares it. A missing master key
file beside an existing database, or a stored value sealed under a key id that the keys lack,
stops the start with a message saying which.

SIGINT or SIGTERM stops it gracefully: requests in flight get up to 10 seconds to finish.`

func (a *app) serve(ctx context.Context, args []string) error {
	fs := a.command("serve", "serve [--demo] [flags]", serveHelp)
	demo := fs.Bool("demo", false, "seed the demo desk first (see 'recoverydesk demo --help'); a second start leaves it as it is")
	pos, err := a.parseAll(fs, "serve", args)
	if err != nil {
		return err
	}
	if err := wantArgs("serve", pos); err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	m := newMetrics(cfg.MetricsToken, a.log)
	err = a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate, auditKey: true, observer: m}, func(o *opened) error {
		if *demo {
			if err := a.seedDemo(ctx, o, cfg.resolveBaseURL(cfg.Addr)); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		}
		return a.listenAndServe(ctx, o, m)
	})
	if err == nil {
		a.log.Info("shut down")
	}
	return err
}

func (a *app) listenAndServe(ctx context.Context, o *opened, m *metrics) error {
	cfg := o.cfg
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	baseURL := cfg.resolveBaseURL(addr)
	m.watch(o.svc)
	webhook, botName, stopBot, err := a.startBot(ctx, o, baseURL, m.telegramError)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopBot()
	h, err := console.New(console.Options{
		TelegramWebhook: webhook,
		TelegramBotName: botName,
		Service:         o.svc,
		Logger:          a.log,
		TrustedProxies:  cfg.TrustedProxyCIDRs,
		BaseURL:         baseURL,
		MaxBodyBytes:    console.DefaultMaxBodyBytes,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{
		Handler:           a.mount(h, m),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	if cfg.TelegramToken == "" {
		a.log.Info("telegram bot disabled: RECOVERYDESK_TELEGRAM_TOKEN is not set")
	}
	version, err := o.store.SchemaVersion(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("read schema version: %w", err)
	}

	stopWorkers, err := a.startWorkers(ctx, o)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopWorkers()
	if err := a.announceFirstAdmin(ctx, o, baseURL); err != nil {
		ln.Close()
		return err
	}

	if a.clock != nil {
		a.log.Warn("test clock control at /test/clock (binary built with -tags rdtest): never run this build in production")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("listening", "addr", addr, "base_url", baseURL, "db", redactDSN(cfg.DB),
		"dialect", o.store.Dialect(), "schema_version", version, "sealing_key", o.keys.SealingKeyID())
	// One write, so that whoever waits for the "listening" line has the public URL too.
	banner := fmt.Sprintf("Public URL (used in links): %s\n", baseURL)
	if baseURL == "http://"+addr {
		banner = ""
	}
	fmt.Fprintf(a.stdout, "%sRecoveryDesk listening on http://%s\n", banner, addr)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "cause", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("requests still running at the shutdown deadline were cut off", "err", err)
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// mount puts the routes that live outside the console beside it: /metrics (metrics.handler's
// access rule), and the test clock's control in a binary built with the rdtest tag. Everything
// else goes to the console, timed by metrics.instrument, with its path exactly as it came (no
// mux cleans or redirects it first).
func (a *app) mount(console http.Handler, m *metrics) http.Handler {
	timed, scrape := m.instrument(console), m.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/metrics":
			scrape.ServeHTTP(w, r)
		case r.URL.Path == "/test/clock" && a.clock != nil:
			a.clock.ServeHTTP(w, r)
		default:
			timed.ServeHTTP(w, r)
		}
	})
}
