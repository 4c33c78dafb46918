package recovery

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Roles, each allowed what the one before it may do (design.md "Roles"): an agent works tickets
// and requests resets, a supervisor also approves, denies and executes them, an admin also
// unfreezes, acts on staff accounts and manages agents.
const (
	RoleAgent      = "agent"
	RoleSupervisor = "supervisor"
	RoleAdmin      = "admin"
)

// Purposes of setup links, as the audit names them.
const (
	SetupPurposeNewAgent   = "new_agent"   // issued with a new agent
	SetupPurposeReset      = "reset"       // re-issued by an admin: password and TOTP were cleared
	SetupPurposeFirstAdmin = "first_admin" // printed by serve on a database without agents
)

// Agent numbers (security.md).
const (
	// SetupLinkTTL is how long a setup link works: like the re-enrollment link, 24 h.
	SetupLinkTTL = 24 * time.Hour
	// Agent passwords: NIST SP 800-63B asks for at least 8 and at least 64 allowed; support staff
	// hold privileged accounts, so the minimum is 12. The maximum bounds the Argon2 input.
	MinAgentPasswordLen = 12
	MaxAgentPasswordLen = 256
)

// Agent is a support desk user. The password hash and the sign-in counter are kept apart, in
// AgentCredentials, so that this value can travel through the console without them.
type Agent struct {
	ID          string // "agt_" + 16 hex
	Email       string
	EmailKey    string // lower-cased Email; unique among agents
	Name        string
	Role        string // RoleAgent, RoleSupervisor or RoleAdmin
	Disabled    bool
	PasswordSet bool // derived by the store from the stored hash; ignored by PutAgent
	// Epoch is incremented whenever the agent's sessions must end (disable, role change, 2FA
	// reset, new setup link): a session remembers the epoch it started in and dies when it
	// differs.
	Epoch     int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func roleRank(role string) int {
	switch role {
	case RoleAgent:
		return 1
	case RoleSupervisor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// ValidRole reports whether role is one of the three roles.
func ValidRole(role string) bool { return roleRank(role) > 0 }

// AtLeast reports whether the agent holds role or a higher one (agent < supervisor < admin). A
// disabled agent holds no role, and no agent holds an unknown one.
func (a Agent) AtLeast(role string) bool {
	r := roleRank(role)
	return r > 0 && !a.Disabled && roleRank(a.Role) >= r
}

// AgentAccountID is the id of the internal account row that carries an agent's TOTP factor. The
// '/' is refused by CheckAccountID, so no host account can take the id and the host-facing
// methods cannot reach it.
func AgentAccountID(agentID string) string { return agentAccountPrefix + agentID }

// agentAccountPrefix starts the id of every agent's internal account.
const agentAccountPrefix = "agent/"

func newAgentID() (string, error) {
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return "agt_" + hex.EncodeToString(raw), nil
}

func checkAgentEmail(email string) error { return validEmail(email) }

func checkAgentName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidf("name is required")
	}
	return validText("name", name, 128)
}

func checkRole(role string) error {
	if !ValidRole(role) {
		return invalidf("role must be agent, supervisor or admin")
	}
	return nil
}

// CheckAgentInput refuses (with ErrInvalidInput, naming the field, never quoting it) what
// CreateAgent would refuse as bad input: adapters check before they open or change anything.
func CheckAgentInput(email, name, role string) error {
	if err := checkAgentEmail(email); err != nil {
		return err
	}
	if err := checkAgentName(name); err != nil {
		return err
	}
	return checkRole(role)
}

// CheckAgentPassword refuses a password an agent may not choose: 12 to 256 characters of valid
// UTF-8.
func CheckAgentPassword(password string) error {
	if !utf8.ValidString(password) {
		return invalidf("password is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(password); n < MinAgentPasswordLen || n > MaxAgentPasswordLen {
		return invalidf("password must be %d to %d characters", MinAgentPasswordLen, MaxAgentPasswordLen)
	}
	return nil
}

// errSetupLink is the one answer to an unknown, used, expired or otherwise dead setup link, so
// that the page cannot tell them apart.
func errSetupLink() error {
	return fmt.Errorf("%w: the setup link is unknown, used or expired", ErrNotFound)
}

// issueSetupToken stores a new setup token (128 random bits) and returns it in plaintext, once.
func issueSetupToken(tx Tx, agentID, purpose string, now time.Time) (string, AgentSetupToken, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", AgentSetupToken{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	t := AgentSetupToken{Hash: hashToken("agent_setup", tok), AgentID: agentID, Purpose: purpose,
		CreatedAt: now, ExpiresAt: now.Add(SetupLinkTTL)}
	return tok, t, tx.PutAgentSetupToken(t)
}

// setupLink is the public URL of a setup token.
func (s *Service) setupLink(token string) string { return s.baseURL + "/setup/" + token }

// liveSetupToken finds the token and checks that it still works: unused, before its expiry, its
// agent enabled, and for a first-admin token no agent yet. ok false is the generic refusal.
func liveSetupToken(tx ReadTx, token string, now time.Time) (t AgentSetupToken, a Agent, ok bool, err error) {
	if token == "" || len(token) > 128 {
		return t, a, false, nil
	}
	t, err = tx.AgentSetupToken(hashToken("agent_setup", token))
	if errors.Is(err, ErrNotFound) {
		return t, a, false, nil
	}
	if err != nil || !t.UsedAt.IsZero() || !now.Before(t.ExpiresAt) {
		return t, a, false, err
	}
	if t.Purpose == SetupPurposeFirstAdmin {
		agents, err := tx.Agents()
		return t, Agent{Role: RoleAdmin}, err == nil && len(agents) == 0, err
	}
	a, err = tx.Agent(t.AgentID)
	if err != nil {
		return t, a, false, err
	}
	return t, a, !a.Disabled, nil
}

func agentView(a Agent) map[string]any {
	return map[string]any{"email": a.Email, "name": a.Name, "role": a.Role}
}

// newAgent builds an agent and writes it with the internal account row of its TOTP factor. The
// row's email_key is its own id (never an e-mail, so the host's unique index holds); its e-mail
// and name are what the authenticator app shows.
func newAgent(tx Tx, email, name, role string, now time.Time) (Agent, error, error) {
	id, err := newAgentID()
	if err != nil {
		return Agent{}, nil, err
	}
	key := strings.ToLower(email)
	if _, err := tx.AgentByEmail(key); err == nil {
		return Agent{}, ErrEmailTaken, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Agent{}, nil, err
	}
	a := Agent{ID: id, Email: email, EmailKey: key, Name: name, Role: role, CreatedAt: now, UpdatedAt: now}
	if err := tx.PutAgent(a); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return Agent{}, ErrEmailTaken, nil
		}
		return Agent{}, nil, err
	}
	acc := Account{ID: AgentAccountID(id), Email: email, EmailKey: AgentAccountID(id), DisplayName: name, CreatedAt: now, UpdatedAt: now}
	if err := tx.PutAccount(acc); err != nil {
		return Agent{}, nil, err
	}
	return a, nil, nil
}

// CreateAgent creates an agent without a password and returns a one-time setup link
// (BaseURL/setup/<token>, 24 h from a.CreatedAt) with which the agent sets one. The actor is
// the command line (ActorSystem) or an enabled admin (ActorAgent with the admin's id).
func (s *Service) CreateAgent(ctx context.Context, actor Actor, email, name, role string) (Agent, string, error) {
	if err := CheckAgentInput(email, name, role); err != nil {
		return Agent{}, "", err
	}
	now := s.now()
	var out Agent
	var tok string
	err := s.update(ctx, func(tx Tx) (error, error) {
		al := newAuditLog(tx, now, actor)
		switch actor.Type {
		case ActorSystem:
		case ActorAgent:
			if refusal, err := requireAdmin(tx, al, actor, actor.ID, "agent.create", ""); refusal != nil || err != nil {
				return refusal, err
			}
		default:
			return ErrForbidden, nil
		}
		a, refusal, err := newAgent(tx, email, name, role, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		var t AgentSetupToken
		if tok, t, err = issueSetupToken(tx, a.ID, SetupPurposeNewAgent, now); err != nil {
			return nil, err
		}
		if err := al.append(entry{Action: "agent.created", TargetType: "agent", TargetID: a.ID, Details: agentView(a)}); err != nil {
			return nil, err
		}
		out = a
		return nil, setupLinkIssued(al, t)
	})
	if err != nil {
		return Agent{}, "", err
	}
	return out, s.setupLink(tok), nil
}

func setupLinkIssued(al *auditLog, t AgentSetupToken) error {
	return al.append(entry{Action: "agent.setup_link_issued", TargetType: "agent", TargetID: t.AgentID, Details: map[string]any{
		"purpose": t.Purpose, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339),
	}})
}

// requireAdmin checks, inside tx, that adminID names an enabled admin who is the actor, and
// records a refusal (agent.action_refused) otherwise. The admin may not act on targetID
// themselves; "" is no target.
func requireAdmin(tx Tx, al *auditLog, actor Actor, adminID, action, targetID string) (error, error) {
	reason := ""
	admin, err := tx.Agent(adminID)
	switch {
	case actor.Type != ActorAgent || actor.ID != adminID || adminID == "":
		reason = "actor_mismatch"
	case errors.Is(err, ErrNotFound):
		reason = "unknown_agent"
	case err != nil:
		return nil, err
	case !admin.AtLeast(RoleAdmin):
		reason = "not_admin"
	case targetID != "" && targetID == adminID:
		reason = "self"
	}
	if reason == "" {
		return nil, nil
	}
	if err := al.append(entry{Action: "agent.action_refused", TargetType: "agent", TargetID: targetID,
		Details: map[string]any{"action": action, "reason": reason}}); err != nil {
		return nil, err
	}
	if reason == "self" {
		return fmt.Errorf("%w: an admin cannot do this to their own account", ErrForbidden), nil
	}
	return ErrForbidden, nil
}

// adminChange runs fn on the locked target agent after checking that adminID is an enabled
// admin acting as actor and not acting on their own account (every admin action here matters
// there: a stolen admin session must not disable auditing of itself, demote the last admin or
// mint itself new credentials). fn returns the agent to write (nil: nothing changed) with its
// audit entry.
func (s *Service) adminChange(ctx context.Context, actor Actor, adminID, agentID, action string,
	fn func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error)) (Agent, error) {
	now := s.now()
	var out Agent
	err := s.update(ctx, func(tx Tx) (error, error) {
		al := newAuditLog(tx, now, actor)
		if refusal, err := requireAdmin(tx, al, actor, adminID, action, agentID); refusal != nil || err != nil {
			return refusal, err
		}
		a, err := tx.LockAgent(agentID)
		if err != nil {
			return nil, err
		}
		changed, refusal, err := fn(tx, al, a, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		out = a
		if changed != nil {
			changed.UpdatedAt = now
			if err := tx.PutAgent(*changed); err != nil {
				return nil, err
			}
			out = *changed
		}
		return nil, nil
	})
	return out, err
}

// clearAgentFactor removes the agent's TOTP enrollment (active or pending) and its counters. The
// last accepted step stays: a code is never accepted twice, whatever the secret.
func clearAgentFactor(tx Tx, agentID string, now time.Time) (had bool, err error) {
	f, err := loadFactor(tx, AgentAccountID(agentID))
	if err != nil {
		return false, err
	}
	had = f.State != StateDisabled || f.PendingSealed != ""
	f.State, f.SecretSealed, f.EnrolledAt = StateDisabled, "", time.Time{}
	f.PendingSealed, f.PendingExpiresAt = "", time.Time{}
	f.Failures, f.BlockedUntil, f.CodeFailures, f.CodeBlockedUntil = 0, time.Time{}, 0, time.Time{}
	f.UpdatedAt = now
	if err := tx.PutFactor(f); err != nil {
		return false, err
	}
	return had, tx.ReplaceRecoveryCodes(AgentAccountID(agentID), nil)
}

// IssueSetupLink is an admin's answer to an agent who lost their password or device: earlier
// links die, the agent's password and TOTP enrollment are cleared, their sessions end (Epoch)
// and a new 24 h link is returned. An admin cannot issue one for themselves (a stolen session
// could otherwise turn itself into a lasting credential), nor for a disabled agent.
func (s *Service) IssueSetupLink(ctx context.Context, actor Actor, adminID, agentID string) (string, error) {
	var tok string
	_, err := s.adminChange(ctx, actor, adminID, agentID, "agent.setup_link",
		func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error) {
			if a.Disabled {
				return nil, fmt.Errorf("%w: the agent is disabled; enable them first", ErrConflict), nil
			}
			if err := tx.UseAgentSetupTokens(a.ID, now); err != nil {
				return nil, nil, err
			}
			if err := tx.PutAgentCredentials(AgentCredentials{AgentID: a.ID}); err != nil {
				return nil, nil, err
			}
			had, err := clearAgentFactor(tx, a.ID, now)
			if err != nil {
				return nil, nil, err
			}
			var t AgentSetupToken
			if tok, t, err = issueSetupToken(tx, a.ID, SetupPurposeReset, now); err != nil {
				return nil, nil, err
			}
			if err := al.append(entry{Action: "agent.setup_link_issued", TargetType: "agent", TargetID: a.ID, Details: map[string]any{
				"purpose": t.Purpose, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339),
				"password_cleared": a.PasswordSet, "two_factor_cleared": had, "epoch": a.Epoch + 1,
			}}); err != nil {
				return nil, nil, err
			}
			a.Epoch++
			return &a, nil, nil
		})
	if err != nil {
		return "", err
	}
	return s.setupLink(tok), nil
}

// SetupLink reports whether a setup link still works and for whom. A first-admin link gives an
// Agent with an empty ID and RoleAdmin (its page asks for e-mail and name too). Unknown, used,
// expired links, links of disabled agents and first-admin links once an agent exists all give
// the same ErrNotFound.
func (s *Service) SetupLink(ctx context.Context, token string) (Agent, error) {
	now := s.now()
	var out Agent
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, a, ok, err := liveSetupToken(tx, token, now)
		if err != nil {
			return err
		}
		if !ok {
			return errSetupLink()
		}
		out = a
		return nil
	})
	return out, err
}

// CompleteSetup sets the agent's password through a setup link and consumes the link. The TOTP
// enrollment follows at the first sign-in.
func (s *Service) CompleteSetup(ctx context.Context, token, password string) (Agent, error) {
	if err := CheckAgentPassword(password); err != nil {
		return Agent{}, err
	}
	hash, err := HashPassword(password) // slow: outside the transaction
	if err != nil {
		return Agent{}, err
	}
	now := s.now()
	var out Agent
	err = s.update(ctx, func(tx Tx) (error, error) {
		t, _, ok, err := liveSetupToken(tx, token, now)
		if err != nil {
			return nil, err
		}
		if !ok || t.Purpose == SetupPurposeFirstAdmin {
			return errSetupLink(), nil
		}
		a, err := tx.LockAgent(t.AgentID)
		if err != nil {
			return nil, err
		}
		if used, err := tx.UseAgentSetupToken(t.Hash, now); err != nil || !used {
			return errSetupLink(), err
		}
		if err := tx.PutAgentCredentials(AgentCredentials{AgentID: a.ID, PasswordHash: hash}); err != nil {
			return nil, err
		}
		a.UpdatedAt, a.PasswordSet = now, true
		if err := tx.PutAgent(a); err != nil {
			return nil, err
		}
		out = a
		return nil, newAuditLog(tx, now, Actor{Type: ActorAgent, ID: a.ID}).append(entry{
			Action: "agent.password_set", TargetType: "agent", TargetID: a.ID, Details: map[string]any{"purpose": t.Purpose}})
	})
	return out, err
}

// IssueFirstAdminLink returns, on a database without agents, a new 24 h link that creates the
// first admin, and kills every earlier one: the token is stored hashed and cannot be shown
// again, so each start of serve before the link is used prints a new one and the old one stops
// working. With agents present it returns "" and issues nothing.
func (s *Service) IssueFirstAdminLink(ctx context.Context, actor Actor) (link string, expiresAt time.Time, err error) {
	now := s.now()
	var tok string
	err = s.update(ctx, func(tx Tx) (error, error) {
		// The audit chain's lock first: replicas starting together then issue one after the
		// other, and the last one's link is the only one left.
		if _, _, err := tx.AuditHead(); err != nil {
			return nil, err
		}
		agents, err := tx.Agents()
		if err != nil || len(agents) > 0 {
			return nil, err
		}
		if err := tx.UseAgentSetupTokens("", now); err != nil {
			return nil, err
		}
		var t AgentSetupToken
		if tok, t, err = issueSetupToken(tx, "", SetupPurposeFirstAdmin, now); err != nil {
			return nil, err
		}
		expiresAt = t.ExpiresAt
		return nil, setupLinkIssued(newAuditLog(tx, now, actor), t)
	})
	if err != nil || tok == "" {
		return "", time.Time{}, err
	}
	return s.setupLink(tok), expiresAt, nil
}

// CompleteFirstAdmin creates the first admin, with a password, through the first-admin link.
// It is refused (ErrConflict) once any agent exists, and the link then dies.
func (s *Service) CompleteFirstAdmin(ctx context.Context, token, email, name, password string) (Agent, error) {
	if err := checkAgentEmail(email); err != nil {
		return Agent{}, err
	}
	if err := checkAgentName(name); err != nil {
		return Agent{}, err
	}
	if err := CheckAgentPassword(password); err != nil {
		return Agent{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Agent{}, err
	}
	now := s.now()
	var out Agent
	err = s.update(ctx, func(tx Tx) (error, error) {
		// The audit chain's lock first, so that two completions cannot both see no agent.
		if _, _, err := tx.AuditHead(); err != nil {
			return nil, err
		}
		if token == "" || len(token) > 128 {
			return errSetupLink(), nil
		}
		t, err := tx.AgentSetupToken(hashToken("agent_setup", token))
		if errors.Is(err, ErrNotFound) {
			return errSetupLink(), nil
		}
		if err != nil {
			return nil, err
		}
		if t.Purpose != SetupPurposeFirstAdmin || !t.UsedAt.IsZero() || !now.Before(t.ExpiresAt) {
			return errSetupLink(), nil
		}
		agents, err := tx.Agents()
		if err != nil {
			return nil, err
		}
		if len(agents) > 0 {
			if err := tx.UseAgentSetupTokens("", now); err != nil {
				return nil, err
			}
			return fmt.Errorf("%w: an agent exists already; ask an admin for a setup link", ErrConflict), nil
		}
		if used, err := tx.UseAgentSetupToken(t.Hash, now); err != nil || !used {
			return errSetupLink(), err
		}
		a, refusal, err := newAgent(tx, email, name, RoleAdmin, now)
		if refusal != nil || err != nil {
			return refusal, err
		}
		if err := tx.PutAgentCredentials(AgentCredentials{AgentID: a.ID, PasswordHash: hash}); err != nil {
			return nil, err
		}
		a.PasswordSet = true
		al := newAuditLog(tx, now, Actor{Type: ActorAgent, ID: a.ID})
		d := agentView(a)
		d["purpose"] = SetupPurposeFirstAdmin
		if err := al.append(entry{Action: "agent.created", TargetType: "agent", TargetID: a.ID, Details: d}); err != nil {
			return nil, err
		}
		out = a
		return nil, al.append(entry{Action: "agent.password_set", TargetType: "agent", TargetID: a.ID,
			Details: map[string]any{"purpose": SetupPurposeFirstAdmin}})
	})
	return out, err
}

// dummyPasswordHash is checked against when the e-mail is unknown or the agent has no password,
// so that those answers take as long as a wrong password. Its parameters are HashPassword's.
const dummyPasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$cmVjb3ZlcnlkZXNrL2R1bQ$z0gcxVwLkLJyyzW4Ne5vlUpYETqd36MHVj55MrDu/yo"

// AgentSignIn checks an agent's e-mail and password. An unknown e-mail, a wrong password, an
// agent without a password and a disabled agent all give ErrUnauthorized and are audited
// (agent.sign_in_failed, with the reason, never the password). Consecutive failures of a known
// agent are counted in the database like codes: the 5th starts a 30 s backoff, each further one
// doubles it up to an hour, a success resets the count; attempts during a backoff are refused
// (ErrTooManyAttempts) without being checked or counted. Failures also count on actor.IP's
// limiter when set. The backoff answer does tell an attacker that the e-mail belongs to an
// agent; counting unknown e-mails would need a row per guessed address, and the IP limiter
// covers the spraying that would exploit it.
func (s *Service) AgentSignIn(ctx context.Context, actor Actor, email, password string) (Agent, error) {
	now := s.now()
	key := strings.ToLower(email)
	var known Agent
	var cred AgentCredentials
	var refusal error
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if refusal, err = ipBlocked(tx, actor.IP, now); refusal != nil || err != nil {
			return err
		}
		if !utf8.ValidString(email) || len(email) > 254 {
			return nil
		}
		a, err := tx.AgentByEmail(key)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cred, err = tx.AgentCredentials(a.ID); err != nil {
			return err
		}
		if now.Before(cred.BlockedUntil) {
			refusal = throttled(cred.BlockedUntil, now)
		}
		known = a
		return nil
	})
	if err != nil {
		return Agent{}, err
	}
	if refusal != nil {
		return Agent{}, refusal
	}
	// Argon2id outside any transaction (on SQLite the writer is shared), and always run.
	hash, pw := cred.PasswordHash, password
	if hash == "" {
		hash = dummyPasswordHash
	}
	if len(pw) > 4*MaxAgentPasswordLen {
		pw = ""
	}
	match := CheckPassword(hash, pw) && cred.PasswordHash != "" && len(password) <= 4*MaxAgentPasswordLen
	// Whoever signs in acts as the agent the e-mail names (none when unknown); the request id
	// and address are the caller's.
	actor.Type, actor.ID = ActorAgent, known.ID
	var out Agent
	err = s.update(ctx, func(tx Tx) (error, error) {
		if refusal, err := ipBlocked(tx, actor.IP, now); refusal != nil || err != nil {
			return refusal, err
		}
		al := newAuditLog(tx, now, actor)
		details := map[string]any{}
		if actor.IP != "" {
			details["ip"] = actor.IP
		}
		if known.ID == "" {
			details["reason"] = "unknown_email"
			if err := al.append(entry{Action: "agent.sign_in_failed", TargetType: "agent", Details: details}); err != nil {
				return nil, err
			}
			return ErrUnauthorized, countIPFailure(tx, al, actor.IP, now)
		}
		a, err := tx.LockAgent(known.ID)
		if err != nil {
			return nil, err
		}
		c, err := tx.AgentCredentials(a.ID)
		if err != nil {
			return nil, err
		}
		if now.Before(c.BlockedUntil) { // a concurrent attempt started a backoff
			return throttled(c.BlockedUntil, now), nil
		}
		// A password changed since it was checked is not the one checked.
		match = match && subtle.ConstantTimeCompare([]byte(c.PasswordHash), []byte(cred.PasswordHash)) == 1
		reason := ""
		switch {
		case c.PasswordHash == "":
			reason = "no_password"
		case !match:
			reason = "wrong_password"
		case a.Disabled:
			reason = "disabled"
		}
		if reason == "" {
			if c.Failures != 0 || !c.BlockedUntil.IsZero() {
				c.Failures, c.BlockedUntil = 0, time.Time{}
				if err := tx.PutAgentCredentials(c); err != nil {
					return nil, err
				}
			}
			out = a
			return nil, al.append(entry{Action: "agent.signed_in", TargetType: "agent", TargetID: a.ID, Details: details})
		}
		c.Failures++
		if d := backoff(c.Failures); d > 0 {
			c.BlockedUntil = now.Add(d)
		}
		if err := tx.PutAgentCredentials(c); err != nil {
			return nil, err
		}
		details["reason"], details["failures"] = reason, c.Failures
		if !c.BlockedUntil.IsZero() {
			details["blocked_until"] = c.BlockedUntil.UTC().Format(time.RFC3339)
		}
		if err := al.append(entry{Action: "agent.sign_in_failed", TargetType: "agent", TargetID: a.ID, Details: details}); err != nil {
			return nil, err
		}
		return ErrUnauthorized, countIPFailure(tx, al, actor.IP, now)
	})
	return out, err
}

// SetAgentRole changes another agent's role; their sessions end.
func (s *Service) SetAgentRole(ctx context.Context, actor Actor, adminID, agentID, role string) (Agent, error) {
	if err := checkRole(role); err != nil {
		return Agent{}, err
	}
	return s.adminChange(ctx, actor, adminID, agentID, "agent.set_role",
		func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error) {
			if a.Role == role {
				return nil, nil, nil
			}
			before := a.Role
			a.Role = role
			a.Epoch++
			return &a, nil, al.append(entry{Action: "agent.role_changed", TargetType: "agent", TargetID: a.ID,
				Details: map[string]any{"before": before, "after": role, "epoch": a.Epoch}})
		})
}

// DisableAgent disables another agent: sign-in is refused, sessions end, setup links die.
func (s *Service) DisableAgent(ctx context.Context, actor Actor, adminID, agentID string) (Agent, error) {
	return s.adminChange(ctx, actor, adminID, agentID, "agent.disable",
		func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error) {
			if a.Disabled {
				return nil, nil, nil
			}
			if err := tx.UseAgentSetupTokens(a.ID, now); err != nil {
				return nil, nil, err
			}
			a.Disabled = true
			a.Epoch++
			return &a, nil, al.append(entry{Action: "agent.disabled", TargetType: "agent", TargetID: a.ID,
				Details: map[string]any{"epoch": a.Epoch}})
		})
}

// EnableAgent enables a disabled agent again.
func (s *Service) EnableAgent(ctx context.Context, actor Actor, adminID, agentID string) (Agent, error) {
	return s.adminChange(ctx, actor, adminID, agentID, "agent.enable",
		func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error) {
			if !a.Disabled {
				return nil, nil, nil
			}
			a.Disabled = false
			return &a, nil, al.append(entry{Action: "agent.enabled", TargetType: "agent", TargetID: a.ID})
		})
}

// ResetAgentTwoFactor clears another agent's TOTP enrollment (for a lost device); their sessions
// end and the next sign-in leads to a new enrollment.
func (s *Service) ResetAgentTwoFactor(ctx context.Context, actor Actor, adminID, agentID string) (Agent, error) {
	return s.adminChange(ctx, actor, adminID, agentID, "agent.reset_two_factor",
		func(tx Tx, al *auditLog, a Agent, now time.Time) (*Agent, error, error) {
			had, err := clearAgentFactor(tx, a.ID, now)
			if err != nil {
				return nil, nil, err
			}
			a.Epoch++
			return &a, nil, al.append(entry{Action: "agent.two_factor_reset", TargetType: "agent", TargetID: a.ID,
				Details: map[string]any{"had_enrollment": had, "epoch": a.Epoch}})
		})
}

// Agent returns one agent.
func (s *Service) Agent(ctx context.Context, id string) (Agent, error) {
	var a Agent
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		a, err = tx.Agent(id)
		return err
	})
	return a, err
}

// Agents lists every agent, oldest first.
func (s *Service) Agents(ctx context.Context) ([]Agent, error) {
	var out []Agent
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Agents()
		return err
	})
	return out, err
}

// agentSelf is the precheck of an agent's own TOTP operations: the actor is the agent, who is
// enabled and has a password (has been through setup).
func agentSelf(actor Actor, agentID string) precheck {
	return func(tx Tx) (error, error) {
		if actor.Type != ActorAgent || actor.ID != agentID || agentID == "" {
			return ErrForbidden, nil
		}
		a, err := tx.Agent(agentID)
		if errors.Is(err, ErrNotFound) {
			return ErrForbidden, nil
		}
		if err != nil {
			return nil, err
		}
		if a.Disabled || !a.PasswordSet {
			return ErrUnauthorized, nil
		}
		return nil, nil
	}
}

// AgentBeginEnrollment starts the agent's own TOTP enrollment through the core (sealed secret,
// 10 min to confirm). An active enrollment is only replaced after an admin reset it.
func (s *Service) AgentBeginEnrollment(ctx context.Context, actor Actor, agentID string) (Enrollment, error) {
	return s.beginEnrollment(ctx, actor, AgentAccountID(agentID), "", agentSelf(actor, agentID))
}

// AgentConfirmEnrollment activates the agent's pending enrollment with a code from the app,
// with the core's replay guard and counting. Agents get no recovery codes: an admin's new
// setup link is their way back.
func (s *Service) AgentConfirmEnrollment(ctx context.Context, actor Actor, agentID, code string) (Confirmed, error) {
	return s.confirmEnrollment(ctx, actor, AgentAccountID(agentID), code, false, agentSelf(actor, agentID))
}

// AgentStepUp verifies a current TOTP code of the agent (replay guard, backoff, suspension and
// the per-IP limiter of the core) and returns when it was entered: the console keeps the time
// in the session, and approve and execute take it as their step-up proof. The time is read
// before the check, so it never flatters the proof's age.
func (s *Service) AgentStepUp(ctx context.Context, actor Actor, agentID, code string) (time.Time, error) {
	at := s.now()
	if _, err := s.verify(ctx, actor, AgentAccountID(agentID), code, "step_up", agentSelf(actor, agentID)); err != nil {
		return time.Time{}, err
	}
	return at, nil
}

// AgentTwoFactorStatus reads the agent's TOTP state (StateDisabled or StatePending: the console
// sends the agent to enroll; StateSuspended after 20 failed codes: an admin resets it).
func (s *Service) AgentTwoFactorStatus(ctx context.Context, agentID string) (Status, error) {
	if _, err := s.Agent(ctx, agentID); err != nil {
		return Status{}, err
	}
	return s.twoFactorStatus(ctx, AgentAccountID(agentID))
}
