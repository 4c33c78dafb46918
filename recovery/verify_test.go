package recovery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func factorOf(t *testing.T, st *sqlstore.Store, id string) recovery.Factor {
	t.Helper()
	var f recovery.Factor
	err := st.View(context.Background(), func(tx recovery.ReadTx) error {
		var err error
		f, err = tx.Factor(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWindowEdges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "window")
		c.Add(5 * time.Minute) // well past the confirmation's step
		cur := recovery.Step(c.Now())

		for _, d := range []int64{-2, 2, 3, -3} {
			if _, err := s.Verify(ctx, api, "window", code(t, secret, cur+d)); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Errorf("step %+d: err = %v, want ErrInvalidCode", d, err)
			}
		}
		c.Add(2 * time.Minute)
		cur = recovery.Step(c.Now())
		// −1 then 0 then +1: each later than the last, each accepted, drift reported.
		for _, d := range []int64{-1, 0, 1} {
			v, err := s.Verify(ctx, api, "window", code(t, secret, cur+d))
			if err != nil {
				t.Fatalf("step %+d refused: %v", d, err)
			}
			if v.DriftSeconds != int(d)*30 {
				t.Errorf("step %+d: drift %d, want %d", d, v.DriftSeconds, d*30)
			}
		}
	})
}

func TestLeadingZerosAndStepBoundary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "zeros")
		// Find a later step whose code starts with 0 and verify at that step.
		step := recovery.Step(c.Now()) + 2
		for ; code(t, secret, step)[0] != '0'; step++ {
		}
		c.Set(time.Unix(step*30, 0).Add(29*time.Second + 999*time.Millisecond)) // last instant of the step
		if v, err := s.Verify(ctx, api, "zeros", code(t, secret, step)); err != nil || v.DriftSeconds != 0 {
			t.Fatalf("leading-zero code %s refused or drifted: %v %+v", code(t, secret, step), err, v)
		}
		c.Add(time.Millisecond) // first instant of the next step: the next code is now "current"
		if v, err := s.Verify(ctx, api, "zeros", code(t, secret, step+1)); err != nil || v.DriftSeconds != 0 {
			t.Fatalf("code of the new step: %v %+v", err, v)
		}
	})
}

func TestReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "replay")
		confirmStep := recovery.Step(c.Now())

		// The confirmation consumed its step: the same code cannot log in.
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, confirmStep)); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("confirmation code as first login: %v, want ErrInvalidCode", err)
		}
		c.Add(30 * time.Second)
		cur := recovery.Step(c.Now())
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, cur)); err != nil {
			t.Fatal(err)
		}
		// The same code twice.
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, cur)); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("same code twice: %v", err)
		}
		// A newer code, then an older one still inside the window.
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, cur+1)); err != nil {
			t.Fatal(err)
		}
		c.Add(30 * time.Second) // now cur+1 is current; cur is −1 and still in the window
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, cur)); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("older code after a newer one: %v", err)
		}
		// The clock jumps backwards two minutes: codes of those earlier steps were passed already.
		c.Add(-2 * time.Minute)
		if _, err := s.Verify(ctx, api, "replay", code(t, secret, recovery.Step(c.Now()))); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("code after a backwards clock jump: %v", err)
		}
		// The audit tells wrong and replayed apart.
		rep, err := s.VerifyAudit(ctx, nil)
		if err != nil || !rep.OK() {
			t.Fatalf("audit: %+v %v", rep, err)
		}
		replayed := 0
		err = st.View(ctx, func(tx recovery.ReadTx) error {
			evs, err := tx.AuditEvents(0, 1000)
			for _, e := range evs {
				if e.Action == "totp.failed" && strings.Contains(string(e.Details), `"reason":"replayed"`) {
					replayed++
				}
			}
			return err
		})
		if err != nil || replayed != 4 {
			t.Fatalf("replayed failures in the audit = %d (%v), want 4", replayed, err)
		}
	})
}

func TestConcurrentSameCodeOneSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "race")
		c.Add(30 * time.Second)
		good := code(t, secret, recovery.Step(c.Now()))
		var wg sync.WaitGroup
		var mu sync.Mutex
		results := map[string]int{}
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Verify(ctx, api, "race", good)
				key := "ok"
				switch {
				case err == nil:
				case errors.Is(err, recovery.ErrInvalidCode):
					key = "invalid"
				case errors.Is(err, recovery.ErrTooManyAttempts):
					key = "throttled"
				default:
					key = "error: " + err.Error()
				}
				mu.Lock()
				results[key]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if results["ok"] != 1 || results["ok"]+results["invalid"]+results["throttled"] != 50 {
			t.Fatalf("results %v: want exactly one success and only refusals otherwise", results)
		}
	})
}

func TestThrottlingTimeline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "brute")
		c.Add(time.Minute)
		fail := func(want error) {
			t.Helper()
			_, err := s.Verify(ctx, api, "brute", wrongCode(t, secret, c.Now()))
			if !errors.Is(err, want) {
				t.Fatalf("at failure %d: err = %v, want %v", factorOf(t, st, "brute").Failures, err, want)
			}
		}
		for range 4 {
			fail(recovery.ErrInvalidCode)
		}
		if f := factorOf(t, st, "brute"); f.Failures != 4 || !f.BlockedUntil.IsZero() {
			t.Fatalf("after 4: %+v", f)
		}
		fail(recovery.ErrInvalidCode) // the 5th is answered as a failure and starts 30 s
		_, err := s.Verify(ctx, api, "brute", code(t, secret, recovery.Step(c.Now())))
		if d, ok := recovery.RetryAfter(err); !ok || d != 30*time.Second {
			t.Fatalf("right code during backoff: %v (retry after %v), want 429 with 30 s", err, d)
		}
		if f := factorOf(t, st, "brute"); f.Failures != 5 {
			t.Fatalf("an attempt during the backoff was counted: failures %d", f.Failures)
		}
		// Each further failure doubles the wait, capped at an hour.
		wants := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
		wait := 30 * time.Second
		for i, w := range wants {
			c.Add(wait)
			fail(recovery.ErrInvalidCode)
			_, err := s.Verify(ctx, api, "brute", wrongCode(t, secret, c.Now()))
			if d, ok := recovery.RetryAfter(err); !ok || d != w {
				t.Fatalf("failure %d: retry after %v (%v), want %v", 6+i, d, err, w)
			}
			wait = w
		}
		// Failures 14..19 keep the cap; the 20th suspends.
		for n := 14; n <= 20; n++ {
			c.Add(time.Hour)
			fail(recovery.ErrInvalidCode)
		}
		c.Add(time.Hour)
		if _, err := s.Verify(ctx, api, "brute", code(t, secret, recovery.Step(c.Now()))); !errors.Is(err, recovery.ErrSuspended) {
			t.Fatalf("after 20 failures a right code: %v, want ErrSuspended", err)
		}
		if st, _ := s.TwoFactorStatus(ctx, "brute"); st.State != recovery.StateSuspended {
			t.Fatalf("state %s, want suspended", st.State)
		}
	})
}

func TestOneCounterForEveryTOTPCheck(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		if _, _, err := s.UpsertAccount(ctx, api, "shared", recovery.AccountInput{Email: ptr("shared@example.com")}); err != nil {
			t.Fatal(err)
		}
		en, err := s.BeginEnrollment(ctx, api, "shared", "")
		if err != nil {
			t.Fatal(err)
		}
		// Failed confirmations count on the same counter as logins.
		for range 3 {
			if _, err := s.ConfirmEnrollment(ctx, api, "shared", wrongCode(t, en.Secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatal(err)
			}
		}
		if f := factorOf(t, st, "shared"); f.Failures != 3 {
			t.Fatalf("failed confirmations counted as %d, want 3", f.Failures)
		}
		if _, err := s.ConfirmEnrollment(ctx, api, "shared", code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		if f := factorOf(t, st, "shared"); f.Failures != 0 {
			t.Fatalf("success did not reset: %d", f.Failures)
		}
		c.Add(time.Minute)
		for range 4 {
			if _, err := s.Verify(ctx, api, "shared", wrongCode(t, en.Secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatal(err)
			}
		}
		if f := factorOf(t, st, "shared"); f.Failures != 4 {
			t.Fatalf("4 failed logins counted as %d", f.Failures)
		}
		if _, err := s.Verify(ctx, api, "shared", code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		for range 4 { // after the reset four more failures still do not start a backoff
			if _, err := s.Verify(ctx, api, "shared", wrongCode(t, en.Secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatal(err)
			}
		}
		if f := factorOf(t, st, "shared"); f.Failures != 4 || !f.BlockedUntil.IsZero() {
			t.Fatalf("%+v", f)
		}
		// Every way of presenting a TOTP code adds to the one counter: after 4 failed logins a
		// failed regeneration is the 5th failure and starts the backoff for logins too.
		if _, err := s.RegenerateRecoveryCodes(ctx, api, "shared", wrongCode(t, en.Secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, api, "shared", code(t, en.Secret, recovery.Step(c.Now())+1)); !errors.Is(err, recovery.ErrTooManyAttempts) {
			t.Fatalf("a login after the 5th failure (a regeneration's): %v, want 429", err)
		}
		if err := s.Disable(ctx, api, "shared", code(t, en.Secret, recovery.Step(c.Now())+1)); !errors.Is(err, recovery.ErrTooManyAttempts) {
			t.Fatalf("turning 2FA off during the login backoff: %v, want 429", err)
		}
	})
}

func TestConcurrentFailuresAllCounted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, _ := enrolled(t, s, c, "conc")
		c.Add(time.Minute)
		wrong := wrongCode(t, secret, c.Now())
		// 4 at once: none may be lost (no backoff yet, so all four are evaluated).
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Verify(ctx, api, "conc", wrong) }()
		}
		wg.Wait()
		if f := factorOf(t, st, "conc"); f.Failures != 4 {
			t.Fatalf("4 concurrent failures counted as %d", f.Failures)
		}
		// 30 more at once: exactly one is evaluated (the 5th), the rest meet its backoff.
		var mu sync.Mutex
		invalid, throttled := 0, 0
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Verify(ctx, api, "conc", wrong)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, recovery.ErrInvalidCode):
					invalid++
				case errors.Is(err, recovery.ErrTooManyAttempts):
					throttled++
				default:
					t.Errorf("unexpected %v", err)
				}
			}()
		}
		wg.Wait()
		if f := factorOf(t, st, "conc"); invalid != 1 || throttled != 29 || f.Failures != 5 {
			t.Fatalf("invalid %d throttled %d failures %d; want 1, 29, 5", invalid, throttled, f.Failures)
		}
	})
}

func TestPerIPLimiter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secrets := map[string]string{}
		for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"} {
			secrets[id], _ = enrolled(t, s, c, id)
		}
		c.Add(time.Minute)
		spray := recovery.Actor{Type: recovery.ActorAPIKey, ID: "test", IP: "203.0.113.7"}
		n := 0
		for round := 0; n < 30; round++ {
			for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"} {
				if n == 30 {
					break
				}
				if _, err := s.Verify(ctx, spray, id, wrongCode(t, secrets[id], c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
					t.Fatalf("spray %d: %v", n, err)
				}
				n++
			}
		}
		// The 31st from that address is refused even with a right code, and is not evaluated.
		good := code(t, secrets["a1"], recovery.Step(c.Now()))
		if _, err := s.Verify(ctx, spray, "a1", good); !errors.Is(err, recovery.ErrTooManyAttempts) {
			t.Fatalf("blocked ip: %v", err)
		}
		// Accounts are not locked: the same code from another address (or the host itself) works.
		if _, err := s.Verify(ctx, recovery.Actor{Type: recovery.ActorAPIKey, ID: "test", IP: "198.51.100.1"}, "a1", good); err != nil {
			t.Fatalf("other ip: %v", err)
		}
		for id := range secrets {
			if f := factorOf(t, st, id); f.State != recovery.StateActive || !f.BlockedUntil.IsZero() && c.Now().Before(f.BlockedUntil) {
				t.Errorf("%s locked by the ip limiter: %+v", id, f)
			}
		}
		c.Add(5*time.Minute + time.Second)
		if _, err := s.Verify(ctx, spray, "a2", code(t, secrets["a2"], recovery.Step(c.Now()))); err != nil {
			t.Fatalf("ip after its block: %v", err)
		}
	})
}

func TestRecoveryCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		secret, codes := enrolled(t, s, c, "rc")
		if len(codes) != 10 {
			t.Fatalf("%d codes", len(codes))
		}
		seen := map[string]bool{}
		for _, rc := range codes {
			if len(rc) != 19 || rc[4] != '-' || seen[rc] {
				t.Fatalf("bad or repeated code %q", rc)
			}
			seen[rc] = true
		}
		// Case, spaces and hyphens are ignored; each code works once.
		sloppy := " " + lower(codes[0][:9]) + " " + codes[0][10:] + " "
		if r, err := s.UseRecoveryCode(ctx, api, "rc", sloppy); err != nil || r.Remaining != 9 {
			t.Fatalf("sloppy code: %+v %v", r, err)
		}
		if _, err := s.UseRecoveryCode(ctx, api, "rc", codes[0]); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("reused code: %v", err)
		}
		// TOTP suspended by 20 failures: a recovery code still works and lifts it.
		c.Add(time.Minute)
		for range 20 {
			s.Verify(ctx, api, "rc", wrongCode(t, secret, c.Now()))
			c.Add(time.Hour)
		}
		if st, _ := s.TwoFactorStatus(ctx, "rc"); st.State != recovery.StateSuspended {
			t.Fatalf("not suspended: %s", st.State)
		}
		r, err := s.UseRecoveryCode(ctx, api, "rc", codes[1])
		if err != nil || !r.LiftedSuspension || r.Remaining != 8 {
			t.Fatalf("recovery code while suspended: %+v %v", r, err)
		}
		if _, err := s.Verify(ctx, api, "rc", code(t, secret, recovery.Step(c.Now()))); err != nil {
			t.Fatalf("TOTP after the lift: %v", err)
		}
		// Recovery codes have their own counter: 5 wrong ones start their backoff, TOTP unaffected.
		wrong := "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
		for i := 1; i <= 5; i++ {
			if _, err := s.UseRecoveryCode(ctx, api, "rc", wrong); !errors.Is(err, recovery.ErrInvalidCode) {
				t.Fatalf("wrong recovery code %d: %v", i, err)
			}
		}
		if _, err := s.UseRecoveryCode(ctx, api, "rc", codes[2]); !errors.Is(err, recovery.ErrTooManyAttempts) {
			t.Fatalf("right recovery code during its backoff: %v", err)
		}
		c.Add(30 * time.Second)
		if _, err := s.Verify(ctx, api, "rc", code(t, secret, recovery.Step(c.Now()))); err != nil {
			t.Fatalf("TOTP while recovery codes back off: %v", err)
		}
		if r, err := s.UseRecoveryCode(ctx, api, "rc", codes[2]); err != nil || r.Remaining != 7 {
			t.Fatalf("after the backoff: %+v %v", r, err)
		}
		// Regenerating needs a current TOTP and kills the old set.
		c.Add(30 * time.Second)
		fresh, err := s.RegenerateRecoveryCodes(ctx, api, "rc", code(t, secret, recovery.Step(c.Now())))
		if err != nil || len(fresh) != 10 {
			t.Fatalf("regenerate: %v", err)
		}
		if _, err := s.UseRecoveryCode(ctx, api, "rc", codes[3]); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("old set still works: %v", err)
		}
		if r, err := s.UseRecoveryCode(ctx, api, "rc", fresh[0]); err != nil || r.Remaining != 9 {
			t.Fatalf("new set: %+v %v", r, err)
		}
	})
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestEnrollmentLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		if _, err := s.BeginEnrollment(ctx, api, "nobody", ""); !errors.Is(err, recovery.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
		if _, _, err := s.UpsertAccount(ctx, api, "life", recovery.AccountInput{Email: ptr("Life@Example.com")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConfirmEnrollment(ctx, api, "life", "123456"); !errors.Is(err, recovery.ErrNotEnrolled) {
			t.Fatalf("confirm without enrollment: %v", err)
		}
		en, err := s.BeginEnrollment(ctx, api, "life", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(en.Secret) != 32 || en.ManualCode != recovery.ManualCode(en.Secret) || !en.ExpiresAt.Equal(c.Now().Add(10*time.Minute)) {
			t.Fatalf("enrollment %+v", en)
		}
		if st, _ := s.TwoFactorStatus(ctx, "life"); st.State != recovery.StatePending {
			t.Fatalf("state %s, want pending", st.State)
		}
		c.Add(10*time.Minute + time.Second)
		if _, err := s.ConfirmEnrollment(ctx, api, "life", code(t, en.Secret, recovery.Step(c.Now()))); !errors.Is(err, recovery.ErrExpired) {
			t.Fatalf("expired enrollment: %v", err)
		}
		if st, _ := s.TwoFactorStatus(ctx, "life"); st.State != recovery.StateDisabled {
			t.Fatalf("state %s, want disabled", st.State)
		}
		en, _ = s.BeginEnrollment(ctx, api, "life", "")
		if _, err := s.ConfirmEnrollment(ctx, api, "life", code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.BeginEnrollment(ctx, api, "life", ""); !errors.Is(err, recovery.ErrAlreadyEnrolled) {
			t.Fatalf("enroll while active: %v", err)
		}
		// The user turns 2FA off with a current code.
		c.Add(30 * time.Second)
		if err := s.Disable(ctx, api, "life", code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.TwoFactorStatus(ctx, "life"); st.State != recovery.StateDisabled || st.RecoveryCodesLeft != 0 {
			t.Fatalf("after disable: %+v", st)
		}
		if _, err := s.Verify(ctx, api, "life", code(t, en.Secret, recovery.Step(c.Now())+1)); !errors.Is(err, recovery.ErrNotEnrolled) {
			t.Fatalf("verify after disable: %v", err)
		}
	})
}

func TestReenrollmentAfterReset(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		enrolled(t, s, c, "reset")
		tok, err := recovery.ResetForTest(ctx, s, "reset", 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.BeginEnrollment(ctx, api, "reset", ""); !errors.Is(err, recovery.ErrRecoveryRequired) {
			t.Fatalf("no token: %v", err)
		}
		if _, err := s.BeginEnrollment(ctx, api, "reset", tok+"x"); !errors.Is(err, recovery.ErrRecoveryRequired) {
			t.Fatalf("wrong token: %v", err)
		}
		enrolled(t, s, c, "other")
		if _, err := s.BeginEnrollment(ctx, api, "other", tok); !errors.Is(err, recovery.ErrAlreadyEnrolled) {
			t.Fatalf("token on another (active) account: %v", err)
		}
		recovery.ResetForTest(ctx, s, "other", time.Hour)
		if _, err := s.BeginEnrollment(ctx, api, "other", tok); !errors.Is(err, recovery.ErrRecoveryRequired) {
			t.Fatalf("token bound to another account accepted: %v", err)
		}
		c.Add(time.Minute)
		en, err := s.BeginEnrollment(ctx, api, "reset", tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConfirmEnrollment(ctx, api, "reset", code(t, en.Secret, recovery.Step(c.Now()))); err != nil {
			t.Fatal(err)
		}
		// Single use: after the re-enrollment the token is dead.
		recovery.ResetForTest(ctx, s, "reset", time.Hour)
		if _, err := s.BeginEnrollment(ctx, api, "reset", tok); !errors.Is(err, recovery.ErrRecoveryRequired) {
			t.Fatalf("reused token: %v", err)
		}
	})
}

func TestAccountUpsert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		a, created, err := s.UpsertAccount(ctx, api, "u1", recovery.AccountInput{
			Email: ptr("Ann@Example.com"), DisplayName: ptr("Ann"), Phone: ptr("+1 555 0100"), Staff: ptr(false),
			Password: ptr("hunter2hunter2"), Facts: map[string]any{"last_deposit": "120.50 EUR"},
		})
		if err != nil || !created || a.EmailKey != "ann@example.com" || a.PasswordHash == "" {
			t.Fatalf("create: %+v %v %v", a, created, err)
		}
		if _, _, err := s.UpsertAccount(ctx, api, "u2", recovery.AccountInput{Email: ptr("ANN@example.COM")}); !errors.Is(err, recovery.ErrEmailTaken) {
			t.Fatalf("duplicate e-mail: %v", err)
		}
		c.Add(time.Hour)
		a2, created, err := s.UpsertAccount(ctx, api, "u1", recovery.AccountInput{Phone: ptr("+1 555 0199")})
		if err != nil || created || a2.Email != "Ann@Example.com" || a2.PasswordHash != a.PasswordHash || !a2.PhoneChangedAt.Equal(c.Now()) || !a2.EmailChangedAt.IsZero() {
			t.Fatalf("update kept fields wrong: %+v %v", a2, err)
		}
		facts, err := s.AccountFacts(a2)
		if err != nil || facts["last_deposit"] != "120.50 EUR" {
			t.Fatalf("facts: %v %v", facts, err)
		}
		for _, in := range []recovery.AccountInput{
			{},                           // no e-mail on creation
			{Email: ptr("not-an-email")}, // malformed
			{Email: ptr("x@example.com"), Password: ptr("short")},
			{Email: ptr("x@example.com"), Phone: ptr("call me")},
			{Email: ptr("x@example.com"), Facts: map[string]any{"nested": map[string]any{}}},
			{Email: ptr("x@exa\x00mple.com")},
		} {
			if _, _, err := s.UpsertAccount(ctx, api, "u3", in); !errors.Is(err, recovery.ErrInvalidInput) {
				t.Errorf("%+v: %v, want ErrInvalidInput", in, err)
			}
		}
		for _, id := range []string{"", "a/b", "spaces here", string(make([]byte, 129))} {
			if _, _, err := s.UpsertAccount(ctx, api, id, recovery.AccountInput{Email: ptr("y@example.com")}); !errors.Is(err, recovery.ErrInvalidInput) {
				t.Errorf("id %q: %v", id, err)
			}
		}
	})
}

func TestIPKeyGroupsIPv6By64(t *testing.T) {
	cases := map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
	}
	for in, want := range cases {
		if got := recovery.IPKey(in); got != want {
			t.Errorf("ipKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecoveryCodesSuspendAtTwenty(t *testing.T) {
	st, _ := storetest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	s := newService(t, st, c)
	secret, codes := enrolled(t, s, c, "rcs")
	for i := 1; i <= 20; i++ {
		if _, err := s.UseRecoveryCode(ctx, api, "rcs", "ZZZZ-ZZZZ-ZZZZ-ZZZZ"); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("failure %d: %v", i, err)
		}
		c.Add(time.Hour)
	}
	_, err := s.UseRecoveryCode(ctx, api, "rcs", codes[0])
	if !errors.Is(err, recovery.ErrRecoveryCodesSuspended) || !errors.Is(err, recovery.ErrSuspended) {
		t.Fatalf("a right code after 20 failures: %v", err)
	}
	// TOTP has its own counter and still works.
	if _, err := s.Verify(ctx, api, "rcs", code(t, secret, recovery.Step(c.Now()))); err != nil {
		t.Fatal(err)
	}
	// The owner lifts it with a new set, proven by a current TOTP code.
	c.Add(30 * time.Second)
	fresh, err := s.RegenerateRecoveryCodes(ctx, api, "rcs", code(t, secret, recovery.Step(c.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.UseRecoveryCode(ctx, api, "rcs", fresh[0]); err != nil || r.Remaining != 9 {
		t.Fatalf("new set after a suspension: %+v %v", r, err)
	}
}

func TestAPIKeyRevocation(t *testing.T) {
	st, _ := storetest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	s := newService(t, st, c)
	other := newService(t, st, c) // another replica, or the CLI, over the same database
	k, key, err := s.CreateAPIKey(ctx, api, "host")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*recovery.Service{s, other} {
		if name, err := svc.AuthenticateAPIKey(ctx, key); err != nil || name != "host" {
			t.Fatalf("fresh key: %q %v", name, err)
		}
	}
	for _, bad := range []string{"", key + "x", key[:len(key)-1], "rdk_" + k.ID + "_" + strings.Repeat("A", 43), strings.Repeat("k", 600)} {
		if _, err := s.AuthenticateAPIKey(ctx, bad); !errors.Is(err, recovery.ErrUnauthorized) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	if revoked, err := other.RevokeAPIKey(ctx, api, k.ID); err != nil || !revoked.RevokedAt.Equal(c.Now()) {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if again, err := other.RevokeAPIKey(ctx, api, k.ID); !errors.Is(err, recovery.ErrAlreadyRevoked) || !again.RevokedAt.Equal(c.Now()) {
		t.Fatalf("second revoke: %+v %v, want ErrAlreadyRevoked with the first revocation's time", again, err)
	}
	if _, err := other.AuthenticateAPIKey(ctx, key); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Fatalf("the revoking service still accepts the key: %v", err)
	}
	// The replica that cached the key accepts it for at most two more seconds.
	c.Add(1900 * time.Millisecond)
	if _, err := s.AuthenticateAPIKey(ctx, key); err != nil {
		t.Fatalf("within the cache's 2 s: %v", err)
	}
	c.Add(100 * time.Millisecond)
	if _, err := s.AuthenticateAPIKey(ctx, key); !errors.Is(err, recovery.ErrUnauthorized) {
		t.Fatalf("2 s after the revocation: %v", err)
	}
}

func TestCheckKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		if err := s.CheckKeys(ctx); err != nil {
			t.Fatalf("empty store: %v", err)
		}
		secret, _ := enrolled(t, s, c, "keyed")
		if _, _, err := s.UpsertAccount(ctx, api, "keyed", recovery.AccountInput{Facts: map[string]any{"a": "b"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckKeys(ctx); err != nil {
			t.Fatalf("same keys: %v", err)
		}
		other, _ := recovery.New(st, recovery.Options{Now: c.Now, Keys: testKeyring(t, "k2", 5)})
		err := other.CheckKeys(ctx)
		if !errors.Is(err, recovery.ErrMissingKey) || !strings.Contains(err.Error(), "k1") {
			t.Fatalf("keyring without k1: %v", err)
		}
		k1 := make([]byte, 32)
		for i := range k1 {
			k1[i] = 1 + byte(i) // testKeyring(t, "k1", 1)
		}
		both, _ := recovery.ParseKeys(recovery.FormatKey("k2", make([]byte, 32)) + "," + recovery.FormatKey("k1", k1))
		withBoth, _ := recovery.New(st, recovery.Options{Now: c.Now, Keys: both})
		if err := withBoth.CheckKeys(ctx); err != nil {
			t.Fatalf("ring holding k1 second: %v", err)
		}
		c.Add(time.Minute)
		if _, err := withBoth.Verify(ctx, api, "keyed", wrongCode(t, secret, c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("the k1 data does not open under the ring holding k1 second: %v", err)
		}
	})
}

// 29 failures at the end of one minute and more at the start of the next: the limiter counts a
// sliding minute, so the address is blocked at once, not after 29 more.
func TestPerIPLimiterSlidesAcrossMinutes(t *testing.T) {
	st, _ := storetest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	s := newService(t, st, c)
	ids := []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	secrets := map[string]string{}
	for _, id := range ids {
		secrets[id], _ = enrolled(t, s, c, id)
	}
	spray := recovery.Actor{Type: recovery.ActorAPIKey, ID: "test", IP: "192.0.2.9"}
	c.Set(time.Date(2026, 11, 27, 12, 5, 9, 0, time.UTC)) // in the first 10 s bucket of 12:05
	for n := range 29 {
		id := ids[n%len(ids)]
		if _, err := s.Verify(ctx, spray, id, wrongCode(t, secrets[id], c.Now())); !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("failure %d: %v", n, err)
		}
	}
	c.Set(time.Date(2026, 11, 27, 12, 6, 5, 0, time.UTC)) // 56 s later: a new minute, six buckets on
	accepted := 0
	for n := range 29 {
		id := ids[(n+5)%len(ids)]
		_, err := s.Verify(ctx, spray, id, wrongCode(t, secrets[id], c.Now()))
		if errors.Is(err, recovery.ErrTooManyAttempts) {
			break
		}
		if !errors.Is(err, recovery.ErrInvalidCode) {
			t.Fatalf("new window, failure %d: %v", n, err)
		}
		accepted++
	}
	// The 29 of 56 s ago still count: the first failure of the new minute is the 30th.
	if accepted != 1 {
		t.Fatalf("%d failures evaluated in the new minute before the block, want 1", accepted)
	}
	// Two idle minutes later the address starts afresh.
	c.Add(5*time.Minute + time.Second)
	if _, err := s.Verify(ctx, spray, "s1", code(t, secrets["s1"], recovery.Step(c.Now()))); err != nil {
		t.Fatalf("after the block: %v", err)
	}
}

func TestParseStaticAPIKeys(t *testing.T) {
	key := strings.Repeat("k", 40)
	got, err := recovery.ParseStaticAPIKeys(" host = " + key + " ,ci=" + key + "2")
	if err != nil || got["host"] != key || got["ci"] != key+"2" || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"host", "host=", "=" + key, "host=short", "bad name=" + key,
		"host=" + key + ",host=" + key + "x", key + "=host", "host=" + key[:35] + " " + key[:5]} {
		_, err := recovery.ParseStaticAPIKeys(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), key[:32]) || strings.Contains(err.Error(), "host") {
			t.Errorf("%q: error %q quotes a name or key", bad, err)
		}
	}
}
