package recovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// TestGauges reads the metrics' levels on both dialects: every ticket state and channel is
// listed (zeros included), queued notices are counted per channel with the age of the oldest,
// delivered ones leave the backlog, and opened tickets show in their state.
func TestGauges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		read := func() (tickets map[recovery.TicketState]int, queued map[string]int, age map[string]time.Duration) {
			t.Helper()
			g, err := s.Gauges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Tickets) != 11 || len(g.Backlog) != 3 || !g.At.Equal(c.Now()) {
				t.Fatalf("gauges list %d states and %d channels at %s, want 11, 3 and the clock", len(g.Tickets), len(g.Backlog), g.At)
			}
			tickets, queued, age = map[recovery.TicketState]int{}, map[string]int{}, map[string]time.Duration{}
			for _, sc := range g.Tickets {
				tickets[sc.State] = sc.Count
			}
			for _, b := range g.Backlog {
				queued[b.Channel] = b.Queued
				if !b.Oldest.IsZero() {
					age[b.Channel] = g.At.Sub(b.Oldest)
				}
			}
			return tickets, queued, age
		}
		tickets, queued, age := read()
		for st, n := range tickets {
			if n != 0 {
				t.Errorf("empty database: %d tickets %s", n, st)
			}
		}
		if queued["email"]+queued["telegram"]+queued["webhook"] != 0 || len(age) != 0 {
			t.Errorf("empty database: queued %v, ages %v", queued, age)
		}

		queue := func(n recovery.Notice) {
			t.Helper()
			if err := recovery.QueueNotice(ctx, s, n); err != nil {
				t.Fatal(err)
			}
		}
		queue(recovery.Notice{Channel: recovery.NoticeEmail, To: "a@example.com", Kind: "status", Subject: "s", Body: "one"})
		c.Add(time.Minute)
		queue(recovery.Notice{Channel: recovery.NoticeEmail, To: "b@example.com", Kind: "status", Subject: "s", Body: "two"})
		queue(recovery.Notice{Channel: recovery.NoticeTelegram, To: "42", Kind: "status", Body: "three"})
		c.Add(9 * time.Minute)
		_, queued, age = read()
		if queued["email"] != 2 || queued["telegram"] != 1 || queued["webhook"] != 0 {
			t.Errorf("queued %v, want email 2, telegram 1, webhook 0", queued)
		}
		if age["email"] != 10*time.Minute || age["telegram"] != 9*time.Minute || age["webhook"] != 0 {
			t.Errorf("oldest ages %v, want email 10m, telegram 9m, webhook none", age)
		}

		ok := func(context.Context, recovery.Notice) error { return nil }
		if sent, err := s.DispatchDue(ctx, recovery.NoticeEmail, 0, ok); err != nil || sent != 2 {
			t.Fatalf("dispatch: %d %v", sent, err)
		}
		_, queued, age = read()
		if queued["email"] != 0 || queued["telegram"] != 1 || age["email"] != 0 {
			t.Errorf("after delivering the e-mails: queued %v, ages %v", queued, age)
		}

		for _, who := range []string{"nobody@example.com", "someone@example.com"} {
			if _, err := s.OpenTicket(ctx, api, recovery.OpenRequest{Channel: recovery.ChannelAPI, Claimed: who, Message: "lost my phone"}); err != nil {
				t.Fatal(err)
			}
		}
		tickets, _, _ = read()
		if tickets[recovery.TicketOpen] != 2 || tickets[recovery.TicketClosed] != 0 {
			t.Errorf("tickets %v, want 2 open", tickets)
		}
	})
}
