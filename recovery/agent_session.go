package recovery

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// Agent session numbers (security.md "agent session").
const (
	// AgentSessionIdle ends a session nobody used for 30 minutes.
	AgentSessionIdle = 30 * time.Minute
	// AgentSessionMax ends every session 12 hours after sign-in, used or not.
	AgentSessionMax = 12 * time.Hour
	// AgentSignInPending is how long a session that passed the password but not yet the TOTP
	// (or the first enrollment) lives: long enough to open the app or scan a QR code.
	AgentSignInPending = 10 * time.Minute
	// agentSessionTouch is the granularity of LastSeenAt: a request writes it only when the
	// stored value is older, so that reading pages does not write on every request. The idle
	// limit is therefore enforced up to one minute early, never late.
	agentSessionTouch = time.Minute
)

// AgentSession is a server-side console session. The session id itself (256 random bits) is
// only in the agent's cookie; the database keeps hashToken("agent_session", id).
type AgentSession struct {
	IDHash  string
	AgentID string
	// Epoch is the agent's Epoch when the session started; a different current epoch (disable,
	// role change, 2FA reset, new setup link) ends the session.
	Epoch int64
	// Verified is true once the agent's own TOTP was checked (or the first enrollment confirmed);
	// before that the session only admits the TOTP and enrollment pages.
	Verified   bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	// StepUpAt is when the agent last entered their own TOTP in this session: at sign-in or in a
	// step-up form. Approve, deny and execute take it as their proof (at most 5 minutes old).
	StepUpAt time.Time
}

// live reports whether the session still admits requests at now for agent a.
func (ss AgentSession) live(a Agent, now time.Time) bool {
	if a.Disabled || a.ID != ss.AgentID || a.Epoch != ss.Epoch {
		return false
	}
	if !now.Before(ss.CreatedAt.Add(AgentSessionMax)) || !now.Before(ss.LastSeenAt.Add(AgentSessionIdle)) {
		return false
	}
	return ss.Verified || now.Before(ss.CreatedAt.Add(AgentSignInPending))
}

// newAgentSessionToken returns a fresh 256-bit session id and its stored hash.
func newAgentSessionToken() (token, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	return token, hashAgentSession(token), nil
}

func hashAgentSession(token string) string { return hashToken("agent_session", token) }

// StartAgentSession checks the agent's e-mail and password (AgentSignIn: throttled, audited, an
// unknown e-mail and a wrong password give the same ErrUnauthorized) and starts a session that
// still needs the agent's TOTP. The previous session of the browser (oldToken, may be "") is
// ended, and the new session has a new id: an id planted before sign-in is worthless after it.
func (s *Service) StartAgentSession(ctx context.Context, actor Actor, email, password, oldToken string) (string, Agent, error) {
	a, err := s.AgentSignIn(ctx, actor, email, password)
	if err != nil {
		return "", Agent{}, err
	}
	token, hash, err := newAgentSessionToken()
	if err != nil {
		return "", Agent{}, err
	}
	now := s.now()
	err = s.store.Update(ctx, func(tx Tx) error {
		if oldToken != "" {
			if err := tx.DeleteAgentSession(hashAgentSession(oldToken)); err != nil {
				return err
			}
		}
		return tx.InsertAgentSession(AgentSession{IDHash: hash, AgentID: a.ID, Epoch: a.Epoch, CreatedAt: now, LastSeenAt: now})
	})
	if err != nil {
		return "", Agent{}, err
	}
	return token, a, nil
}

// AgentSession returns the live session of token and its agent as they are now. A session that
// is unknown, idle for AgentSessionIdle, older than AgentSessionMax, unverified for longer than
// AgentSignInPending, of a disabled agent or of an older epoch gives ErrUnauthorized (and is
// deleted). LastSeenAt advances at most once a minute.
func (s *Service) AgentSession(ctx context.Context, token string) (AgentSession, Agent, error) {
	now := s.now()
	hash := hashAgentSession(token)
	var ss AgentSession
	var a Agent
	dead := false
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if ss, err = tx.AgentSession(hash); err != nil {
			return err
		}
		if a, err = tx.Agent(ss.AgentID); err != nil {
			return err
		}
		dead = !ss.live(a, now)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return AgentSession{}, Agent{}, ErrUnauthorized
	}
	if err != nil {
		return AgentSession{}, Agent{}, err
	}
	if dead {
		if err := s.store.Update(ctx, func(tx Tx) error { return tx.DeleteAgentSession(hash) }); err != nil {
			return AgentSession{}, Agent{}, err
		}
		return AgentSession{}, Agent{}, ErrUnauthorized
	}
	if now.Sub(ss.LastSeenAt) >= agentSessionTouch {
		ss.LastSeenAt = now
		if err := s.store.Update(ctx, func(tx Tx) error { return tx.UpdateAgentSession(ss) }); err != nil {
			return AgentSession{}, Agent{}, err
		}
	}
	return ss, a, nil
}

// pendingSession returns the live, not yet verified session of token.
func (s *Service) pendingSession(ctx context.Context, token string) (AgentSession, Agent, error) {
	ss, a, err := s.AgentSession(ctx, token)
	if err != nil {
		return AgentSession{}, Agent{}, err
	}
	if ss.Verified {
		return AgentSession{}, Agent{}, ErrConflict
	}
	return ss, a, nil
}

// CompleteAgentSignIn checks the agent's own TOTP code for a session that passed the password
// (the core's replay guard, counting and backoff apply) and replaces the session with a verified
// one under a new id, which it returns. The code also counts as a step-up.
func (s *Service) CompleteAgentSignIn(ctx context.Context, actor Actor, token, code string) (string, error) {
	ss, a, err := s.pendingSession(ctx, token)
	if err != nil {
		return "", err
	}
	actor.Type, actor.ID = ActorAgent, a.ID
	at, err := s.AgentStepUp(ctx, actor, a.ID, code)
	if err != nil {
		return "", err
	}
	return s.verifySession(ctx, actor, ss, at, "totp")
}

// ConfirmAgentSessionEnrollment confirms the first TOTP enrollment of an agent whose session
// passed the password (AgentBeginEnrollment shows the QR) and replaces the session with a
// verified one under a new id, which it returns.
func (s *Service) ConfirmAgentSessionEnrollment(ctx context.Context, actor Actor, token, code string) (string, error) {
	ss, a, err := s.pendingSession(ctx, token)
	if err != nil {
		return "", err
	}
	actor.Type, actor.ID = ActorAgent, a.ID
	if _, err := s.AgentConfirmEnrollment(ctx, actor, a.ID, code); err != nil {
		return "", err
	}
	return s.verifySession(ctx, actor, ss, s.now(), "enrollment")
}

// verifySession swaps the pending session for a verified one with a new id, if the pending one
// is still there (a concurrent sign-out or a second use of the same pending session loses).
func (s *Service) verifySession(ctx context.Context, actor Actor, old AgentSession, stepUpAt time.Time, method string) (string, error) {
	token, hash, err := newAgentSessionToken()
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.update(ctx, func(tx Tx) (error, error) {
		cur, err := tx.AgentSession(old.IDHash)
		if errors.Is(err, ErrNotFound) {
			return ErrUnauthorized, nil
		}
		if err != nil {
			return nil, err
		}
		if cur.Verified {
			return ErrConflict, nil
		}
		a, err := tx.Agent(cur.AgentID)
		if err != nil {
			return nil, err
		}
		if !cur.live(a, now) {
			return ErrUnauthorized, tx.DeleteAgentSession(old.IDHash)
		}
		if err := tx.DeleteAgentSession(old.IDHash); err != nil {
			return nil, err
		}
		ns := AgentSession{IDHash: hash, AgentID: a.ID, Epoch: a.Epoch, Verified: true, CreatedAt: cur.CreatedAt,
			LastSeenAt: now, StepUpAt: stepUpAt}
		if err := tx.InsertAgentSession(ns); err != nil {
			return nil, err
		}
		al := newAuditLog(tx, now, actor)
		return nil, al.append(entry{Action: "agent.session_started", TargetType: "agent", TargetID: a.ID,
			Details: map[string]any{"method": method}})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// AgentSessionStepUp checks the agent's own TOTP code (replay guard, counting, backoff) for a
// verified session and records the time in the session as its step-up proof.
func (s *Service) AgentSessionStepUp(ctx context.Context, actor Actor, token, code string) (time.Time, error) {
	ss, a, err := s.AgentSession(ctx, token)
	if err != nil {
		return time.Time{}, err
	}
	if !ss.Verified {
		return time.Time{}, ErrUnauthorized
	}
	actor.Type, actor.ID = ActorAgent, a.ID
	at, err := s.AgentStepUp(ctx, actor, a.ID, code)
	if err != nil {
		return time.Time{}, err
	}
	err = s.update(ctx, func(tx Tx) (error, error) {
		cur, err := tx.AgentSession(ss.IDHash)
		if errors.Is(err, ErrNotFound) {
			return ErrUnauthorized, nil
		}
		if err != nil {
			return nil, err
		}
		cur.StepUpAt = at
		return nil, tx.UpdateAgentSession(cur)
	})
	return at, err
}

// EndAgentSession signs the session of token out (audited when it belonged to an agent). An
// unknown or already ended session is not an error: signing out twice is harmless.
func (s *Service) EndAgentSession(ctx context.Context, actor Actor, token string) error {
	if token == "" {
		return nil
	}
	now := s.now()
	hash := hashAgentSession(token)
	return s.store.Update(ctx, func(tx Tx) error {
		ss, err := tx.AgentSession(hash)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteAgentSession(hash); err != nil {
			return err
		}
		actor.Type, actor.ID = ActorAgent, ss.AgentID
		return newAuditLog(tx, now, actor).append(entry{Action: "agent.signed_out", TargetType: "agent", TargetID: ss.AgentID})
	})
}

// PruneAgentSessions deletes sessions that can no longer be used (past the absolute or idle
// limit); serve may call it from its periodic tick. It reports how many went.
func (s *Service) PruneAgentSessions(ctx context.Context) (int64, error) {
	now := s.now()
	var n int64
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		n, err = tx.DeleteStaleAgentSessions(now.Add(-AgentSessionMax), now.Add(-AgentSessionIdle))
		return err
	})
	return n, err
}

// Now is the service's clock (Options.Now): adapters use it to show ages and deadlines
// consistently with the decisions the domain takes.
func (s *Service) Now() time.Time { return s.now() }
