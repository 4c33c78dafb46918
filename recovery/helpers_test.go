package recovery_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// clock is a fixed test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	// 12:00:10 UTC: 10 s into a step, so ±1 step codes are far from a boundary.
	return &clock{t: time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func testKeyring(t testing.TB, id string, fill byte) *recovery.Keyring {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = fill + byte(i)
	}
	k, err := recovery.NewKeyring([]string{id}, [][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newService(t testing.TB, store recovery.Store, c *clock) *recovery.Service {
	t.Helper()
	s, err := recovery.New(store, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), Issuer: "RecoveryDesk Test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var api = recovery.Actor{Type: recovery.ActorAPIKey, ID: "test", RequestID: "req-test"}

func ptr[T any](v T) *T { return &v }

// enrolled creates an account with an active factor and returns its secret and the step its
// confirmation consumed.
func enrolled(t testing.TB, s *recovery.Service, c *clock, id string) (secret string, codes []string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.UpsertAccount(ctx, api, id, recovery.AccountInput{Email: ptr(id + "@example.com")}); err != nil {
		t.Fatal(err)
	}
	en, err := s.BeginEnrollment(ctx, api, id, "")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := s.ConfirmEnrollment(ctx, api, id, code(t, en.Secret, recovery.Step(c.Now())))
	if err != nil {
		t.Fatal(err)
	}
	return en.Secret, conf.RecoveryCodes
}

func code(t testing.TB, secret string, step int64) string {
	t.Helper()
	c, err := recovery.CodeAt(secret, step)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode returns a 6-digit code that matches none of the steps around now.
func wrongCode(t testing.TB, secret string, now time.Time) string {
	t.Helper()
	cur := recovery.Step(now)
	bad := map[string]bool{}
	for d := int64(-2); d <= 2; d++ {
		bad[code(t, secret, cur+d)] = true
	}
	for _, w := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !bad[w] {
			return w
		}
	}
	t.Fatal("no wrong code found")
	return ""
}
