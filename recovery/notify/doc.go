// Package notify holds the outbox's delivery adapters: e-mail over SMTP (wneessen/go-mail), e-mail
// written as .eml files when no SMTP server is configured, and the host platform's signed
// webhook. Each has a Send method that is a recovery.Sender: it delivers one notice and says,
// with a *recovery.DeliveryError, whether a failure is permanent or when to retry. The
// recovery.Service's dispatchers call them outside any transaction and record the outcome.
//
// Errors returned by the senders are stored and audited (after the domain's own scrubbing):
// they never carry a password, the webhook secret, the webhook URL's path or query, or the
// message's body.
package notify
