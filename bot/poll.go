package bot

import (
	"context"
	"errors"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Poll backoff after a failed getUpdates or a failed update.
const (
	pollBackoffMin = 500 * time.Millisecond
	pollBackoffMax = 30 * time.Second
	lockRetry      = 5 * time.Second
)

// Poll long-polls getUpdates until ctx ends. The offset comes from the database (one past the
// highest update processed, written in the update's own transaction), so a restart neither loses
// nor repeats an update. An update that fails (the database is down) stops the batch: the same
// update is fetched again after a backoff. With PollLock set, only the replica holding the lock
// polls; the others wait for it.
func (b *Bot) Poll(ctx context.Context) error {
	for ctx.Err() == nil {
		release, lost, ok := func() (func(), func(context.Context) bool, bool) {
			if b.lock == nil {
				return func() {}, nil, true
			}
			release, lost, ok, err := b.lock(ctx)
			if err != nil && ctx.Err() == nil {
				b.log.Warn("telegram poll lock unavailable", "err", err)
			}
			return release, lost, ok && err == nil
		}()
		if !ok {
			sleep(ctx, lockRetry)
			continue
		}
		b.log.Info("telegram polling started")
		b.pollHeld(ctx, lost)
		release()
	}
	return nil
}

// pollHeld polls while the lock holds (lost nil: forever) and ctx lives.
func (b *Bot) pollHeld(ctx context.Context, lost func(context.Context) bool) {
	backoff := pollBackoffMin
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			b.log.Warn(what, "err", err, "retry_in", backoff.String())
			sleep(ctx, backoff)
			backoff = min(backoff*2, pollBackoffMax)
		}
	}
	for ctx.Err() == nil {
		if lost != nil && lost(ctx) {
			b.log.Warn("telegram poll lock lost; polling stops on this replica")
			return
		}
		offset, err := b.svc.TelegramOffset(ctx)
		if err != nil {
			fail("telegram offset unreadable", err)
			continue
		}
		ups, err := b.getUpdates(ctx, offset)
		if err != nil && ctx.Err() == nil {
			b.apiError("getUpdates", err)
		}
		if err != nil {
			var tgErr *tgbotapi.Error
			if errors.As(err, &tgErr) && tgErr.RetryAfter > 0 {
				sleep(ctx, time.Duration(tgErr.RetryAfter)*time.Second)
				continue
			}
			fail("telegram getUpdates failed", err)
			continue
		}
		backoff = pollBackoffMin
		for _, u := range ups {
			if _, err := b.Handle(ctx, u); err != nil {
				fail("telegram update not processed", err)
				break
			}
		}
	}
}

// getUpdates is one long poll. It runs in a goroutine so that ctx ends it at once (the library's
// call takes no context); the request itself ends by its own timeout.
func (b *Bot) getUpdates(ctx context.Context, offset int64) ([]tgbotapi.Update, error) {
	cfg := tgbotapi.UpdateConfig{Offset: int(offset), Limit: 100, Timeout: int(b.poll / time.Second),
		AllowedUpdates: []string{"message", "callback_query"}}
	type result struct {
		ups []tgbotapi.Update
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ups, err := b.api.GetUpdates(cfg)
		ch <- result{ups, b.scrub(err)}
	}()
	select {
	case r := <-ch:
		return r.ups, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
