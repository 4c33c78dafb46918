package recovery

import (
	"context"
	"time"
)

// Gauges are the levels a metrics scrape reports, read from the database at the time of the
// scrape (so every replica reports the same shared figures).
type Gauges struct {
	// Tickets counts tickets in every state, zero counts included: the active states in the
	// workflow's order, then the final ones.
	Tickets []StateCount
	// Backlog is the outbox's queued notices per channel, zero included (email, telegram,
	// webhook).
	Backlog []ChannelBacklog
	// At is the service's clock when the figures were read (for the age of the oldest notice).
	At time.Time
}

// ChannelBacklog is one channel's queued notices.
type ChannelBacklog struct {
	Channel string
	NoticeBacklog
}

// ticketStates are all ticket states: the active ones in the workflow's order, then the final
// ones.
var ticketStates = []TicketState{TicketOpen, TicketVerifying, TicketPendingApproval, TicketCoolingOff,
	TicketReady, TicketExecuted, TicketFrozen, TicketClosed, TicketRejected, TicketWithdrawn, TicketExpired}

// noticeChannels are the outbox's channels.
var noticeChannels = []string{NoticeEmail, NoticeTelegram, NoticeWebhook}

// Gauges reads the metrics' levels in one read transaction: two grouped counts, each served by
// an index (tickets by state; queued notices by the dispatchers' partial index).
func (s *Service) Gauges(ctx context.Context) (Gauges, error) {
	out := Gauges{At: s.now()}
	err := s.store.View(ctx, func(tx ReadTx) error {
		counts, err := tx.TicketStateCounts()
		if err != nil {
			return err
		}
		queued, err := tx.QueuedNotices()
		if err != nil {
			return err
		}
		out.Tickets, out.Backlog = out.Tickets[:0], out.Backlog[:0]
		for _, st := range ticketStates {
			out.Tickets = append(out.Tickets, StateCount{State: st, Count: counts[st]})
		}
		for _, ch := range noticeChannels {
			out.Backlog = append(out.Backlog, ChannelBacklog{Channel: ch, NoticeBacklog: queued[ch]})
		}
		return nil
	})
	return out, err
}
