package recovery

// Hooks for the agent tests.

// DummyPasswordHash is what an unknown e-mail's password is checked against.
const DummyPasswordHash = dummyPasswordHash

// DummyPassword is the password DummyPasswordHash was made from, so that a test can show the
// hash is a real Argon2id hash (as slow to check as an agent's).
const DummyPassword = "recoverydesk dummy password, never set"

// SetupTokenHash is how a setup token is stored.
func SetupTokenHash(token string) string { return hashToken("agent_setup", token) }
