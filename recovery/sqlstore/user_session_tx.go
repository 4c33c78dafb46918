package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// End-user sessions and the account password counter.

const userSessionCols = "id_hash, account_id, stage, created_at, last_seen_at, expires_at"

func scanUserSession(r *sql.Rows) (recovery.UserSession, error) {
	var u recovery.UserSession
	var created, seen, expires sql.NullInt64
	err := r.Scan(&u.IDHash, &u.AccountID, &u.Stage, &created, &seen, &expires)
	u.CreatedAt, u.LastSeenAt, u.ExpiresAt = fromNanos(created), fromNanos(seen), fromNanos(expires)
	return u, err
}

func (t *sqlTx) UserSession(idHash string) (u recovery.UserSession, err error) {
	err = t.one("user session", "SELECT "+userSessionCols+" FROM user_sessions WHERE id_hash = ?", func(r *sql.Rows) (err error) {
		u, err = scanUserSession(r)
		return err
	}, idHash)
	return u, err
}

func (t *sqlTx) InsertUserSession(u recovery.UserSession) error {
	var b binder
	args := []any{u.IDHash, u.AccountID, u.Stage, b.time(u.CreatedAt), b.time(u.LastSeenAt), b.time(u.ExpiresAt)}
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO user_sessions ("+userSessionCols+") VALUES (?, ?, ?, ?, ?, ?)", args...); err != nil {
		return fmt.Errorf("sqlstore: write user session: %w", err)
	}
	return nil
}

func (t *sqlTx) TouchUserSession(idHash string, at time.Time) error {
	var b binder
	v := b.time(at)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("UPDATE user_sessions SET last_seen_at = ? WHERE id_hash = ?", v, idHash); err != nil {
		return fmt.Errorf("sqlstore: touch user session: %w", err)
	}
	return nil
}

func (t *sqlTx) DeleteUserSession(idHash string) (bool, error) {
	n, err := t.exec("DELETE FROM user_sessions WHERE id_hash = ?", idHash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: end user session: %w", err)
	}
	return n > 0, nil
}

func (t *sqlTx) signInThrottle(accountID string, lock bool) (recovery.AccountSignInThrottle, error) {
	th := recovery.AccountSignInThrottle{AccountID: accountID}
	q := "SELECT failures, blocked_until FROM account_sign_in WHERE account_id = ?"
	if lock && t.dialect == DialectPostgres {
		q += " FOR UPDATE"
	}
	err := t.one("account sign-in", q, func(r *sql.Rows) error {
		var blocked sql.NullInt64
		err := r.Scan(&th.Failures, &blocked)
		th.BlockedUntil = fromNanos(blocked)
		return err
	}, accountID)
	if errors.Is(err, recovery.ErrNotFound) {
		return th, nil
	}
	return th, err
}

func (t *sqlTx) AccountSignInThrottle(accountID string) (recovery.AccountSignInThrottle, error) {
	return t.signInThrottle(accountID, false)
}

// LockAccountSignInThrottle makes sure the row exists (so that PostgreSQL has a row to lock;
// two first failures then queue on it instead of both reading zero), then reads it FOR UPDATE.
// On SQLite the writer's immediate transaction already excludes every other writer.
func (t *sqlTx) LockAccountSignInThrottle(accountID string) (recovery.AccountSignInThrottle, error) {
	if _, err := t.exec("INSERT INTO account_sign_in (account_id, failures) VALUES (?, 0) ON CONFLICT (account_id) DO NOTHING", accountID); err != nil {
		return recovery.AccountSignInThrottle{}, fmt.Errorf("sqlstore: write account sign-in: %w", err)
	}
	return t.signInThrottle(accountID, true)
}

func (t *sqlTx) PutAccountSignInThrottle(th recovery.AccountSignInThrottle) error {
	var b binder
	blocked := b.time(th.BlockedUntil)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO account_sign_in (account_id, failures, blocked_until) VALUES (?, ?, ?) "+
		"ON CONFLICT (account_id) DO UPDATE SET failures = excluded.failures, blocked_until = excluded.blocked_until",
		th.AccountID, th.Failures, blocked); err != nil {
		return fmt.Errorf("sqlstore: write account sign-in: %w", err)
	}
	return nil
}
