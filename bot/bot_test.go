package bot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

var codeInMail = regexp.MustCompile(`code is (\d{6})`)

// TestLostDeviceConversation: the whole path through the fake server — the chat is linked from a
// web session, then the user asks for help, writes and sends a photo, an agent's reply arrives,
// /status explains the waiting period, and after a real Execute the re-enrollment link arrives.
func TestLostDeviceConversation(t *testing.T) {
	e := newEnv(t)
	e.account("cust-1", "alice@example.com")
	const chat = 4242
	stop := e.start(e.newBot(nil))
	defer stop()

	// Linking before the ticket (the end-user pages create the token).
	tok, _, err := e.svc.CreateTelegramLinkToken(bg, recovery.Actor{Type: recovery.ActorEndUser, ID: "cust-1"}, "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	e.tg.SendText(chat, "alice", "/start "+tok)
	if m := e.last(chat, 1); !strings.Contains(m.Text, "now linked") {
		t.Fatalf("link reply %q", m.Text)
	}
	e.clock.Add(time.Minute)

	e.tg.SendText(chat, "alice", "/start")
	greet := e.last(chat, 2)
	for _, b := range []string{recovery.ButtonLost, recovery.ButtonStatus, recovery.ButtonSupport} {
		if !greet.HasButton(b) {
			t.Fatalf("greeting lacks button %q: %+v", b, greet.Buttons)
		}
	}
	e.tg.PressButton(chat, recovery.ButtonLost)
	// The callback answer and the question.
	msgs := e.tg.WaitSent(t, chat, 4, 15*time.Second)
	if !strings.Contains(msgs[len(msgs)-1].Text+msgs[len(msgs)-2].Text, "e-mail address of your account") {
		t.Fatalf("no e-mail question: %+v", msgs)
	}
	n := len(msgs)
	e.tg.SendText(chat, "alice", "Alice@Example.com")
	opened := e.last(chat, n+1)
	id := chatTicket(t, opened.Text)
	td, err := e.svc.TicketDetail(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if td.AccountID != "cust-1" || td.Channel != recovery.ChannelTelegram || td.ChatID != "4242" || !td.ChatLinkedBefore {
		t.Fatalf("ticket %+v", td.Ticket)
	}

	// Relay: text and a photo (file id + SHA-256 of the bytes downloaded through the endpoint).
	e.tg.SendText(chat, "alice", "My phone fell in the sea")
	e.last(chat, n+2)
	photo := []byte("\x89PNG fake photo bytes")
	_, fileID := e.tg.SendPhoto(chat, photo)
	e.last(chat, n+3)
	sum := sha256.Sum256(photo)
	td, _ = e.svc.TicketDetail(bg, id)
	var sawText, sawPhoto bool
	for _, m := range td.Messages {
		sawText = sawText || m.Body == "My phone fell in the sea"
		if m.EvidenceRef == fileID {
			sawPhoto = m.EvidenceSHA256 == hex.EncodeToString(sum[:])
		}
	}
	if !sawText || !sawPhoto {
		t.Fatalf("thread %+v", td.Messages)
	}

	// An agent's reply through the domain arrives in the chat.
	agent, sup, sup2 := agents(t, e)
	if err := e.svc.Reply(bg, agent, id, "Hello Alice, we are on it."); err != nil {
		t.Fatal(err)
	}
	e.bumpAndWait(chat, n+4, "we are on it")

	// Checklist, request, approval: /status explains the waiting period.
	passChecklist(t, e, agent, id)
	if err := e.svc.RequestReset(bg, agent, id, version(t, e, id), "verified"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Approve(bg, sup, id, version(t, e, id), e.clock.Now().Add(-time.Minute), "ok"); err != nil {
		t.Fatal(err)
	}
	// The requester hears that the checks are complete, then the veto notice goes to the
	// linked chat (which is the requester's: no separate approval message).
	sent := e.tg.WaitSent(t, chat, n+6, 15*time.Second)
	if !strings.Contains(sent[n+4].Text, "identity checks are complete") {
		t.Fatalf("status notice %q", sent[n+4].Text)
	}
	if !strings.Contains(sent[n+5].Text, "/veto/") {
		t.Fatalf("veto notice %q", sent[n+5].Text)
	}
	e.tg.SendText(chat, "alice", "/status")
	st := e.last(chat, n+7)
	if !strings.Contains(st.Text, "waiting period") || !strings.Contains(st.Text, "protection") || !strings.Contains(st.Text, "UTC") {
		t.Fatalf("status %q", st.Text)
	}
	e.clock.Add(recovery.CoolingOff)
	if err := e.svc.Execute(bg, sup2, id, version(t, e, id), e.clock.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.bumpAndWait(chat, n+8, "/reenroll/")
}

// bumpAndWait waits for the n-th message to chat (the dispatcher finds it within Wake) and checks
// it contains want.
func (e *env) bumpAndWait(chat int64, n int, want string) {
	e.t.Helper()
	if m := e.last(chat, n); !strings.Contains(m.Text, want) {
		e.t.Fatalf("message %d %q lacks %q", n, m.Text, want)
	}
}

func agents(t *testing.T, e *env) (agent, sup, sup2 recovery.Actor) {
	t.Helper()
	mk := func(email, role string) recovery.Actor {
		a, _, err := e.svc.CreateAgent(bg, recovery.Actor{Type: recovery.ActorSystem, ID: "cli"}, email, strings.Split(email, "@")[0], role)
		if err != nil {
			t.Fatal(err)
		}
		return recovery.Actor{Type: recovery.ActorAgent, ID: a.ID}
	}
	return mk("agent@desk.example", recovery.RoleAgent), mk("sup@desk.example", recovery.RoleSupervisor), mk("sup2@desk.example", recovery.RoleSupervisor)
}

func version(t *testing.T, e *env, id string) int64 {
	t.Helper()
	td, err := e.svc.TicketDetail(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	return td.Version
}

func passChecklist(t *testing.T, e *env, agent recovery.Actor, id string) {
	t.Helper()
	if err := e.svc.SendEmailCode(bg, agent, id, version(t, e, id), "email_code"); err != nil {
		t.Fatal(err)
	}
	var code string
	for {
		n, err := e.svc.DispatchDue(bg, recovery.NoticeEmail, 100, func(_ context.Context, n recovery.Notice) error {
			if m := codeInMail.FindStringSubmatch(n.Body); m != nil {
				code = m[1]
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if ok, err := e.svc.CheckEmailCode(bg, agent, id, version(t, e, id), "email_code", code); err != nil || !ok {
		t.Fatalf("email code: %v %v", ok, err)
	}
	for key, answer := range map[string]string{"knowledge_last_deposit": "1234.5 eur", "knowledge_signup_country": "germany"} {
		if ok, err := e.svc.CheckKnowledge(bg, agent, id, version(t, e, id), key, answer); err != nil || !ok {
			t.Fatalf("knowledge %s: %v %v", key, ok, err)
		}
	}
}

// TestSameAnswerWhetherAccountExists: the replies to an existing and an unknown e-mail differ
// only in the ticket id.
func TestSameAnswerWhetherAccountExists(t *testing.T) {
	e := newEnv(t)
	e.account("cust-1", "alice@example.com")
	e.start(e.newBot(nil))
	replies := map[int64]string{}
	for chat, email := range map[int64]string{501: "alice@example.com", 502: "nobody@example.com"} {
		e.tg.SendText(chat, "u", "/lost")
		e.last(chat, 1)
		e.tg.SendText(chat, "u", email)
		replies[chat] = ticketID.ReplaceAllString(e.last(chat, 2).Text, "RD-X")
		e.tg.SendText(chat, "u", "/status")
		replies[chat] += "|" + ticketID.ReplaceAllString(e.last(chat, 3).Text, "RD-X")
	}
	if replies[501] != replies[502] {
		t.Fatalf("replies differ:\n%s\n%s", replies[501], replies[502])
	}
	if strings.Contains(replies[501], "alice") {
		t.Fatalf("reply names account data: %s", replies[501])
	}
}

// TestDuplicateAndOutOfOrderUpdates: a redelivered update and an old id pushed late are each
// processed once.
func TestDuplicateAndOutOfOrderUpdates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		e := newEnvOn(t, s)
		e.start(e.newBot(nil))
		const chat = 601
		e.tg.SendText(chat, "u", "/lost")
		e.last(chat, 1)
		e.tg.SendText(chat, "u", "someone@example.com")
		id := chatTicket(t, e.last(chat, 2).Text)
		up := e.tg.SendText(chat, "u", "first message")
		e.last(chat, 3)
		e.tg.Redeliver(up)
		e.tg.Redeliver(up)
		// An update with an id far below the offset arrives late: it is new, so it is processed.
		e.tg.PushRaw(json.RawMessage(fmt.Sprintf(`{"update_id":17,"message":{"message_id":900,"date":1,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"u"},"text":"late message"}}`, chat, chat)))
		e.last(chat, 4)
		e.tg.Redeliver(17)
		last := e.tg.SendText(chat, "u", "after")
		e.last(chat, 5)
		e.waitOffset(last)
		td, err := e.svc.TicketDetail(bg, id)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, m := range td.Messages {
			count[m.Body]++
		}
		if count["first message"] != 1 || count["late message"] != 1 || count["after"] != 1 {
			t.Fatalf("thread counts %v", count)
		}
		if got := len(e.tg.SentTo(chat)); got != 5 {
			t.Fatalf("%d replies, want 5", got)
		}
	})
}

// TestRestartMidConversation: a new bot on the same database continues the conversation.
func TestRestartMidConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		e := newEnvOn(t, s)
		stop := e.start(e.newBot(nil))
		const chat = 701
		e.tg.SendText(chat, "u", "/lost")
		e.last(chat, 1)
		stop()
		up := e.tg.SendText(chat, "u", "bob@example.com") // arrives while no bot runs
		e.start(e.newBot(nil))
		opened := e.last(chat, 2)
		chatTicket(t, opened.Text)
		e.waitOffset(up)
		time.Sleep(300 * time.Millisecond)
		if got := len(e.tg.SentTo(chat)); got != 2 {
			t.Fatalf("%d messages after restart, want 2", got)
		}
	})
}

// Test429RetryAfterHonoured: Telegram's 429 defers the message by retry_after, measured at the
// fake server, and nothing is lost.
func Test429RetryAfterHonoured(t *testing.T) {
	e := newEnv(t)
	e.tg.FailNext("sendMessage", 1, 429, 2)
	e.start(e.newBot(nil))
	const chat = 801
	e.tg.SendText(chat, "u", "/start")
	e.last(chat, 1)
	times := e.tg.CallTimes("sendMessage", chat)
	if len(times) != 2 {
		t.Fatalf("%d sendMessage calls, want 2 (one 429, one accepted)", len(times))
	}
	if wait := times[1].Sub(times[0]); wait < 2*time.Second {
		t.Fatalf("retried after %v, want at least the retry_after of 2 s", wait)
	}
}

// TestAPIDownThenBack: while Telegram is unreachable the agent's reply waits in the outbox; once
// it is back (and the retry is due) it is delivered. The transport errors carry the token in
// their URL; the logs do not (checked by the env's cleanup).
func TestAPIDownThenBack(t *testing.T) {
	e := newEnv(t)
	e.start(e.newBot(nil))
	const chat = 901
	e.tg.SendText(chat, "u", "/lost")
	e.last(chat, 1)
	e.tg.SendText(chat, "u", "carol@example.com")
	id := chatTicket(t, e.last(chat, 2).Text)
	agent, _, _ := agents(t, e)
	e.tg.SetDown(true)
	if err := e.svc.Reply(bg, agent, id, "Are you there?"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err := e.svc.Notices(bg, recovery.NoticeFilter{Channel: recovery.NoticeTelegram, TicketID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) > 0 && ns[0].Kind == "agent_reply" && ns[0].Attempts > 0 && ns[0].State == recovery.NoticeQueued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reply was not tried while down: %+v", ns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the poller fails too, and logs it
	e.tg.SetDown(false)
	e.clock.Add(recovery.NoticeBackoffBase) // the retry is due
	e.bumpAndWait(chat, 3, "Are you there?")
	if !strings.Contains(e.logs.String(), "getUpdates failed") {
		t.Fatalf("no poll failure logged:\n%s", e.logs.String())
	}
}

// TestPerChatPacing: replies to one chat reach Telegram at most one a second.
func TestPerChatPacing(t *testing.T) {
	e := newEnv(t)
	e.start(e.newBot(nil))
	const chat = 1001
	e.tg.SendText(chat, "u", "/lost")
	e.tg.SendText(chat, "u", "dave@example.com")
	for i := range 3 {
		e.tg.SendText(chat, "u", fmt.Sprintf("message %d", i))
	}
	e.tg.WaitSent(t, chat, 5, 20*time.Second)
	times := e.tg.CallTimes("sendMessage", chat)
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second {
			t.Fatalf("messages %d and %d arrived %v apart", i-1, i, gap)
		}
	}
}

// TestWebhook: a missing or wrong secret is refused and nothing is processed; the valid one is
// processed once, however often it is delivered.
func TestWebhook(t *testing.T) {
	e := newEnv(t)
	const secret = "s3cret-webhook_TOKEN"
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	b := e.newBot(func(o *bot.Options) { o.WebhookSecret, o.BaseURL = secret, srv.URL })
	h = b.WebhookHandler()
	e.start(b)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if url, sec := e.tg.Webhook(); url == srv.URL+"/telegram/webhook" && sec == secret {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook not registered with its secret")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const chat = 1101
	up := e.tg.SendText(chat, "u", "/start")
	body := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":1,"date":1,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"u"},"text":"/start"}}`, up, chat, chat)
	for _, c := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusForbidden}, {secret + "x", http.StatusForbidden}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/telegram/webhook", strings.NewReader(body))
		if c.header != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("secret %q: status %d, want %d", c.header, resp.StatusCode, c.want)
		}
	}
	if off, _ := e.svc.TelegramOffset(bg); off != 0 {
		t.Fatalf("a refused update was processed (offset %d)", off)
	}
	for range 2 {
		resp, err := e.tg.DeliverWebhook(bg, up)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("valid delivery: %d", resp.StatusCode)
		}
	}
	e.last(chat, 1)
	time.Sleep(300 * time.Millisecond)
	if got := len(e.tg.SentTo(chat)); got != 1 {
		t.Fatalf("%d replies to a twice-delivered update, want 1", got)
	}
	if e.tg.Calls("getUpdates") != 0 {
		t.Fatal("the bot polled in webhook mode")
	}
}

// TestLinkTokens: valid links; expired, reused and foreign tokens get one generic answer; a chat
// linked to another account is refused; a group chat is ignored.
func TestLinkTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		e := newEnvOn(t, s)
		e.account("a1", "a1@example.com")
		e.account("a2", "a2@example.com")
		e.account("a3", "a3@example.com")
		e.start(e.newBot(nil))
		user := func(id string) recovery.Actor { return recovery.Actor{Type: recovery.ActorEndUser, ID: id} }
		newToken := func(acc string) string {
			tok, exp, err := e.svc.CreateTelegramLinkToken(bg, user(acc), acc)
			if err != nil {
				t.Fatal(err)
			}
			if d := exp.Sub(e.clock.Now()); d > 10*time.Minute || d < 9*time.Minute || len(tok) != 32 {
				t.Fatalf("token %d chars, expires in %v", len(tok), d)
			}
			return tok
		}
		linkedTo := func(acc string) string {
			l, err := e.svc.TelegramLinkOf(bg, acc)
			if err != nil {
				return ""
			}
			return l.ChatID
		}
		// Valid.
		t1 := newToken("a1")
		e.tg.SendText(1201, "u", "/start "+t1)
		if m := e.last(1201, 1); !strings.Contains(m.Text, "now linked") || linkedTo("a1") != "1201" {
			t.Fatalf("valid token: %q, linked to %q", m.Text, linkedTo("a1"))
		}
		// Reused (from another chat).
		e.tg.SendText(1202, "u", "/start "+t1)
		generic := e.last(1202, 1).Text
		// Expired.
		t2 := newToken("a2")
		e.clock.Add(10*time.Minute + time.Second)
		e.tg.SendText(1203, "u", "/start "+t2)
		// Foreign: well-formed, never issued.
		e.tg.SendText(1204, "u", "/start 0123456789abcdef0123456789abcdef")
		for _, chat := range []int64{1202, 1203, 1204} {
			if got := e.last(chat, 1).Text; got != generic || !strings.Contains(got, "does not work") {
				t.Fatalf("chat %d: %q, want the generic %q", chat, got, generic)
			}
		}
		if linkedTo("a2") != "" || linkedTo("a1") != "1201" {
			t.Fatal("a failed token linked something")
		}
		// A chat linked elsewhere is refused.
		t3 := newToken("a3")
		e.tg.SendText(1201, "u", "/start "+t3)
		if m := e.last(1201, 2); !strings.Contains(m.Text, "already linked to another account") || linkedTo("a3") != "" {
			t.Fatalf("linked elsewhere: %q", m.Text)
		}
		// A group chat is ignored: no answer, no link, the token stays usable.
		up := e.tg.SendGroupText(-1205, "/start "+t3)
		e.waitOffset(up)
		if len(e.tg.SentTo(-1205)) != 0 || linkedTo("a3") != "" {
			t.Fatal("the group chat was served")
		}
		e.tg.SendText(1206, "u", "/start "+t3)
		if m := e.last(1206, 1); !strings.Contains(m.Text, "now linked") || linkedTo("a3") != "1206" {
			t.Fatalf("token after the group: %q", m.Text)
		}
		// Unlink.
		if err := e.svc.UnlinkTelegram(bg, user("a3"), "a3"); err != nil || linkedTo("a3") != "" {
			t.Fatalf("unlink: %v %q", err, linkedTo("a3"))
		}
	})
}

// TestTimeSyncAdviceAndCancel: a user who says codes do not work gets the time-sync advice;
// /cancel withdraws the request.
func TestTimeSyncAdviceAndCancel(t *testing.T) {
	e := newEnv(t)
	e.start(e.newBot(nil))
	const chat = 1301
	e.tg.SendText(chat, "u", "my codes don't work")
	if m := e.last(chat, 1); !strings.Contains(m.Text, "time synchronization") {
		t.Fatalf("no advice: %q", m.Text)
	}
	e.tg.SendText(chat, "u", "/lost")
	e.last(chat, 2)
	e.tg.SendText(chat, "u", "erin@example.com")
	id := chatTicket(t, e.last(chat, 3).Text)
	e.tg.SendText(chat, "u", "/cancel")
	if m := e.last(chat, 4); !strings.Contains(m.Text, "withdrawn") {
		t.Fatalf("cancel: %q", m.Text)
	}
	td, err := e.svc.TicketDetail(bg, id)
	if err != nil || td.State != recovery.TicketWithdrawn {
		t.Fatalf("ticket %v %v", td.State, err)
	}
}
