package bot_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// countPolls is an http.RoundTripper that counts one bot's getUpdates requests.
type countPolls struct {
	next  http.RoundTripper
	polls atomic.Int64
}

func (c *countPolls) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/getUpdates") {
		c.polls.Add(1)
	}
	return c.next.RoundTrip(r)
}

// replica is one `recoverydesk serve` process as far as the bot is concerned: its own store
// (connection pool) on the shared database, its own service and bot, polling with the store's
// advisory lock.
type replica struct {
	name  string
	bot   *bot.Bot
	svc   *recovery.Service
	logs  *logBuf
	polls *countPolls
	stop  func()
}

func (e *env) replica(name string, s *sqlstore.Store) *replica {
	e.t.Helper()
	svc, err := recovery.New(s, recovery.Options{Now: e.clock.Now, Keys: keyring(e.t), BaseURL: "https://desk.example"})
	if err != nil {
		e.t.Fatal(err)
	}
	r := &replica{name: name, svc: svc, logs: &logBuf{}, polls: &countPolls{next: http.DefaultTransport.(*http.Transport).Clone()}}
	e.t.Cleanup(func() {
		if strings.Contains(r.logs.String(), token) {
			e.t.Errorf("the bot token appears in the logs of %s", name)
		}
	})
	r.bot, err = bot.New(bot.Options{
		Token: token, Endpoint: e.tg.Endpoint(), Service: svc, Now: time.Now,
		Logger:      slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient:  &http.Client{Timeout: 5 * time.Second, Transport: r.polls},
		PollTimeout: time.Second, Wake: 50 * time.Millisecond,
		PollLock: func(ctx context.Context) (func(), func(context.Context) bool, bool, error) {
			return s.TryLock(ctx, bot.PollLockKey)
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// run starts the replica's bot; stop cancels it and waits until Run has returned (its lock is
// released by then).
func (e *env) run(r *replica) {
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.bot.Run(ctx); err != nil {
			e.t.Errorf("%s: Run: %v", r.name, err)
		}
	}()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(r.stop)
}

func (r *replica) polling() bool {
	return strings.Contains(r.logs.String(), "telegram polling started")
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPollingElection: two replicas on one PostgreSQL database, both in polling mode with the
// advisory lock. Exactly one polls; when it stops (its context cancelled, its lock released),
// the other takes over within the lock retry (5 s) and processes the next update — once, even
// though the stopped replica's last long poll may have fetched it.
func TestPollingElection(t *testing.T) {
	st, dsn := storetest.Postgres(t)
	st2, err := sqlstore.Open(bg, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() }) // runs before the database is dropped
	e := newEnvOn(t, st)
	a, b := e.replica("replica A", st), e.replica("replica B", st2)

	e.run(a)
	waitFor(t, "replica A to take the poll lock", 10*time.Second, a.polling)
	e.run(b)
	const chat = 1301
	e.tg.SendText(chat, "u", "/lost")
	e.last(chat, 1)
	time.Sleep(1500 * time.Millisecond) // B has tried the lock by now, and A has polled again
	if b.polling() || b.polls.polls.Load() != 0 || a.polls.polls.Load() == 0 {
		t.Fatalf("both poll or the wrong one does: A polled %d times, B %d times (B started: %v)",
			a.polls.polls.Load(), b.polls.polls.Load(), b.polling())
	}
	if n := e.tg.Calls("getUpdates"); int64(n) != a.polls.polls.Load() {
		t.Fatalf("the fake saw %d getUpdates, A sent %d", n, a.polls.polls.Load())
	}

	a.stop()
	aPolls := a.polls.polls.Load()
	// Sent at once: A's abandoned long poll may still be open at the fake and fetch it.
	up := e.tg.SendText(chat, "u", "erin@example.com")
	opened := e.last(chat, 2)
	id := chatTicket(t, opened.Text)
	if !b.polling() || b.polls.polls.Load() == 0 {
		t.Fatal("the reply came but B never started polling")
	}
	e.waitOffset(up)
	last := e.tg.SendText(chat, "u", "is anyone there?")
	e.last(chat, 3)
	e.waitOffset(last)
	time.Sleep(500 * time.Millisecond) // a duplicate reply or second processing would show now

	if got := a.polls.polls.Load(); got != aPolls {
		t.Fatalf("A polled %d more times after it stopped", got-aPolls)
	}
	if got := len(e.tg.SentTo(chat)); got != 3 {
		t.Fatalf("%d replies to 3 updates", got)
	}
	ts, err := e.svc.Tickets(bg, recovery.TicketFilter{Channel: recovery.ChannelTelegram})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].ID != id {
		t.Fatalf("%d tickets, want the one %s", len(ts), id)
	}
	d, err := e.svc.TicketDetail(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Messages) != 1 || d.Messages[0].Body != "is anyone there?" {
		t.Fatalf("thread %+v, want the one message", d.Messages)
	}
}
