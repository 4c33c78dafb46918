package recovery

import "time"

// OutboxReadTx is the part of ReadTx that reads the notifications outbox. In the store a
// notice's Body is its sealed payload (see Service.queueNotice), never the plain text.
type OutboxReadTx interface {
	// Notices lists the notices matching f, newest (highest id) first, at most f.Limit of them
	// (the domain always sets a limit).
	Notices(f NoticeFilter) ([]Notice, error)
	// DueNotices returns up to limit notices of channel that are queued, whose NextAttemptAt is
	// at or before now and that no live claim holds (claimed until after now), in id order.
	// With inOrder a notice is left out while an earlier queued notice of the same channel and
	// recipient exists, due, claimed or not: that recipient's messages go out one at a time, in
	// id order.
	DueNotices(channel string, now time.Time, inOrder bool, limit int) ([]Notice, error)
}

// OutboxTx is the part of Tx that writes the notifications outbox.
type OutboxTx interface {
	// AddNotice inserts n (its ID is ignored) and returns the id the store assigned. Ids grow:
	// a later notice has a larger id.
	AddNotice(n Notice) (int64, error)
	// ClaimNotice leases a notice to the caller until until and counts the attempt, in one
	// conditional UPDATE: only a notice still queued, due at now and not held by a live claim
	// is claimed. It returns the attempt count after the claim and whether the claim was
	// taken; of two transactions claiming the same notice only one takes it.
	ClaimNotice(id int64, now, until time.Time) (attempts int, ok bool, err error)
	// FinishNotice ends a claim: it writes n's State, Attempts, NextAttemptAt, SentAt and
	// LastError and clears the claim, but only while the notice is queued with claimedAttempts
	// attempts (the claim is still the caller's: a lease that ran out and was taken by another
	// dispatcher has counted another attempt). It reports whether it wrote.
	FinishNotice(n Notice, claimedAttempts int) (bool, error)
	// ResealNotice replaces a notice's sealed body (key rotation).
	ResealNotice(id int64, sealed string) error
}
