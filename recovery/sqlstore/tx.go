package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// sqlTx implements recovery.Tx (and so ReadTx) over one transaction. The SQL is written once
// for both dialects with ? placeholders, which gorm rewrites for PostgreSQL; rows are scanned by
// hand, without gorm's reflection, because these statements are the verify hot path.
type sqlTx struct {
	db      *gorm.DB // bound to the transaction
	ctx     context.Context
	dialect string
	// raw is the write batch's own transaction, for statements that skip gorm: gorm's statement
	// building cost more than SQLite's execution on the verify hot path, and on PostgreSQL it
	// ran in the one writer goroutine that every write waits for. The ? placeholders are
	// rewritten for PostgreSQL (pgSQL). nil in Views, which go through gorm.
	raw gorm.ConnPool
	// head caches the audit chain's head for the rest of a write batch: the batch's transaction
	// holds the database's write lock (SQLite) or the audit advisory lock, taken as its first
	// statement (PostgreSQL), so no one else can append meanwhile. nil in Views, which cannot
	// call AuditHead or AppendAudit (ReadTx has neither).
	head *auditHead
}

// auditHead is the last event's seq and hash as this transaction last wrote or read it.
type auditHead struct {
	valid bool
	seq   int64
	hash  string
}

var _ recovery.Tx = (*sqlTx)(nil)

// auditLockID is the PostgreSQL transaction advisory lock that serializes appends to the audit
// chain ("rd/audit" in ASCII). Taken by the writer as each batch's first statement, released at
// commit or rollback.
const auditLockID int64 = 0x72642f6175646974

// exec runs a statement after checking the caller's context (the SQLite writer's statements
// run under a context that never ends; see writer.run).
func (t *sqlTx) exec(q string, args ...any) (int64, error) {
	if err := t.ctx.Err(); err != nil {
		return 0, err
	}
	if t.raw != nil {
		r, err := t.raw.ExecContext(context.Background(), t.rawSQL(q), args...)
		if err != nil {
			return 0, err
		}
		return r.RowsAffected()
	}
	r := t.db.Exec(q, args...)
	return r.RowsAffected, r.Error
}

func (t *sqlTx) query(q string, args ...any) (*sql.Rows, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if t.raw != nil {
		return t.raw.QueryContext(context.Background(), t.rawSQL(q), args...)
	}
	return t.db.Raw(q, args...).Rows()
}

// rawSQL is q for the raw transaction: PostgreSQL numbers its placeholders.
func (t *sqlTx) rawSQL(q string) string {
	if t.dialect != DialectPostgres {
		return q
	}
	return pgSQL(q)
}

// pgSQL rewrites the ? placeholders of q as $1, $2, … in order, as gorm does. The SQL of this
// package has no ? inside a literal or an identifier, and no operator spelled with one.
func pgSQL(q string) string {
	n := strings.Count(q, "?")
	if n == 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 2*n)
	k := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		k++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(k))
	}
	return b.String()
}

// one reads the single row q selects into scan, or reports recovery.ErrNotFound.
func (t *sqlTx) one(what, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := t.query(q, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: read %s: %w", what, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlstore: read %s: %w", what, err)
		}
		return fmt.Errorf("sqlstore: %s: %w", what, recovery.ErrNotFound)
	}
	if err := scan(rows); err != nil {
		return fmt.Errorf("sqlstore: read %s: %w", what, err)
	}
	return rows.Close()
}

// all reads every row q selects, appending scan's results.
func all[T any](t *sqlTx, what, q string, scan func(*sql.Rows) (T, error), args ...any) ([]T, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read %s: %w", what, err)
	}
	return out, nil
}

// Times are stored as Unix nanoseconds, the zero time as NULL.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

var errTimeRange = errors.New("sqlstore: time outside the years 1678-2262 cannot be stored")

// binder converts values for a statement's arguments and keeps the first error, so that a
// statement's argument list stays one readable expression.
type binder struct{ err error }

func (b *binder) time(v time.Time) any {
	if v.IsZero() {
		return nil
	}
	if v.Before(minTime) || v.After(maxTime) {
		b.err = errTimeRange
		return nil
	}
	return v.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Accounts.

const accountCols = "id, email, email_key, display_name, phone, staff, password_hash, facts_sealed, email_changed_at, phone_changed_at, created_at, updated_at"

func scanAccount(r *sql.Rows) (recovery.Account, error) {
	var a recovery.Account
	var emailChanged, phoneChanged, created, updated sql.NullInt64
	err := r.Scan(&a.ID, &a.Email, &a.EmailKey, &a.DisplayName, &a.Phone, &a.Staff, &a.PasswordHash, &a.FactsSealed,
		&emailChanged, &phoneChanged, &created, &updated)
	a.EmailChangedAt, a.PhoneChangedAt = fromNanos(emailChanged), fromNanos(phoneChanged)
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	return a, err
}

func (t *sqlTx) Account(id string) (a recovery.Account, err error) {
	err = t.one("account", "SELECT "+accountCols+" FROM accounts WHERE id = ?", func(r *sql.Rows) (err error) {
		a, err = scanAccount(r)
		return err
	}, id)
	return a, err
}

func (t *sqlTx) AccountByEmail(emailKey string) (a recovery.Account, err error) {
	err = t.one("account", "SELECT "+accountCols+" FROM accounts WHERE email_key = ?", func(r *sql.Rows) (err error) {
		a, err = scanAccount(r)
		return err
	}, emailKey)
	return a, err
}

func (t *sqlTx) Accounts() ([]recovery.Account, error) {
	return all(t, "accounts", "SELECT "+accountCols+" FROM accounts ORDER BY id", scanAccount)
}

// PutAccount inserts or updates by ID. On PostgreSQL the statement runs in a savepoint: a
// unique violation would otherwise abort the whole transaction, while the domain goes on (it
// records the refusal) after ErrEmailTaken. SQLite aborts only the failing statement.
func (t *sqlTx) PutAccount(a recovery.Account) error {
	var b binder
	args := []any{a.ID, a.Email, a.EmailKey, a.DisplayName, a.Phone, a.Staff, a.PasswordHash, a.FactsSealed,
		b.time(a.EmailChangedAt), b.time(a.PhoneChangedAt), b.time(a.CreatedAt), b.time(a.UpdatedAt)}
	if b.err != nil {
		return b.err
	}
	const q = "INSERT INTO accounts (" + accountCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_key = excluded.email_key, " +
		"display_name = excluded.display_name, phone = excluded.phone, staff = excluded.staff, " +
		"password_hash = excluded.password_hash, facts_sealed = excluded.facts_sealed, " +
		"email_changed_at = excluded.email_changed_at, phone_changed_at = excluded.phone_changed_at, " +
		"created_at = excluded.created_at, updated_at = excluded.updated_at"
	pg := t.dialect == DialectPostgres
	if pg {
		if _, err := t.exec("SAVEPOINT put_account"); err != nil {
			return fmt.Errorf("sqlstore: write account: %w", err)
		}
	}
	_, err := t.exec(q, args...)
	if err != nil {
		if pg {
			if _, rerr := t.exec("ROLLBACK TO SAVEPOINT put_account"); rerr != nil {
				return fmt.Errorf("sqlstore: write account: %w", errors.Join(err, rerr))
			}
		}
		if emailTaken(err) {
			return fmt.Errorf("sqlstore: write account: %w", recovery.ErrEmailTaken)
		}
		return fmt.Errorf("sqlstore: write account: %w", err)
	}
	if pg {
		if _, err := t.exec("RELEASE SAVEPOINT put_account"); err != nil {
			return fmt.Errorf("sqlstore: write account: %w", err)
		}
	}
	return nil
}

// emailTaken reports a unique violation of accounts.email_key.
func emailTaken(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique && strings.Contains(se.Error(), "accounts.email_key")
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == "accounts_email_key_uq"
	}
	return false
}

// Factors.

const factorCols = "account_id, state, secret_sealed, enrolled_at, last_step, pending_sealed, pending_expires_at, " +
	"failures, blocked_until, code_failures, code_blocked_until, hold_until, updated_at"

func scanFactor(r *sql.Rows) (recovery.Factor, error) {
	var f recovery.Factor
	var state string
	var enrolled, pendingExpires, blocked, codeBlocked, hold, updated sql.NullInt64
	err := r.Scan(&f.AccountID, &state, &f.SecretSealed, &enrolled, &f.LastStep, &f.PendingSealed, &pendingExpires,
		&f.Failures, &blocked, &f.CodeFailures, &codeBlocked, &hold, &updated)
	f.State = recovery.FactorState(state)
	f.EnrolledAt, f.PendingExpiresAt, f.BlockedUntil = fromNanos(enrolled), fromNanos(pendingExpires), fromNanos(blocked)
	f.CodeBlockedUntil, f.HoldUntil, f.UpdatedAt = fromNanos(codeBlocked), fromNanos(hold), fromNanos(updated)
	return f, err
}

func (t *sqlTx) Factor(accountID string) (f recovery.Factor, err error) {
	err = t.one("factor", "SELECT "+factorCols+" FROM factors WHERE account_id = ?", func(r *sql.Rows) (err error) {
		f, err = scanFactor(r)
		return err
	}, accountID)
	return f, err
}

// LockFactor reads the factor with a row lock on PostgreSQL (SELECT ... FOR UPDATE). On SQLite
// a plain read is enough: the writer runs one transaction at a time and BEGIN IMMEDIATE holds
// the database's write lock from the start.
func (t *sqlTx) LockFactor(accountID string) (f recovery.Factor, err error) {
	q := "SELECT " + factorCols + " FROM factors WHERE account_id = ?"
	if t.dialect == DialectPostgres {
		q += " FOR UPDATE"
	}
	err = t.one("factor", q, func(r *sql.Rows) (err error) {
		f, err = scanFactor(r)
		return err
	}, accountID)
	return f, err
}

func (t *sqlTx) Factors() ([]recovery.Factor, error) {
	return all(t, "factors", "SELECT "+factorCols+" FROM factors ORDER BY account_id", scanFactor)
}

// SealKeyIDs reads the key-id prefix of every sealed value in one scan.
func (t *sqlTx) SealKeyIDs() ([]string, error) {
	prefix := "substr(v, 1, instr(v, ':') - 1)"
	if t.dialect == DialectPostgres {
		prefix = "split_part(v, ':', 1)"
	}
	return all(t, "seal key ids", "SELECT DISTINCT "+prefix+" FROM ("+
		"SELECT secret_sealed AS v FROM factors UNION ALL SELECT pending_sealed FROM factors "+
		"UNION ALL SELECT facts_sealed FROM accounts "+
		"UNION ALL SELECT body_sealed FROM notices WHERE state = 'queued') sealed WHERE v <> '' ORDER BY 1",
		func(r *sql.Rows) (string, error) {
			var id string
			err := r.Scan(&id)
			return id, err
		})
}

func (t *sqlTx) PutFactor(f recovery.Factor) error {
	var b binder
	args := []any{f.AccountID, string(f.State), f.SecretSealed, b.time(f.EnrolledAt), f.LastStep, f.PendingSealed,
		b.time(f.PendingExpiresAt), f.Failures, b.time(f.BlockedUntil), f.CodeFailures, b.time(f.CodeBlockedUntil),
		b.time(f.HoldUntil), b.time(f.UpdatedAt)}
	if b.err != nil {
		return b.err
	}
	const q = "INSERT INTO factors (" + factorCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (account_id) DO UPDATE SET state = excluded.state, secret_sealed = excluded.secret_sealed, " +
		"enrolled_at = excluded.enrolled_at, last_step = excluded.last_step, pending_sealed = excluded.pending_sealed, " +
		"pending_expires_at = excluded.pending_expires_at, failures = excluded.failures, " +
		"blocked_until = excluded.blocked_until, code_failures = excluded.code_failures, " +
		"code_blocked_until = excluded.code_blocked_until, hold_until = excluded.hold_until, updated_at = excluded.updated_at"
	if _, err := t.exec(q, args...); err != nil {
		return fmt.Errorf("sqlstore: write factor: %w", err)
	}
	return nil
}

// ConsumeStep is the replay guard: one conditional UPDATE, so that of two transactions with the
// same step only one can see a row affected, on any replica.
func (t *sqlTx) ConsumeStep(accountID string, step int64, at time.Time) (bool, error) {
	var b binder
	updated := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("UPDATE factors SET last_step = ?, updated_at = ? WHERE account_id = ? AND last_step < ?",
		step, updated, accountID, step)
	if err != nil {
		return false, fmt.Errorf("sqlstore: consume step: %w", err)
	}
	return n == 1, nil
}

// Recovery codes.

const codeCols = "id, account_id, hash, created_at, used_at"

func scanCode(r *sql.Rows) (recovery.RecoveryCode, error) {
	var c recovery.RecoveryCode
	var created, used sql.NullInt64
	err := r.Scan(&c.ID, &c.AccountID, &c.Hash, &created, &used)
	c.CreatedAt, c.UsedAt = fromNanos(created), fromNanos(used)
	return c, err
}

func (t *sqlTx) RecoveryCodes(accountID string) ([]recovery.RecoveryCode, error) {
	return all(t, "recovery codes", "SELECT "+codeCols+" FROM recovery_codes WHERE account_id = ? AND used_at IS NULL ORDER BY id",
		scanCode, accountID)
}

// ReplaceRecoveryCodes deletes all of the account's codes, used or not, and inserts codes under
// accountID. IDs are assigned by the database; the codes' ID and AccountID fields are ignored.
func (t *sqlTx) ReplaceRecoveryCodes(accountID string, codes []recovery.RecoveryCode) error {
	if _, err := t.exec("DELETE FROM recovery_codes WHERE account_id = ?", accountID); err != nil {
		return fmt.Errorf("sqlstore: delete recovery codes: %w", err)
	}
	for _, c := range codes {
		var b binder
		created, used := b.time(c.CreatedAt), b.time(c.UsedAt)
		if b.err != nil {
			return b.err
		}
		if _, err := t.exec("INSERT INTO recovery_codes (account_id, hash, created_at, used_at) VALUES (?, ?, ?, ?)",
			accountID, c.Hash, created, used); err != nil {
			return fmt.Errorf("sqlstore: write recovery code: %w", err)
		}
	}
	return nil
}

// UseRecoveryCode is one conditional UPDATE: of two transactions spending the same code only
// one sees a row affected.
func (t *sqlTx) UseRecoveryCode(id int64, at time.Time) (bool, error) {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return false, b.err
	}
	n, err := t.exec("UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL", used, id)
	if err != nil {
		return false, fmt.Errorf("sqlstore: use recovery code: %w", err)
	}
	return n == 1, nil
}

// API keys.

const apiKeyCols = "id, name, hash, created_at, revoked_at"

func scanAPIKey(r *sql.Rows) (recovery.APIKey, error) {
	var k recovery.APIKey
	var created, revoked sql.NullInt64
	err := r.Scan(&k.ID, &k.Name, &k.Hash, &created, &revoked)
	k.CreatedAt, k.RevokedAt = fromNanos(created), fromNanos(revoked)
	return k, err
}

func (t *sqlTx) APIKey(id string) (k recovery.APIKey, err error) {
	err = t.one("api key", "SELECT "+apiKeyCols+" FROM api_keys WHERE id = ?", func(r *sql.Rows) (err error) {
		k, err = scanAPIKey(r)
		return err
	}, id)
	return k, err
}

// APIKeys lists the keys oldest first.
func (t *sqlTx) APIKeys() ([]recovery.APIKey, error) {
	return all(t, "api keys", "SELECT "+apiKeyCols+" FROM api_keys ORDER BY COALESCE(created_at, 0), id", scanAPIKey)
}

func (t *sqlTx) PutAPIKey(k recovery.APIKey) error {
	var b binder
	created, revoked := b.time(k.CreatedAt), b.time(k.RevokedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO api_keys ("+apiKeyCols+") VALUES (?, ?, ?, ?, ?) "+
		"ON CONFLICT (id) DO UPDATE SET name = excluded.name, hash = excluded.hash, "+
		"created_at = excluded.created_at, revoked_at = excluded.revoked_at",
		k.ID, k.Name, k.Hash, created, revoked); err != nil {
		return fmt.Errorf("sqlstore: write api key: %w", err)
	}
	return nil
}

// IP throttles.

func (t *sqlTx) IPThrottle(ip string) (th recovery.IPThrottle, err error) {
	err = t.one("ip throttle", "SELECT ip, bucket_start, buckets, blocked_until FROM ip_throttles WHERE ip = ?", func(r *sql.Rows) error {
		var start, blocked sql.NullInt64
		var buckets string
		if err := r.Scan(&th.IP, &start, &buckets, &blocked); err != nil {
			return err
		}
		th.BucketStart, th.BlockedUntil = fromNanos(start), fromNanos(blocked)
		th.Buckets, err = decodeInts(buckets)
		return err
	}, ip)
	return th, err
}

func (t *sqlTx) PutIPThrottle(th recovery.IPThrottle) error {
	var b binder
	start, blocked := b.time(th.BucketStart), b.time(th.BlockedUntil)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO ip_throttles (ip, bucket_start, buckets, blocked_until) VALUES (?, ?, ?, ?) "+
		"ON CONFLICT (ip) DO UPDATE SET bucket_start = excluded.bucket_start, buckets = excluded.buckets, "+
		"blocked_until = excluded.blocked_until",
		th.IP, start, encodeInts(th.Buckets), blocked); err != nil {
		return fmt.Errorf("sqlstore: write ip throttle: %w", err)
	}
	return nil
}

// encodeInts stores a short list of counts as "3,0,1" ("" when empty).
func encodeInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func decodeInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("bad count list %q", s)
		}
		out[i] = n
	}
	return out, nil
}

// Re-enrollment tokens.

func (t *sqlTx) ReenrollToken(hash string) (rt recovery.ReenrollToken, err error) {
	err = t.one("re-enrollment token", "SELECT hash, account_id, ticket_id, created_at, expires_at, used_at FROM reenroll_tokens WHERE hash = ?",
		func(r *sql.Rows) error {
			var created, expires, used sql.NullInt64
			err := r.Scan(&rt.Hash, &rt.AccountID, &rt.TicketID, &created, &expires, &used)
			rt.CreatedAt, rt.ExpiresAt, rt.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
			return err
		}, hash)
	return rt, err
}

func (t *sqlTx) PutReenrollToken(rt recovery.ReenrollToken) error {
	var b binder
	created, expires, used := b.time(rt.CreatedAt), b.time(rt.ExpiresAt), b.time(rt.UsedAt)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("INSERT INTO reenroll_tokens (hash, account_id, ticket_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (hash) DO UPDATE SET account_id = excluded.account_id, ticket_id = excluded.ticket_id, "+
		"created_at = excluded.created_at, expires_at = excluded.expires_at, used_at = excluded.used_at",
		rt.Hash, rt.AccountID, rt.TicketID, created, expires, used); err != nil {
		return fmt.Errorf("sqlstore: write re-enrollment token: %w", err)
	}
	return nil
}

func (t *sqlTx) UseReenrollTokens(accountID string, at time.Time) error {
	var b binder
	used := b.time(at)
	if b.err != nil {
		return b.err
	}
	if _, err := t.exec("UPDATE reenroll_tokens SET used_at = ? WHERE account_id = ? AND used_at IS NULL", used, accountID); err != nil {
		return fmt.Errorf("sqlstore: use re-enrollment tokens: %w", err)
	}
	return nil
}

// Audit events.

const auditCols = `seq, "time", actor_type, actor_id, action, target_type, target_id, ticket_id, reason, details, request_id, prev_hash, hash`

// AuditHead returns the last event's seq and hash, or 0 and recovery.ZeroHash. It is part of
// Tx only, and every Tx is a writer batch's, which already holds what serializes appends
// (SQLite's write lock; on PostgreSQL the chain's transaction advisory lock, taken as the batch's
// first statement, so that under READ COMMITTED the read sees the previous holder's commit): it
// reads the head once per batch and then answers from the batch's cache.
func (t *sqlTx) AuditHead() (seq int64, hash string, err error) {
	if t.head.valid {
		return t.head.seq, t.head.hash, nil
	}
	err = t.one("audit head", "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", func(r *sql.Rows) error {
		return r.Scan(&seq, &hash)
	})
	if errors.Is(err, recovery.ErrNotFound) {
		seq, hash, err = 0, recovery.ZeroHash, nil
	}
	if err == nil {
		*t.head = auditHead{valid: true, seq: seq, hash: hash}
	}
	return seq, hash, err
}

// AppendAudit inserts the event as given: Details as its exact bytes, TicketID "" as NULL. A
// seq already present is a primary-key violation.
func (t *sqlTx) AppendAudit(e recovery.Event) error {
	var b binder
	at := b.time(e.Time)
	if b.err != nil {
		return b.err
	}
	var ticket any
	if e.TicketID != "" {
		ticket = e.TicketID
	}
	if _, err := t.exec("INSERT INTO audit_events ("+auditCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.Seq, at, e.ActorType, e.ActorID, e.Action, e.TargetType, e.TargetID, ticket, e.Reason,
		string(e.Details), e.RequestID, e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("sqlstore: append audit event: %w", err)
	}
	*t.head = auditHead{valid: true, seq: e.Seq, hash: e.Hash}
	return nil
}

func scanEvent(r *sql.Rows) (recovery.Event, error) {
	var e recovery.Event
	var at sql.NullInt64
	var ticket sql.NullString
	var details string
	err := r.Scan(&e.Seq, &at, &e.ActorType, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &ticket, &e.Reason,
		&details, &e.RequestID, &e.PrevHash, &e.Hash)
	e.Time, e.TicketID = fromNanos(at), ticket.String
	if details != "" {
		e.Details = json.RawMessage(details)
	}
	return e, err
}

// AuditEvents returns up to limit events with seq > after, in seq order; none when limit ≤ 0.
func (t *sqlTx) AuditEvents(after int64, limit int) ([]recovery.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	return all(t, "audit events", "SELECT "+auditCols+" FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
		scanEvent, after, limit)
}
