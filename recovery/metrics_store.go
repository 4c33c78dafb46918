package recovery

import "time"

// MetricsReadTx is the part of ReadTx that a metrics scrape reads besides the ticket counts
// (AuditQueryReadTx.TicketStateCounts).
type MetricsReadTx interface {
	// QueuedNotices counts the queued notices (state queued: waiting for a first try or a
	// retry, claimed or not) per channel, with the creation time of the oldest. Channels
	// without a queued notice are left out.
	QueuedNotices() (map[string]NoticeBacklog, error)
}

// NoticeBacklog is one channel's queued notices.
type NoticeBacklog struct {
	Queued int
	Oldest time.Time // creation time of the oldest queued notice; zero when none
}
