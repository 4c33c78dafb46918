package bot_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/bot"
	"github.com/recoverydesk/recoverydesk/bot/bottest"
	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

const token = "987654:AAbotTOKENthatMUSTneverBEloggedXYZ"

var bg = context.Background()

// clock starts at a fixed instant and runs with real time (pacing, 429 waits and the outbox's
// retries are measured in real time); Add jumps it forward (cooling-off, token expiry).
type clock struct {
	mu    sync.Mutex
	base  time.Time
	start time.Time
}

func newClock() *clock {
	return &clock{base: time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC), start: time.Now()}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.start))
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.base = c.base.Add(d)
	c.mu.Unlock()
}

// logBuf collects a test's log lines; its cleanup fails the test if the token is in them.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is one test's desk: a SQLite (or PostgreSQL) store, the service, the fake Bot API server.
type env struct {
	t     *testing.T
	store *sqlstore.Store
	svc   *recovery.Service
	clock *clock
	tg    *bottest.Server
	logs  *logBuf
}

func keyring(t testing.TB) *recovery.Keyring {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i + 7)
	}
	k, err := recovery.NewKeyring([]string{"k1"}, [][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, err := sqlstore.Open(bg, filepath.Join(t.TempDir(), "bot.db"), sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newEnvOn(t, s)
}

func newEnvOn(t *testing.T, s *sqlstore.Store) *env {
	t.Helper()
	c := newClock()
	svc, err := recovery.New(s, recovery.Options{Now: c.Now, Keys: keyring(t), BaseURL: "https://desk.example"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: s, svc: svc, clock: c, tg: bottest.New(t, token), logs: &logBuf{}}
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), "AAbotTOKEN") {
			t.Errorf("the bot token appears in the logs:\n%s", e.logs.String())
		}
	})
	return e
}

// newBot builds a bot on the fake server with short waits for tests.
func (e *env) newBot(mod func(*bot.Options)) *bot.Bot {
	e.t.Helper()
	o := bot.Options{
		Token: token, Endpoint: e.tg.Endpoint(), Service: e.svc, Now: time.Now,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient:  &http.Client{Timeout: 5 * time.Second},
		PollTimeout: time.Second, Wake: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	b, err := bot.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// start runs b until the returned stop is called (or the test ends).
func (e *env) start(b *bot.Bot) (stop func()) {
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// account creates an account with an active factor and the facts the default checklist asks.
func (e *env) account(id, email string) {
	e.t.Helper()
	api := recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}
	_, _, err := e.svc.UpsertAccount(bg, api, id, recovery.AccountInput{
		Email: &email, Facts: map[string]any{"last_deposit_amount": "1,234.50 EUR", "signup_country": "Germany"}})
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := e.svc.BeginEnrollment(bg, api, id, "")
	if err != nil {
		e.t.Fatal(err)
	}
	code, err := recovery.CodeAt(en.Secret, recovery.Step(e.clock.Now()))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ConfirmEnrollment(bg, api, id, code); err != nil {
		e.t.Fatal(err)
	}
}

// last waits for the n-th message to chat and returns its text.
func (e *env) last(chat int64, n int) bottest.Message {
	e.t.Helper()
	got := e.tg.WaitSent(e.t, chat, n, 15*time.Second)
	return got[n-1]
}

var ticketID = regexp.MustCompile(`RD-[A-Z2-7]{10}`)

// chatTicket reads the chat's ticket id out of a bot message.
func chatTicket(t *testing.T, text string) string {
	t.Helper()
	id := ticketID.FindString(text)
	if id == "" {
		t.Fatalf("no ticket id in %q", text)
	}
	return id
}

// waitOffset waits until the update updateID has been processed (the stored offset passed it).
func (e *env) waitOffset(updateID int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		off, err := e.svc.TelegramOffset(bg)
		if err != nil {
			e.t.Fatal(err)
		}
		if off > int64(updateID) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("update %d not processed", updateID)
}
