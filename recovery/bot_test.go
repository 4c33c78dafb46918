package recovery_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// The Telegram conversation in the domain, without the bot adapter: TelegramUpdate records an
// update id once, and the update's effects and its reply commit (or vanish) together.

// tgText is a private-chat text update, as the bot parses one.
func tgText(updateID, chat int64, text string) recovery.TelegramIn {
	return recovery.TelegramIn{UpdateID: updateID, ChatID: chat, ChatType: recovery.ChatPrivate, UserID: chat, Text: text}
}

// tgUpdate processes in and fails the test unless processed is want.
func tgUpdate(t *testing.T, s *recovery.Service, in recovery.TelegramIn, want bool) {
	t.Helper()
	got, err := s.TelegramUpdate(context.Background(), in)
	if err != nil {
		t.Fatalf("update %d: %v", in.UpdateID, err)
	}
	if got != want {
		t.Fatalf("update %d: processed = %v, want %v", in.UpdateID, got, want)
	}
}

// tgReply is one delivered Telegram notice.
type tgReply struct{ To, Kind, Body string }

// drainTelegram delivers every due Telegram notice through a sender that records it (the
// outbox sends one notice per chat at a time, so it dispatches until nothing is left).
func drainTelegram(t *testing.T, s *recovery.Service) []tgReply {
	t.Helper()
	var out []tgReply
	for range 100 {
		n, err := s.DispatchDue(context.Background(), recovery.NoticeTelegram, 0, func(_ context.Context, n recovery.Notice) error {
			out = append(out, tgReply{n.To, n.Kind, n.Body})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
	}
	t.Fatal("the outbox never ran dry")
	return nil
}

// repliesTo returns the bodies of the replies to chat, in order.
func repliesTo(rs []tgReply, chat string) []string {
	var out []string
	for _, r := range rs {
		if r.To == chat {
			out = append(out, r.Body)
		}
	}
	return out
}

var tgTicketID = regexp.MustCompile(`RD-[A-Z2-7]{10}`)

// openChatTicket walks chat through /lost and an e-mail (update ids first and first+1) and
// returns the ticket id the reply names.
func openChatTicket(t *testing.T, s *recovery.Service, first, chat int64, email string) string {
	t.Helper()
	tgUpdate(t, s, tgText(first, chat, "/lost"), true)
	tgUpdate(t, s, tgText(first+1, chat, email), true)
	rs := repliesTo(drainTelegram(t, s), itoa(chat))
	if len(rs) != 2 {
		t.Fatalf("chat %d got %d replies, want 2: %q", chat, len(rs), rs)
	}
	id := tgTicketID.FindString(rs[1])
	if id == "" {
		t.Fatalf("no ticket id in %q", rs[1])
	}
	return id
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// threadCount counts the ticket's messages whose body is body.
func threadCount(t *testing.T, s *recovery.Service, ticketID, body string) int {
	t.Helper()
	d, err := s.TicketDetail(context.Background(), ticketID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range d.Messages {
		if m.Body == body {
			n++
		}
	}
	return n
}

// TestTelegramUpdateProcessedOnce: a redelivered update id, sequentially and from 20
// goroutines at once (webhook redeliveries reaching several replicas), is processed once: one
// thread message, one reply, and the offset never goes back.
func TestTelegramUpdateProcessedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := newService(t, st, c)
		ctx := context.Background()
		const chat = 4101
		id := openChatTicket(t, s, 100, chat, "someone@example.com")

		in := tgText(102, chat, "my phone fell into the sea")
		tgUpdate(t, s, in, true)
		tgUpdate(t, s, in, false)
		// An update id below the offset that was never seen is new: it is processed.
		tgUpdate(t, s, tgText(50, chat, "late but new"), true)
		tgUpdate(t, s, tgText(50, chat, "late but new"), false)
		if off, err := s.TelegramOffset(ctx); err != nil || off != 103 {
			t.Fatalf("offset %d (%v), want 103: it must not go back for a late id", off, err)
		}

		const racers = 20
		var processed atomic.Int32
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				ok, err := s.TelegramUpdate(ctx, tgText(103, chat, "sent once"))
				if err != nil {
					t.Error(err)
				}
				if ok {
					processed.Add(1)
				}
			})
		}
		wg.Wait()
		if processed.Load() != 1 {
			t.Fatalf("%d of %d concurrent deliveries processed, want 1", processed.Load(), racers)
		}
		for body, want := range map[string]int{"my phone fell into the sea": 1, "late but new": 1, "sent once": 1} {
			if got := threadCount(t, s, id, body); got != want {
				t.Errorf("thread holds %q %d times, want %d", body, got, want)
			}
		}
		rs := repliesTo(drainTelegram(t, s), itoa(chat))
		if len(rs) != 3 {
			t.Fatalf("%d replies to 3 processed updates: %q", len(rs), rs)
		}
		for _, r := range rs {
			if r != "Sent to support." {
				t.Errorf("reply %q", r)
			}
		}
		if off, err := s.TelegramOffset(ctx); err != nil || off != 104 {
			t.Fatalf("offset %d (%v), want 104", off, err)
		}
	})
}

// failNoticeInserts makes every INSERT into the outbox fail inside the database, so that the
// reply of an update cannot be queued; the returned func removes the fault.
func failNoticeInserts(t *testing.T, dsn string) (heal func()) {
	t.Helper()
	if sqlstore.IsPostgres(dsn) {
		storetest.Exec(t, dsn, `CREATE FUNCTION rd_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected outbox failure'; END $$`)
		storetest.Exec(t, dsn, `CREATE TRIGGER rd_test_notices_fail BEFORE INSERT ON notices FOR EACH ROW EXECUTE FUNCTION rd_test_fail()`)
		return func() { storetest.Exec(t, dsn, `DROP TRIGGER rd_test_notices_fail ON notices`) }
	}
	storetest.Exec(t, dsn, `CREATE TRIGGER rd_test_notices_fail BEFORE INSERT ON notices BEGIN SELECT RAISE(ABORT, 'injected outbox failure'); END`)
	return func() { storetest.Exec(t, dsn, `DROP TRIGGER rd_test_notices_fail`) }
}

// TestTelegramReplyInSameTransaction: when the reply cannot be queued, the update leaves no
// trace — not marked processed, offset unchanged, no thread message, no conversation step, no
// audit event — so Telegram's redelivery processes it in full, with exactly one reply. Had the
// reply been queued in a transaction of its own, the failure would have left the effects
// without a reply (or a reply without the effects).
func TestTelegramReplyInSameTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		c := newClock()
		s := newService(t, st, c)
		ctx := context.Background()
		const chat, fresh = 4201, 4202
		id := openChatTicket(t, s, 200, chat, "someone@example.com")
		head := func() int64 {
			p, err := s.AuditLog(ctx, recovery.AuditFilter{Limit: 1})
			if err != nil || len(p.Events) != 1 {
				t.Fatalf("audit head: %v", err)
			}
			return p.Events[0].Seq
		}
		seq := head()

		heal := failNoticeInserts(t, dsn)
		relay := tgText(202, chat, "here is my ID card")
		if _, err := s.TelegramUpdate(ctx, relay); err == nil {
			t.Fatal("the update succeeded although its reply could not be queued")
		}
		// A fresh chat's /lost moves the conversation to "awaiting e-mail": that step is lost too.
		if _, err := s.TelegramUpdate(ctx, tgText(203, fresh, "/lost")); err == nil {
			t.Fatal("the update succeeded although its reply could not be queued")
		}
		if off, err := s.TelegramOffset(ctx); err != nil || off != 202 {
			t.Fatalf("offset %d (%v), want 202: a failed update must be fetched again", off, err)
		}
		if n := threadCount(t, s, id, "here is my ID card"); n != 0 {
			t.Fatalf("the thread kept the message of a failed update (%d)", n)
		}
		if got := head(); got != seq {
			t.Fatalf("audit head moved from %d to %d for failed updates", seq, got)
		}
		if rs := drainTelegram(t, s); len(rs) != 0 {
			t.Fatalf("replies queued by failed updates: %v", rs)
		}
		// The fresh chat's step was rolled back: an e-mail now is not taken as the answer.
		heal()
		tgUpdate(t, s, tgText(204, fresh, "other@example.com"), true)
		if rs := repliesTo(drainTelegram(t, s), itoa(fresh)); len(rs) != 1 || !strings.Contains(rs[0], "What would you like to do?") ||
			tgTicketID.MatchString(rs[0]) {
			t.Fatalf("after the rolled-back /lost an e-mail got %q, want the greeting", rs)
		}

		// Redelivered after the fault is gone: processed once, with its one reply.
		tgUpdate(t, s, relay, true)
		tgUpdate(t, s, relay, false)
		if n := threadCount(t, s, id, "here is my ID card"); n != 1 {
			t.Fatalf("thread holds the message %d times, want 1", n)
		}
		if rs := repliesTo(drainTelegram(t, s), itoa(chat)); len(rs) != 1 || rs[0] != "Sent to support." {
			t.Fatalf("replies after redelivery: %q", rs)
		}
		// The thread message, its event and the reply's notice.queued event are one commit.
		var actions []string
		err := s.ExportAuditEvents(ctx, recovery.AuditFilter{}, func(e recovery.Event) error {
			if e.RequestID == "tg-202" {
				actions = append(actions, e.Action)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(actions, ",") != "ticket.message,notice.queued" {
			t.Fatalf("events of update 202: %v, want ticket.message then notice.queued", actions)
		}
	})
}

// chatTranscript is what chat was told, kinds and bodies, with ticket ids blanked.
func chatTranscript(rs []tgReply, chat int64) string {
	var parts []string
	for _, r := range rs {
		if r.To == itoa(chat) {
			parts = append(parts, r.Kind+": "+tgTicketID.ReplaceAllString(r.Body, "RD-X"))
		}
	}
	return strings.Join(parts, "\n")
}

// runScript sends script to each chat in turn, line by line (a "" line is the chat's e-mail),
// numbering updates from *upd.
func runScript(t *testing.T, s *recovery.Service, upd *int64, script []string, emails map[int64]string, chats ...int64) {
	t.Helper()
	for _, line := range script {
		for _, chat := range chats {
			text := line
			if text == "" {
				text = emails[chat]
			}
			tgUpdate(t, s, tgText(*upd, chat, text), true)
			*upd++
		}
	}
}

// TestTelegramSameReplyWhetherAccountExists: the replies to an existing account's e-mail
// (claimed in another case) and to an unknown one are the same words — only the ticket id
// differs — from the claim through /status, a message and /cancel, and none names account data.
func TestTelegramSameReplyWhetherAccountExists(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := newService(t, st, c)
		enrolled(t, s, c, "alice")
		const known, unknown = 4301, 4302
		script := []string{"/lost", "", "/status", "any update?", "/cancel", "/status"}
		upd := int64(300)
		runScript(t, s, &upd, script, map[int64]string{known: "Alice@Example.com", unknown: "nobody@example.com"}, known, unknown)
		rs := drainTelegram(t, s)
		k, u := chatTranscript(rs, known), chatTranscript(rs, unknown)
		if k != u {
			t.Fatalf("an existing account's chat heard:\n%s\nan unknown one's:\n%s", k, u)
		}
		if n := len(repliesTo(rs, itoa(known))); n != len(script) || !strings.Contains(k, "withdrawn") {
			t.Fatalf("%d replies to %d updates (the script must reach /cancel):\n%s", n, len(script), k)
		}
		for _, leak := range []string{"alice", "Alice", "xample"} {
			if strings.Contains(k, leak) {
				t.Fatalf("a reply names account data %q:\n%s", leak, k)
			}
		}
	})
}

// TestTelegramSameReplyWhenJoining: a chat whose e-mail joins the account's active ticket
// (opened by support) must hear what a chat opening a fresh ticket for an unknown e-mail hears;
// otherwise the difference tells an attacker that the account exists and is being recovered.
func TestTelegramSameReplyWhenJoining(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := newService(t, st, c)
		enrolled(t, s, c, "alice")
		agent := recovery.Actor{Type: recovery.ActorAgent, ID: "agent-1"}
		if _, err := s.OpenTicket(context.Background(), agent, recovery.OpenRequest{Channel: recovery.ChannelConsole, Claimed: "alice@example.com"}); err != nil {
			t.Fatal(err)
		}
		const joiner, unknown = 4311, 4312
		upd := int64(320)
		runScript(t, s, &upd, []string{"/lost", "", "/status", "any update?", "/cancel"},
			map[int64]string{joiner: "alice@example.com", unknown: "nobody@example.com"}, joiner, unknown)
		rs := drainTelegram(t, s)
		if j, u := chatTranscript(rs, joiner), chatTranscript(rs, unknown); j != u {
			t.Fatalf("a chat that joined an active ticket hears:\n%s\nwhile a chat with an unknown e-mail hears:\n%s", j, u)
		}
	})
}

// TestTelegramLinkToken: the token lives exactly TelegramLinkTokenTTL — valid 1 ns before,
// refused at the instant of expiry — and works once; expired, reused and never-issued tokens
// get one generic reply, each failure audited with its reason and never with the token.
func TestTelegramLinkToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		c := newClock()
		s := newService(t, st, c)
		ctx := context.Background()
		for _, id := range []string{"acc1", "acc2", "acc3"} {
			enrolled(t, s, c, id)
		}
		t0 := c.Now()
		user := func(id string) recovery.Actor { return recovery.Actor{Type: recovery.ActorEndUser, ID: id} }
		issue := func(acc string) string {
			t.Helper()
			tok, exp, err := s.CreateTelegramLinkToken(ctx, user(acc), acc)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.Now().Add(10 * time.Minute); !exp.Equal(want) || len(tok) != 32 {
				t.Fatalf("token of %d chars expires %v, want %v", len(tok), exp, want)
			}
			return tok
		}
		linked := func(acc string) string {
			l, err := s.TelegramLinkOf(ctx, acc)
			if err != nil {
				return ""
			}
			return l.ChatID
		}
		tok1, tok2 := issue("acc1"), issue("acc2")
		upd := int64(500)
		redeem := func(chat int64, tok string) string {
			t.Helper()
			tgUpdate(t, s, tgText(upd, chat, "/start "+tok), true)
			upd++
			rs := repliesTo(drainTelegram(t, s), itoa(chat))
			if len(rs) != 1 {
				t.Fatalf("chat %d: %d replies", chat, len(rs))
			}
			return rs[0]
		}

		c.Set(t0.Add(10*time.Minute - time.Nanosecond))
		if r := redeem(4401, tok1); !strings.Contains(r, "now linked") || linked("acc1") != "4401" {
			t.Fatalf("1 ns before expiry: %q, linked to %q", r, linked("acc1"))
		}
		c.Set(t0.Add(10 * time.Minute))
		generic := redeem(4402, tok2)
		if !strings.Contains(generic, "does not work") || linked("acc2") != "" {
			t.Fatalf("at expiry: %q, linked to %q", generic, linked("acc2"))
		}

		tok3 := issue("acc3")
		if r := redeem(4403, tok3); !strings.Contains(r, "now linked") {
			t.Fatalf("fresh token: %q", r)
		}
		for _, chat := range []int64{4404, 4403} { // another chat, then the same chat again
			if r := redeem(chat, tok3); r != generic {
				t.Fatalf("reuse from chat %d: %q, want the generic %q", chat, r, generic)
			}
		}
		if r := redeem(4405, strings.Repeat("ab", 16)); r != generic {
			t.Fatalf("never issued: %q", r)
		}
		if linked("acc3") != "4403" || linked("acc2") != "" {
			t.Fatalf("links: acc3 → %q, acc2 → %q", linked("acc3"), linked("acc2"))
		}

		var why []string
		err := s.ExportAuditEvents(ctx, recovery.AuditFilter{Action: "telegram."}, func(e recovery.Event) error {
			for _, tok := range []string{tok1, tok2, tok3} {
				if strings.Contains(string(e.Details), tok) || strings.Contains(e.Reason, tok) || strings.Contains(e.TargetID, tok) {
					t.Fatalf("event %s holds a link token", e.Action)
				}
			}
			if e.Action == "telegram.link_failed" {
				var d struct{ Why string }
				if err := json.Unmarshal(e.Details, &d); err != nil {
					t.Fatal(err)
				}
				why = append(why, e.TargetID+":"+d.Why)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(why, ","); got != "4402:expired,4404:used,4403:used,4405:unknown" {
			t.Fatalf("link failures audited as %s", got)
		}
	})
}
