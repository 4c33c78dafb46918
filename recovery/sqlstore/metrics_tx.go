package sqlstore

import (
	"database/sql"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// QueuedNotices (recovery.MetricsReadTx) reads the queued notices through the dispatchers'
// partial index (state = 'queued'), so a scrape's cost grows with the backlog, not with the
// outbox's history.
func (t *sqlTx) QueuedNotices() (map[string]recovery.NoticeBacklog, error) {
	type row struct {
		channel string
		n       int
		oldest  sql.NullInt64
	}
	rows, err := all(t, "queued notices", "SELECT channel, COUNT(*), MIN(created_at) FROM notices WHERE state = 'queued' GROUP BY channel",
		func(r *sql.Rows) (row, error) {
			var v row
			return v, r.Scan(&v.channel, &v.n, &v.oldest)
		})
	if err != nil {
		return nil, err
	}
	out := make(map[string]recovery.NoticeBacklog, len(rows))
	for _, r := range rows {
		out[r.channel] = recovery.NoticeBacklog{Queued: r.n, Oldest: fromNanos(r.oldest)}
	}
	return out, nil
}
