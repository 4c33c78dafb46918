package recovery

import "time"

// AgentReadTx is the part of ReadTx that reads agents. Missing rows give ErrNotFound.
type AgentReadTx interface {
	Agent(id string) (Agent, error)
	// AgentByEmail finds an agent by the lower-cased e-mail (Agent.EmailKey).
	AgentByEmail(emailKey string) (Agent, error)
	// Agents lists every agent, oldest first.
	Agents() ([]Agent, error)
	// AgentCredentials reads the agent's password hash and sign-in throttle.
	AgentCredentials(agentID string) (AgentCredentials, error)
	AgentSetupToken(hash string) (AgentSetupToken, error)
}

// AgentTx is the part of Tx that writes agents.
type AgentTx interface {
	// LockAgent reads the agent and holds a row lock on it (its credentials included) until the
	// transaction ends, so that a read-decide-write on its epoch or sign-in counter cannot
	// interleave with another replica.
	LockAgent(id string) (Agent, error)
	// PutAgent inserts or updates the agent's profile by ID: every field of Agent except
	// PasswordSet, which the store derives from the stored hash. A new agent has no password.
	// A duplicate EmailKey gives ErrEmailTaken.
	PutAgent(a Agent) error
	// PutAgentCredentials writes the password hash and throttle of an existing agent
	// (ErrNotFound when there is none).
	PutAgentCredentials(c AgentCredentials) error
	// PutAgentSetupToken inserts a new setup token.
	PutAgentSetupToken(t AgentSetupToken) error
	// UseAgentSetupToken marks the token used only if it is unused, in one conditional UPDATE,
	// and reports whether it did.
	UseAgentSetupToken(hash string, at time.Time) (bool, error)
	// UseAgentSetupTokens marks every unused token of the agent used; agentID "" means the
	// first-admin tokens (which belong to no agent).
	UseAgentSetupTokens(agentID string, at time.Time) error
}

// AgentCredentials is what signs an agent in: kept apart from Agent so that the hash never
// travels with the profile the console and the ticket workflow pass around.
type AgentCredentials struct {
	AgentID      string
	PasswordHash string // Argon2id PHC string; "" until the agent sets a password
	Failures     int    // consecutive failed sign-ins
	BlockedUntil time.Time
}

// AgentSetupToken is a one-time setup link, stored as the hash of its token.
type AgentSetupToken struct {
	Hash      string // hashToken("agent_setup", token)
	AgentID   string // "" for the first-admin link
	Purpose   string // one of the SetupPurpose* constants
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}
