package recovery_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// tally is a recovery.Observer that counts what it hears, one key per call and labels.
type tally struct {
	mu  sync.Mutex
	got map[string]int
}

func (t *tally) add(k string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.got == nil {
		t.got = map[string]int{}
	}
	t.got[k]++
}

func (t *tally) CodeChecked(factor, purpose, result string) {
	t.add("check " + factor + " " + purpose + " " + result)
}
func (t *tally) ThrottleStarted(scope string)           { t.add("throttle " + scope) }
func (t *tally) Suspended(factor string)                { t.add("suspended " + factor) }
func (t *tally) DeliveryFailed(channel, outcome string) { t.add("delivery " + channel + " " + outcome) }

// take returns what was heard since the last take and forgets it.
func (t *tally) take() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	got := t.got
	t.got = nil
	if got == nil {
		got = map[string]int{}
	}
	return got
}

func expectHeard(t *testing.T, obs *tally, step string, want map[string]int) {
	t.Helper()
	if got := obs.take(); !maps.Equal(got, want) {
		keys := slices.Sorted(maps.Keys(got))
		var b strings.Builder
		for _, k := range keys {
			b.WriteString("\n  " + k)
		}
		t.Errorf("%s: heard %v, want %v%s", step, got, want, b.String())
	}
}

// TestObserver walks a TOTP factor through every outcome the observer names (confirm, ok,
// replayed, wrong, the backoff, a throttled attempt, suspension, a suspended attempt, not
// enrolled), then the recovery code's outcomes and a failed delivery, and checks after each
// step exactly what the observer heard: once per outcome, nothing twice.
func TestObserver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		obs := &tally{}
		s, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		secret, codes := enrolled(t, s, c, "obs")
		expectHeard(t, obs, "enrollment", map[string]int{"check totp confirm ok": 1})

		c.Add(30 * time.Second)
		good := code(t, secret, recovery.Step(c.Now()))
		if _, err := s.Verify(ctx, api, "obs", good); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, api, "obs", good); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("replay: %v", err)
		}
		expectHeard(t, obs, "ok and replay", map[string]int{"check totp verify ok": 1, "check totp verify replayed": 1})

		// Failures 2 to 5 (the replay was the first): the 5th starts the backoff.
		for range 4 {
			if _, err := s.Verify(ctx, api, "obs", wrongCode(t, secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatalf("wrong code: %v", err)
			}
		}
		expectHeard(t, obs, "four wrong codes", map[string]int{"check totp verify wrong": 4, "throttle totp": 1})
		if _, err := s.Verify(ctx, api, "obs", good); !errors.Is(err, recovery.ErrTooManyAttempts) {
			t.Fatalf("during the backoff: %v", err)
		}
		expectHeard(t, obs, "during the backoff", map[string]int{"check totp verify throttled": 1})

		// Failures 6 to 20, each after the backoff ended: each starts another; the 20th suspends.
		for range 15 {
			c.Add(2 * time.Hour)
			if _, err := s.Verify(ctx, api, "obs", wrongCode(t, secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatalf("wrong code: %v", err)
			}
		}
		expectHeard(t, obs, "up to the suspension", map[string]int{"check totp verify wrong": 15, "throttle totp": 15, "suspended totp": 1})
		c.Add(2 * time.Hour)
		if _, err := s.Verify(ctx, api, "obs", code(t, secret, recovery.Step(c.Now()))); !errors.Is(err, recovery.ErrSuspended) {
			t.Fatalf("suspended: %v", err)
		}
		expectHeard(t, obs, "suspended", map[string]int{"check totp verify suspended": 1})

		// A recovery code lifts the suspension; a wrong one is counted on its own counter.
		if _, err := s.UseRecoveryCode(ctx, api, "obs", codes[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UseRecoveryCode(ctx, api, "obs", "AAAA-AAAA-AAAA-AAAA"); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("wrong recovery code: %v", err)
		}
		expectHeard(t, obs, "recovery codes", map[string]int{"check recovery_code sign_in ok": 1, "check recovery_code sign_in wrong": 1})

		if _, _, err := s.UpsertAccount(ctx, api, "bare", recovery.AccountInput{Email: ptr("bare@example.com")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, api, "bare", "123456"); !errors.Is(err, recovery.ErrNotEnrolled) {
			t.Fatalf("not enrolled: %v", err)
		}
		expectHeard(t, obs, "not enrolled", map[string]int{"check totp verify not_enrolled": 1})

		// The recovery code's notice to the owner fails twice: a retry, then given up for good.
		fail := func(permanent bool) recovery.Sender {
			return func(context.Context, recovery.Notice) error {
				return &recovery.DeliveryError{Err: errors.New("mail server says no"), Permanent: permanent}
			}
		}
		if _, err := s.DispatchDue(ctx, recovery.NoticeEmail, 0, fail(false)); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Hour)
		if _, err := s.DispatchDue(ctx, recovery.NoticeEmail, 0, fail(true)); err != nil {
			t.Fatal(err)
		}
		expectHeard(t, obs, "deliveries", map[string]int{"delivery email retry": 1, "delivery email given_up": 1})
	})
}

// TestObserverAfterCommit: the observer hears a transaction's events only once it committed; a
// rolled-back one tells it nothing. Without an observer nothing is wrapped or heard.
func TestObserverAfterCommit(t *testing.T) {
	st, _ := storetest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	obs := &tally{}
	s, err := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k1", 1), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	details := map[string]any{"purpose": "verify", "reason": "wrong", "failures": 5, "blocked_until": "2026-11-27T12:00:40Z"}
	if err := recovery.AppendThenReturn(ctx, s, "totp.failed", details, boom); !errors.Is(err, boom) {
		t.Fatalf("rolled back: %v", err)
	}
	expectHeard(t, obs, "rolled back", map[string]int{})
	if err := recovery.AppendThenReturn(ctx, s, "totp.failed", details, nil); err != nil {
		t.Fatal(err)
	}
	expectHeard(t, obs, "committed", map[string]int{"check totp verify wrong": 1, "throttle totp": 1})
	// A purpose outside the domain's set is reported as "other", so labels stay a fixed set.
	if err := recovery.AppendThenReturn(ctx, s, "totp.verified", map[string]any{"purpose": "made-up"}, nil); err != nil {
		t.Fatal(err)
	}
	expectHeard(t, obs, "unknown purpose", map[string]int{"check totp other ok": 1})
}
