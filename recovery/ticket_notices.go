package recovery

import (
	"fmt"
	"time"
)

// tellRequester queues a short status message to the Telegram chat that opened the ticket when
// its state changes in a way the requester should hear about. The messages carry no account
// data: only the ticket's own progress, which the requester's conversation with an agent has
// already shown them. States with their own notices are left out: the execute (the link, or
// where it went), a withdrawal (the bot answers /cancel itself) and a cooling-off when the chat
// was linked before the ticket (it gets the veto notice).
func (s *Service) tellRequester(tx Tx, tl ticketLog, t Ticket) error {
	if t.Channel != ChannelTelegram || t.ChatID == "" {
		return nil
	}
	var text string
	switch t.State {
	case TicketPendingApproval:
		text = fmt.Sprintf("Your request %s: the identity checks are complete. A second member of our team now reviews it.", t.ID)
	case TicketCoolingOff:
		if t.ChatLinkedBefore {
			return nil
		}
		text = fmt.Sprintf("Your request %s was approved. For your protection there is a waiting period until %s, "+
			"during which the account's owner can stop it. We will write to you when it is done.",
			t.ID, t.CoolingUntil.UTC().Format("2 Jan 2006 15:04 UTC"))
	case TicketRejected:
		text = fmt.Sprintf("We could not complete your request %s. If you still need help, write /start to begin again or contact support.", t.ID)
	case TicketFrozen:
		text = fmt.Sprintf("Your request %s is on hold while our team checks it. We will contact you.", t.ID)
	case TicketExpired:
		text = fmt.Sprintf("Your request %s was closed after %d days without activity. Write /start to begin again.", t.ID, int(TicketIdleExpiry/(24*time.Hour)))
	case TicketClosed:
		if t.Outcome != OutcomeSelfService {
			return nil
		}
		text = fmt.Sprintf("Your request %s is closed: you can still sign in with a recovery code or your old device, "+
			"and then set up your new phone yourself in Settings › Security.", t.ID)
	default:
		return nil
	}
	return s.queueNotice(tx, tl.auditLog, Notice{Channel: NoticeTelegram, To: t.ChatID, Kind: "status", AccountID: t.AccountID, TicketID: t.ID, Body: text})
}
