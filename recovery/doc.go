// Package recovery is the domain of RecoveryDesk: accounts, TOTP enrollment and verification,
// throttling, recovery codes, sealing of secrets at rest, API keys and the tamper-evident audit
// chain. Later: tickets, checklists, approvals, resets and the notifications outbox.
//
// It imports the standard library, pquerna/otp and x/crypto only. Storage is reached through the
// Store port, which adapters (recovery/sqlstore) implement without business rules; HTTP and
// Telegram adapters call the Service and map its sentinel errors once.
package recovery
