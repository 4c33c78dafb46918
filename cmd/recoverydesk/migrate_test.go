package main

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestMigrateReseal(t *testing.T) {
	newKey, _ := recovery.NewKey()
	oldKey, _ := recovery.NewKey()
	oldRing, newRing := recovery.FormatKey("old", oldKey), recovery.FormatKey("new", newKey)
	env := with(testEnv(t), "RECOVERYDESK_KEYS", oldRing)
	dsn := env["RECOVERYDESK_DB"]

	out := mustRun(t, env, "migrate")
	if !regexp.MustCompile(`^Database \S+ \(sqlite\) is at schema version [1-9]\d*\.\n$`).MatchString(out) {
		t.Errorf("migrate output: %q", out)
	}

	// Enroll an account (a sealed TOTP secret and sealed facts) under the old key, at t0.
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)
	actor := recovery.Actor{Type: recovery.ActorAPIKey, ID: "test"}
	var secret string
	func() {
		st := openStore(t, dsn)
		keys, _ := recovery.ParseKeys(oldRing)
		svc, err := recovery.New(st, recovery.Options{Keys: keys, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		email := "alice@example.com"
		if _, _, err := svc.UpsertAccount(ctx, actor, "alice", recovery.AccountInput{Email: &email, Facts: map[string]any{"city": "Oslo"}}); err != nil {
			t.Fatal(err)
		}
		en, err := svc.BeginEnrollment(ctx, actor, "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		secret = en.Secret
		code, _ := recovery.CodeAt(secret, recovery.Step(t0))
		if _, err := svc.ConfirmEnrollment(ctx, actor, "alice", code); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}()

	// Without the old key the values cannot be opened: the key check stops migrate before the
	// reseal, names the missing key id, and nothing changes.
	_, _, err := runCmd(t, with(env, "RECOVERYDESK_KEYS", newRing), "migrate", "--reseal")
	if !errors.Is(err, recovery.ErrMissingKey) || !regexp.MustCompile(`^RECOVERYDESK_KEYS: .*key id\(s\) old\b.*add them to RECOVERYDESK_KEYS`).MatchString(err.Error()) {
		t.Fatalf("reseal without the old key: %v", err)
	}

	out = mustRun(t, with(env, "RECOVERYDESK_KEYS", newRing+","+oldRing), "migrate", "--reseal")
	m := regexp.MustCompile(`(?m)^Re-sealed (\d+) values under key "new"\.$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("migrate --reseal output:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 { // the TOTP secret and the facts
		t.Errorf("re-sealed %d values, want at least 2", n)
	}
	out = mustRun(t, with(env, "RECOVERYDESK_KEYS", newRing+","+oldRing), "migrate", "--reseal")
	if !regexp.MustCompile(`(?m)^Re-sealed 0 values under key "new"\.$`).MatchString(out) {
		t.Errorf("second reseal:\n%s", out)
	}

	// Only the new key now: the account still verifies, its facts still open.
	st := openStore(t, dsn)
	keys, _ := recovery.ParseKeys(newRing)
	svc, err := recovery.New(st, recovery.Options{Keys: keys, Now: func() time.Time { return t0.Add(30 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := recovery.CodeAt(secret, recovery.Step(t0)+1)
	if _, err := svc.Verify(ctx, actor, "alice", code); err != nil {
		t.Fatalf("verify under the new key only: %v", err)
	}
	a, err := svc.Account(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := svc.AccountFacts(a); err != nil || f["city"] != "Oslo" {
		t.Errorf("facts under the new key only: %v %v", f, err)
	}
	// And the old key alone no longer opens anything.
	oldOnly, _ := recovery.ParseKeys(oldRing)
	svcOld, _ := recovery.New(st, recovery.Options{Keys: oldOnly, Now: func() time.Time { return t0.Add(60 * time.Second) }})
	code, _ = recovery.CodeAt(secret, recovery.Step(t0)+2)
	if _, err := svcOld.Verify(ctx, actor, "alice", code); !errors.Is(err, recovery.ErrUnseal) {
		t.Errorf("verify under the old key only: %v, want ErrUnseal", err)
	}
	// The chain holds account.created, enrollment.started, factor.enrolled, two keys.resealed and
	// totp.verified; the refused reseal and the failed verify left nothing.
	verifyOK(t, env, 6)
}

func TestSchemaTooNew(t *testing.T) {
	env := testEnv(t)
	mustRun(t, env, "migrate")
	storetest.Exec(t, env["RECOVERYDESK_DB"], "INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)")
	for _, args := range [][]string{{"serve"}, {"migrate"}, {"audit", "verify"}} {
		_, _, err := runCmd(t, env, args...)
		if !errors.Is(err, recovery.ErrSchemaTooNew) || !regexp.MustCompile(`^open database \S+rd\.db: .*schema version 9999.*newer`).MatchString(err.Error()) {
			t.Errorf("%v: err = %v", args, err)
		}
		if exitCode(err, io.Discard) != 1 {
			t.Errorf("%v: exit code not 1", args)
		}
	}
}
