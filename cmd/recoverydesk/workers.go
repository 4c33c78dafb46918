package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/notify"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// dispatchEvery is how often an idle dispatcher looks for due notices. Retries are scheduled
// in the database, so this only bounds how late a new notice leaves.
const dispatchEvery = 2 * time.Second

// mailDirName is the file notifier's directory: beside the SQLite database, or in the working
// directory with PostgreSQL (design.md).
const mailDirName = "recoverydesk-mail"

// mailDir is where the file notifier writes when no SMTP server is configured.
func mailDir(dsn string) string {
	if sqlstore.IsPostgres(dsn) {
		return absPath(mailDirName)
	}
	return absPath(filepath.Join(filepath.Dir(dsn), mailDirName))
}

// tickEvery is how often the workflow's timers are checked: a cooling-off that ended becomes
// ready within this time (Execute also checks the time itself), idle tickets expire, and ended
// agent sessions are deleted.
const tickEvery = 30 * time.Second

// tickWorkflow runs the workflow's timed transitions until ctx ends. With several replicas each
// runs it; a ticket's transition is one conditional update, so only one of them makes it.
func (a *app) tickWorkflow(ctx context.Context, svc *recovery.Service) {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		if n, err := svc.Tick(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("workflow tick failed", "err", err)
		} else if n > 0 {
			a.log.Info("workflow tick", "tickets_changed", n)
		}
		if _, err := svc.PruneAgentSessions(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("pruning ended agent sessions failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startWorkers starts the background work of serve: the workflow's timers, the e-mail dispatcher (over SMTP when
// RECOVERYDESK_SMTP_URL is set, else into .eml files) and, when RECOVERYDESK_HOST_WEBHOOK_URL
// is set, the host webhook dispatcher. It logs one line saying which. stop cancels them and
// waits until they have returned; a notice in flight is handed back to the outbox.
func (a *app) startWorkers(ctx context.Context, o *opened) (stop func(), err error) {
	cfg := o.cfg
	var email recovery.Sender
	var emailVia string
	if cfg.SMTPURL != "" {
		m, err := notify.NewSMTP(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Source("RECOVERYDESK_SMTP_URL"), err)
		}
		email, emailVia = m.Send, "smtp "+m.Server()
	} else {
		f, err := notify.NewFile(mailDir(cfg.DB), cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		email, emailVia = f.Send, "files in "+f.Dir()
	}
	webhookVia := "off"
	var webhook recovery.Sender
	if cfg.HostWebhookURL != "" {
		// cmd owns the real clock; the signature's timestamp is taken from it.
		w, err := notify.NewWebhook(cfg.HostWebhookURL, cfg.HostWebhookSecret, notify.WebhookOptions{Now: a.now})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Source("RECOVERYDESK_HOST_WEBHOOK_URL"), err)
		}
		webhook, webhookVia = w.Send, w.Host()
	}

	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(channel string, send recovery.Sender) {
		log := a.log.With("dispatcher", channel)
		wg.Go(func() { o.svc.RunDispatcher(wctx, channel, send, dispatchEvery, log) })
	}
	run(recovery.NoticeEmail, email)
	if webhook != nil {
		run(recovery.NoticeWebhook, webhook)
	}
	wg.Go(func() { a.tickWorkflow(wctx, o.svc) })
	a.log.Info("outbox dispatchers started", "email", emailVia, "host_webhook", webhookVia)
	return func() {
		cancel()
		wg.Wait()
	}, nil
}
