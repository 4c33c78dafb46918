package recovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestSeedDemo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		ctx := context.Background()
		c := newClock()
		opts := recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), BaseURL: "http://desk.test"}
		res, err := recovery.SeedDemo(ctx, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Existed || len(res.Agents) != 5 {
			t.Fatalf("first run: existed %v, %d agents", res.Existed, len(res.Agents))
		}
		for _, st := range []recovery.TicketState{recovery.TicketOpen, recovery.TicketVerifying, recovery.TicketPendingApproval,
			recovery.TicketCoolingOff, recovery.TicketReady, recovery.TicketExecuted, recovery.TicketClosed,
			recovery.TicketRejected, recovery.TicketFrozen, recovery.TicketWithdrawn, recovery.TicketExpired} {
			if res.Tickets[st] == 0 {
				t.Errorf("no demo ticket in state %s: %v", st, res.Tickets)
			}
		}
		svc := newService(t, s, c)
		rep, err := svc.VerifyAudit(ctx, nil)
		if err != nil || !rep.OK() || rep.Count < 100 {
			t.Fatalf("audit after the demo: %+v %v", rep, err)
		}
		// The printed credentials work now: password sign-in and a code from the secret.
		for _, a := range res.Agents {
			ag, err := svc.AgentSignIn(ctx, recovery.Actor{Type: recovery.ActorSystem, ID: "t"}, a.Email, a.Password)
			if err != nil {
				t.Fatalf("sign in %s: %v", a.Email, err)
			}
			code, _ := recovery.CodeAt(a.Secret, recovery.Step(c.Now()))
			if _, err := svc.AgentStepUp(ctx, recovery.Actor{Type: recovery.ActorAgent, ID: ag.ID}, ag.ID, code); err != nil {
				t.Fatalf("step-up of %s with the printed secret: %v", a.Email, err)
			}
		}
		// Every seeded event lies in the past of the real clock.
		page, err := svc.AuditLog(ctx, recovery.AuditFilter{Limit: 1})
		if err != nil || len(page.Events) != 1 || page.Events[0].Time.After(c.Now()) {
			t.Fatalf("newest event: %+v %v", page, err)
		}
		// The dashboard has a history.
		dash, err := svc.Dashboard(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		var recovered, vetoes, rejections int
		for _, w := range dash.Weeks {
			recovered += w.Recovered
			vetoes += w.Vetoes
			rejections += w.Rejections
			if w.Recovered > 0 && (w.MedianRecovery < recovery.CoolingOff || w.MedianRecovery > 5*24*time.Hour) {
				t.Errorf("week %s: median %v", w.Start, w.MedianRecovery)
			}
		}
		if recovered < 10 || vetoes < 3 || rejections < 6 {
			t.Fatalf("dashboard: %d recovered, %d vetoes, %d rejections", recovered, vetoes, rejections)
		}
		before := rep.Count
		again, err := recovery.SeedDemo(ctx, s, opts)
		if err != nil || !again.Existed {
			t.Fatalf("second run: %+v %v", again, err)
		}
		rep, _ = svc.VerifyAudit(ctx, nil)
		// The sign-ins and step-ups above added 10 events; the second run none.
		if rep.Count != before+10 {
			t.Fatalf("second run changed the chain: %d → %d events", before, rep.Count)
		}
	})
}

func TestAuditLogFiltersAndPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		d := newDesk(t, s, dsn)
		id := d.openConsole()
		d.toReady(id)
		ctx := context.Background()
		// Keyset paging walks the whole chain newest first, without gaps or repeats.
		var seqs []int64
		f := recovery.AuditFilter{Limit: 7}
		for {
			p, err := d.svc.AuditLog(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				seqs = append(seqs, e.Seq)
			}
			if p.NextBefore == 0 {
				break
			}
			f.BeforeSeq = p.NextBefore
		}
		rep, _ := d.svc.VerifyAudit(ctx, nil)
		if int64(len(seqs)) != rep.Count {
			t.Fatalf("paging read %d of %d events", len(seqs), rep.Count)
		}
		for i, s := range seqs {
			if s != rep.Count-int64(i) {
				t.Fatalf("page order broken at %d: %v", i, seqs)
			}
		}
		cases := []struct {
			name string
			f    recovery.AuditFilter
			ok   func(recovery.Event) bool
		}{
			{"action", recovery.AuditFilter{Action: "ticket.approved"}, func(e recovery.Event) bool { return e.Action == "ticket.approved" }},
			{"prefix", recovery.AuditFilter{Action: "ticket."}, func(e recovery.Event) bool { return strings.HasPrefix(e.Action, "ticket.") }},
			{"actor", recovery.AuditFilter{ActorID: d.sup.ID}, func(e recovery.Event) bool { return e.ActorID == d.sup.ID }},
			{"ticket", recovery.AuditFilter{TicketID: id}, func(e recovery.Event) bool { return e.TicketID == id }},
			{"target", recovery.AuditFilter{TargetType: "account", TargetID: customer}, func(e recovery.Event) bool {
				return e.TargetType == "account" && e.TargetID == customer
			}},
		}
		for _, tc := range cases {
			p, err := d.svc.AuditLog(ctx, tc.f)
			if err != nil || len(p.Events) == 0 {
				t.Fatalf("%s: %d events, %v", tc.name, len(p.Events), err)
			}
			for _, e := range p.Events {
				if !tc.ok(e) {
					t.Fatalf("%s: event %d %s does not match", tc.name, e.Seq, e.Action)
				}
			}
		}
		// A time range: the cooling-off moved the clock a day; nothing is after now.
		p, _ := d.svc.AuditLog(ctx, recovery.AuditFilter{From: d.clock.Now().Add(-time.Minute)})
		if len(p.Events) != 0 {
			t.Fatalf("events in the last minute after a day of cooling-off: %d", len(p.Events))
		}
		p, _ = d.svc.AuditLog(ctx, recovery.AuditFilter{Until: d.clock.Now().Add(-recovery.CoolingOff + time.Hour)})
		if len(p.Events) == 0 {
			t.Fatal("no events before the cooling-off")
		}
		if _, err := d.svc.AuditLog(ctx, recovery.AuditFilter{From: d.clock.Now(), Until: d.clock.Now()}); err == nil {
			t.Fatal("an empty time range is accepted")
		}
		// The export walks forwards in batches and sees each event once.
		var n int64
		last := int64(0)
		if err := d.svc.ExportAuditEvents(ctx, recovery.AuditFilter{}, func(e recovery.Event) error {
			if e.Seq != last+1 {
				t.Fatalf("export jumped from %d to %d", last, e.Seq)
			}
			last, n = e.Seq, n+1
			return nil
		}); err != nil || n != rep.Count {
			t.Fatalf("export: %d of %d, %v", n, rep.Count, err)
		}
		// The approvals inbox and the account lookup.
		other := d.openConsole() // joins the active ticket: no second one
		_ = other
		pend, err := d.svc.PendingApprovals(ctx, 10)
		if err != nil || len(pend) != 0 {
			t.Fatalf("pending after approval: %v %v", pend, err)
		}
		ov, err := d.svc.LookupAccount(ctx, strings.ToUpper(customerEmail))
		if err != nil {
			t.Fatal(err)
		}
		if ov.ID != customer || ov.MaskedEmail != "c•••@example.com" || ov.MaskedPhone != "••• 67" || ov.TwoFactor.State != recovery.StateActive {
			t.Fatalf("overview: %+v", ov)
		}
		if len(ov.Tickets) != 1 || len(ov.Timeline) == 0 {
			t.Fatalf("overview: %d tickets, %d timeline entries", len(ov.Tickets), len(ov.Timeline))
		}
		var sawApproval, sawEnroll bool
		for _, e := range ov.Timeline {
			sawApproval = sawApproval || e.Action == "ticket.approved"
			sawEnroll = sawEnroll || e.Action == "factor.enrolled"
			if strings.Contains(e.Text, lastDeposit) {
				t.Fatalf("timeline shows the stored fact: %s", e.Text)
			}
		}
		if !sawApproval || !sawEnroll {
			t.Fatalf("timeline misses the ticket's or the account's events: %+v", ov.Timeline)
		}
		if _, err := d.svc.LookupAccount(ctx, recovery.AgentAccountID(d.agent.ID)); err == nil {
			t.Fatal("an agent's internal account is found by the lookup")
		}
	})
}
