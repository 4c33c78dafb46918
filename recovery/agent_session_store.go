package recovery

// AgentSessionReadTx is the part of ReadTx that reads agent console sessions.
type AgentSessionReadTx interface {
}

// AgentSessionTx is the part of Tx that writes agent console sessions.
type AgentSessionTx interface {
}
