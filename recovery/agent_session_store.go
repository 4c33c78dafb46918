package recovery

import "time"

// AgentSessionReadTx is the part of ReadTx that reads agent console sessions.
type AgentSessionReadTx interface {
	// AgentSession returns the session stored under idHash, or ErrNotFound.
	AgentSession(idHash string) (AgentSession, error)
}

// AgentSessionTx is the part of Tx that writes agent console sessions.
type AgentSessionTx interface {
	// InsertAgentSession adds a session; an IDHash already taken is an error.
	InsertAgentSession(s AgentSession) error
	// UpdateAgentSession stores LastSeenAt and StepUpAt of an existing session.
	UpdateAgentSession(s AgentSession) error
	// DeleteAgentSession removes one session; removing an absent one is not an error.
	DeleteAgentSession(idHash string) error
	// DeleteAgentSessions removes every session of the agent.
	DeleteAgentSessions(agentID string) error
	// DeleteStaleAgentSessions removes sessions created before createdBefore or last seen before
	// seenBefore and reports how many.
	DeleteStaleAgentSessions(createdBefore, seenBefore time.Time) (int64, error)
}
