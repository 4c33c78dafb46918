package recovery

import "time"

// RestoreTx is the part of Tx that the last step of a restore uses (Service.FinishRestore):
// whatever a backup brings back that was spent since the backup was taken must be spent again.
type RestoreTx interface {
	// AdvanceLastSteps raises every factor's LastStep (pending enrollments included: a factor
	// has one LastStep whatever its state) to step where it is lower, in one UPDATE, and
	// reports how many factors it raised.
	AdvanceLastSteps(step int64, at time.Time) (int64, error)
	// EndAllSessions deletes every agent console session and every end-user session and
	// reports how many of each it deleted.
	EndAllSessions() (agent, user int64, err error)
	// VoidUnusedTokens marks every single-use token or code that is still unused as used at at,
	// in every table that holds such tokens, and reports how many it voided per kind (every
	// kind of RestoreTokenKinds is a key, zero counts included).
	VoidUnusedTokens(at time.Time) (map[string]int64, error)
}

// Kinds of single-use tokens and codes a restore voids: the keys of RestoreTx.VoidUnusedTokens
// and of the system.restored event's tokens_voided.
const (
	TokenReenrollLink = "reenroll_link"       // re-enrollment links of executed resets
	TokenVetoLink     = "veto_link"           // "this wasn't me" links of approvals and resets
	TokenAgentSetup   = "agent_setup_link"    // agents' one-time setup links, the first admin's included
	TokenTelegramLink = "telegram_link_token" // /start deep-link tokens that link a chat to an account
	TokenEmailCheck   = "email_code"          // the checklist's e-mail check codes
)

// RestoreTokenKinds returns every kind of single-use token a restore voids.
func RestoreTokenKinds() []string {
	return []string{TokenReenrollLink, TokenVetoLink, TokenAgentSetup, TokenTelegramLink, TokenEmailCheck}
}
