package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The Telegram bot's state: processed update ids, the polling offset, conversation steps and
// link tokens (migration 00005).

func (t *sqlTx) BotChat(chatID string) (c recovery.BotChat, err error) {
	err = t.one("bot chat", "SELECT chat_id, state, ticket_id, updated_at FROM bot_chats WHERE chat_id = ?",
		func(r *sql.Rows) error {
			var updated sql.NullInt64
			err := r.Scan(&c.ChatID, &c.State, &c.TicketID, &updated)
			c.UpdatedAt = fromNanos(updated)
			return err
		}, chatID)
	return c, err
}

func (t *sqlTx) TelegramOffset() (int64, error) {
	var off int64
	err := t.one("telegram offset", "SELECT next_update_id FROM telegram_offset WHERE id = 1",
		func(r *sql.Rows) error { return r.Scan(&off) })
	if errors.Is(err, recovery.ErrNotFound) {
		return 0, nil
	}
	return off, err
}

func (t *sqlTx) TelegramLinkToken(hash string) (l recovery.TelegramLinkToken, err error) {
	err = t.one("telegram link token", "SELECT hash, account_id, created_at, expires_at, used_at FROM telegram_link_tokens WHERE hash = ?",
		func(r *sql.Rows) error {
			var created, expires, used sql.NullInt64
			err := r.Scan(&l.Hash, &l.AccountID, &created, &expires, &used)
			l.CreatedAt, l.ExpiresAt, l.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
			return err
		}, hash)
	return l, err
}

func (t *sqlTx) MarkTelegramUpdate(updateID int64, at time.Time) (bool, error) {
	var b binder
	ts := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("INSERT INTO telegram_updates (update_id, processed_at) VALUES (?, ?) ON CONFLICT (update_id) DO NOTHING", updateID, ts)
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark telegram update: %w", err)
	}
	return n == 1, nil
}

func (t *sqlTx) AdvanceTelegramOffset(offset int64) error {
	_, err := t.exec(`INSERT INTO telegram_offset (id, next_update_id) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET next_update_id = CASE WHEN excluded.next_update_id > telegram_offset.next_update_id
		THEN excluded.next_update_id ELSE telegram_offset.next_update_id END`, offset)
	if err != nil {
		return fmt.Errorf("sqlstore: write telegram offset: %w", err)
	}
	return nil
}

func (t *sqlTx) PruneTelegramUpdates(before time.Time) error {
	var b binder
	ts := b.time(before)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("DELETE FROM telegram_updates WHERE processed_at < ?", ts); err != nil {
		return fmt.Errorf("sqlstore: prune telegram updates: %w", err)
	}
	return nil
}

func (t *sqlTx) PutBotChat(c recovery.BotChat) error {
	var b binder
	updated := b.time(c.UpdatedAt)
	if b.err != nil {
		return b.err
	}
	_, err := t.exec(`INSERT INTO bot_chats (chat_id, state, ticket_id, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state, ticket_id = excluded.ticket_id, updated_at = excluded.updated_at`,
		c.ChatID, c.State, c.TicketID, updated)
	if err != nil {
		return fmt.Errorf("sqlstore: write bot chat: %w", err)
	}
	return nil
}

func (t *sqlTx) PutTelegramLinkToken(l recovery.TelegramLinkToken) error {
	var b binder
	created, expires, used := b.time(l.CreatedAt), b.time(l.ExpiresAt), b.time(l.UsedAt)
	if b.err != nil {
		return b.err
	}
	_, err := t.exec("INSERT INTO telegram_link_tokens (hash, account_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?)",
		l.Hash, l.AccountID, created, expires, used)
	if err != nil {
		return fmt.Errorf("sqlstore: write telegram link token: %w", err)
	}
	return nil
}

func (t *sqlTx) UseTelegramLinkToken(hash string, at time.Time) (bool, error) {
	var b binder
	ts := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("UPDATE telegram_link_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL", ts, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: use telegram link token: %w", err)
	}
	return n == 1, nil
}
