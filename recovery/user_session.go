package recovery

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// End-user session numbers (security.md: NIST AAL2).
const (
	UserSessionTTL  = 8 * time.Hour    // absolute lifetime of a signed-in session
	UserSessionIdle = 30 * time.Minute // a session unused this long has ended
	// UserSessionCodeTTL is how long a session that passed the password waits for its code.
	UserSessionCodeTTL = 10 * time.Minute
	// userSessionTouchEvery: LastSeenAt is written at most this often, so that every page view
	// is not a database write; the idle limit is therefore exact to within a minute.
	userSessionTouchEvery = time.Minute
)

// Session stages.
const (
	// StagePassword: the password was right and the account's 2FA code is still due; such a
	// session opens nothing but the code form.
	StagePassword = "password"
	// StageFull: signed in.
	StageFull = "full"
)

// UserSession is an end user's server-side session on the end-user pages. Only the hash of its
// id is stored; the id itself lives in the user's cookie.
type UserSession struct {
	IDHash     string // hashToken("user_session", id)
	AccountID  string
	Stage      string // StagePassword | StageFull
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// UserSessionToken is a new session as its owner's browser holds it. Token is the cookie value,
// returned once (256 random bits, base64url).
type UserSessionToken struct {
	Token     string
	AccountID string
	Stage     string
	ExpiresAt time.Time
}

func userSessionHash(token string) string { return hashToken("user_session", token) }

// newUserSession inserts a session of stage for the account and returns its token.
func newUserSession(tx Tx, accountID, stage string, now time.Time) (UserSessionToken, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return UserSessionToken{}, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	ttl := UserSessionTTL
	if stage == StagePassword {
		ttl = UserSessionCodeTTL
	}
	u := UserSession{IDHash: userSessionHash(token), AccountID: accountID, Stage: stage, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.InsertUserSession(u); err != nil {
		return UserSessionToken{}, err
	}
	return UserSessionToken{Token: token, AccountID: accountID, Stage: stage, ExpiresAt: u.ExpiresAt}, nil
}

// liveSession reads the session token names if it has neither expired nor idled out.
func liveSession(tx ReadTx, token string, now time.Time) (UserSession, bool, error) {
	if token == "" || len(token) > 128 {
		return UserSession{}, false, nil
	}
	u, err := tx.UserSession(userSessionHash(token))
	if errors.Is(err, ErrNotFound) {
		return UserSession{}, false, nil
	}
	if err != nil {
		return UserSession{}, false, err
	}
	if !now.Before(u.ExpiresAt) || now.Sub(u.LastSeenAt) >= UserSessionIdle {
		return u, false, nil
	}
	return u, true, nil
}

// UserSession returns the live session the token names and marks it used, or ErrUnauthorized
// when there is none (unknown, ended, expired, idle: the caller shows the sign-in page for all).
// A session that has run out is deleted.
func (s *Service) UserSession(ctx context.Context, token string) (UserSession, error) {
	now := s.now()
	var out UserSession
	err := s.update(ctx, func(tx Tx) (error, error) {
		u, ok, err := liveSession(tx, token, now)
		if err != nil {
			return nil, err
		}
		if !ok {
			if u.IDHash != "" {
				if _, err := tx.DeleteUserSession(u.IDHash); err != nil {
					return nil, err
				}
			}
			return ErrUnauthorized, nil
		}
		if now.Sub(u.LastSeenAt) >= userSessionTouchEvery {
			if err := tx.TouchUserSession(u.IDHash, now); err != nil {
				return nil, err
			}
			u.LastSeenAt = now
		}
		out = u
		return nil, nil
	})
	return out, err
}

// EndUserSession signs the session out. An unknown token is not an error (sign-out is idempotent).
func (s *Service) EndUserSession(ctx context.Context, actor Actor, token string) error {
	if token == "" || len(token) > 128 {
		return nil
	}
	now := s.now()
	return s.update(ctx, func(tx Tx) (error, error) {
		u, err := tx.UserSession(userSessionHash(token))
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if _, err := tx.DeleteUserSession(u.IDHash); err != nil {
			return nil, err
		}
		actor.Type, actor.ID = ActorEndUser, u.AccountID
		return nil, newAuditLog(tx, now, actor).add("account.signed_out", "account", u.AccountID, map[string]any{"stage": u.Stage})
	})
}
