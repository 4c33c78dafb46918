package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestIsPostgres(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db":        true,
		"postgresql://u@h/db":      true,
		"POSTGRES://u@h/db":        true,
		"recoverydesk.db":          false,
		"/var/lib/rd/postgres.db":  false,
		"file:x.db":                false,
		"./postgres://not-a-url":   false,
		"host=localhost dbname=rd": false, // keyword form is not accepted: it would be a file name
	} {
		if got := sqlstore.IsPostgres(dsn); got != want {
			t.Errorf("IsPostgres(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// Both dialects must carry the same migration versions: a migration is written once per dialect.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	lite, pg := embeddedVersions(t, sqlstore.DialectSQLite), embeddedVersions(t, sqlstore.DialectPostgres)
	if !slices.Equal(lite, pg) {
		t.Fatalf("sqlite migrations %v, postgres migrations %v", lite, pg)
	}
}

func TestMigrations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		if got, want := s.Dialect(), dialectOf(dsn); got != want {
			t.Fatalf("Dialect() = %q, want %q", got, want)
		}
		versions := embeddedVersions(t, s.Dialect())
		latest := versions[len(versions)-1]
		v, err := s.SchemaVersion(bg)
		if err != nil || v != latest {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
		}
		if err := s.Ping(bg); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		// Re-opening, with and without Migrate, applies nothing twice and refuses nothing.
		for _, migrate := range []bool{true, false, true} {
			s2, err := openStore(t, dsn, migrate)
			if err != nil {
				t.Fatalf("re-open (migrate=%v): %v", migrate, err)
			}
			if v, err := s2.SchemaVersion(bg); err != nil || v != latest {
				t.Fatalf("re-opened SchemaVersion = %d, %v; want %d", v, err, latest)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0"); n != len(versions) {
			t.Fatalf("goose_db_version has %d applied rows, want %d", n, len(versions))
		}
		// The store opened first still works.
		putAccount(t, s, "after-reopen")
	})
}

func TestSchemaTooNew(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		versions := embeddedVersions(t, s.Dialect())
		storetest.Exec(t, dsn, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, TRUE)")
		for _, migrate := range []bool{true, false} {
			_, err := openStore(t, dsn, migrate)
			if !errors.Is(err, recovery.ErrSchemaTooNew) {
				t.Fatalf("Open (migrate=%v) on a newer schema: %v, want ErrSchemaTooNew", migrate, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "9999") || !strings.Contains(msg, fmt.Sprint(versions[len(versions)-1])) {
				t.Fatalf("error does not name both versions: %v", err)
			}
		}
		if v, err := s.SchemaVersion(bg); err != nil || v != 9999 {
			t.Fatalf("SchemaVersion = %d, %v; want 9999", v, err)
		}
	})
}

func TestOpenWithoutMigrate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, _ *sqlstore.Store, dsn string) {
		fresh := freshDSN(t, dsn)
		_, err := openStore(t, fresh, false)
		if !errors.Is(err, sqlstore.ErrPendingMigrations) || !strings.Contains(err.Error(), "recoverydesk migrate") {
			t.Fatalf("Open without Migrate on an empty database: %v, want ErrPendingMigrations naming `recoverydesk migrate`", err)
		}
		// The refusal wrote nothing: not even goose's version table.
		table := "SELECT COUNT(*) FROM sqlite_master WHERE name = 'goose_db_version'"
		if sqlstore.IsPostgres(fresh) {
			table = "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'goose_db_version'"
		}
		if n := count(t, fresh, table); n != 0 {
			t.Fatal("Open without Migrate created the version table")
		}
		s, err := openStore(t, fresh, true)
		if err != nil {
			t.Fatalf("Open with Migrate: %v", err)
		}
		s.Close()
		if _, err := openStore(t, fresh, false); err != nil {
			t.Fatalf("Open without Migrate on a migrated database: %v", err)
		}
	})
}

// Replicas starting together on an empty PostgreSQL database migrate it once.
func TestConcurrentMigrationPostgres(t *testing.T) {
	_, dsn := storetest.Postgres(t)
	fresh := freshDSN(t, dsn)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			s, err := sqlstore.Open(bg, fresh, sqlstore.Options{Migrate: true})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if n, want := count(t, fresh, "SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0"), len(embeddedVersions(t, "postgres")); n != want {
		t.Fatalf("%d applied migration rows, want %d", n, want)
	}
}

func TestRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		berlin := time.FixedZone("CET", 3600)
		full := recovery.Account{ID: "full", Email: "Full@Example.com", EmailKey: "full@example.com", DisplayName: "Fülle Ünïcode",
			Phone: "+49 30 123", Staff: true, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", FactsSealed: "k1:sealed-facts",
			EmailChangedAt: t0.Add(1), PhoneChangedAt: t0.Add(2), CreatedAt: t0.In(berlin), UpdatedAt: t0.Add(3)}
		bare := recovery.Account{ID: "bare", EmailKey: "bare@example.com"}
		fullF := recovery.Factor{AccountID: "full", State: recovery.StateSuspended, SecretSealed: "k1:secret", EnrolledAt: t0,
			LastStep: 58_000_000, PendingSealed: "k1:pending", PendingExpiresAt: t0.Add(10 * time.Minute), Failures: 20,
			BlockedUntil: t0.Add(time.Hour), CodeFailures: 3, CodeBlockedUntil: t0.Add(30 * time.Second), HoldUntil: t0.Add(48 * time.Hour), UpdatedAt: t0.Add(4)}
		bareF := recovery.Factor{AccountID: "bare", State: recovery.StateDisabled}
		key := recovery.APIKey{ID: "0123456789abcdef", Name: "host", Hash: strings.Repeat("ab", 32), CreatedAt: t0}
		ipt := recovery.IPThrottle{IP: "2001:db8::1", BucketStart: t0, Buckets: []int{29, 0, 7}, BlockedUntil: t0.Add(5 * time.Minute)}
		ipBare := recovery.IPThrottle{IP: "192.0.2.1"}
		tokUsed := recovery.ReenrollToken{Hash: "h-used", AccountID: "full", TicketID: "T-1", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), UsedAt: t0.Add(time.Hour)}
		tokLive := recovery.ReenrollToken{Hash: "h-live", AccountID: "full", TicketID: "T-2", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
		codes := []recovery.RecoveryCode{{Hash: "c1", CreatedAt: t0}, {Hash: "c2", CreatedAt: t0}, {Hash: "c3", CreatedAt: t0}}
		update(t, s, func(tx recovery.Tx) error {
			for _, err := range []error{tx.PutAccount(full), tx.PutAccount(bare), tx.PutFactor(fullF), tx.PutFactor(bareF),
				tx.PutAPIKey(key), tx.PutIPThrottle(ipt), tx.PutIPThrottle(ipBare), tx.PutReenrollToken(tokUsed), tx.PutReenrollToken(tokLive),
				tx.ReplaceRecoveryCodes("full", codes)} {
				if err != nil {
					return err
				}
			}
			return nil
		})
		full.CreatedAt = full.CreatedAt.UTC() // times come back in UTC
		view(t, s, func(tx recovery.ReadTx) error {
			for _, c := range []struct {
				name      string
				got, want any
				err       error
			}{
				{"account", must(tx.Account("full")), full, nil},
				{"account by email", must(tx.AccountByEmail("full@example.com")), full, nil},
				{"bare account", must(tx.Account("bare")), bare, nil},
				{"accounts", must(tx.Accounts()), []recovery.Account{bare, full}, nil},
				{"factor", must(tx.Factor("full")), fullF, nil},
				{"bare factor", must(tx.Factor("bare")), bareF, nil},
				{"factors", must(tx.Factors()), []recovery.Factor{bareF, fullF}, nil},
				{"api key", must(tx.APIKey(key.ID)), key, nil},
				{"api keys", must(tx.APIKeys()), []recovery.APIKey{key}, nil},
				{"ip throttle", must(tx.IPThrottle(ipt.IP)), ipt, nil},
				{"bare ip throttle", must(tx.IPThrottle(ipBare.IP)), ipBare, nil},
				{"used token", must(tx.ReenrollToken("h-used")), tokUsed, nil},
				{"live token", must(tx.ReenrollToken("h-live")), tokLive, nil},
			} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s:\n got %+v\nwant %+v", c.name, c.got, c.want)
				}
			}
			got, err := tx.RecoveryCodes("full")
			if err != nil || len(got) != 3 {
				t.Fatalf("RecoveryCodes = %v, %v", got, err)
			}
			for i, c := range got {
				if c.ID <= 0 || (i > 0 && c.ID <= got[i-1].ID) || c.AccountID != "full" || c.Hash != codes[i].Hash || !c.CreatedAt.Equal(t0) || !c.UsedAt.IsZero() {
					t.Errorf("code %d = %+v", i, c)
				}
			}
			return nil
		})
		// Zero times are NULL in the database, not 0 or the year 1.
		for q, want := range map[string]int{
			"SELECT COUNT(*) FROM accounts WHERE email_changed_at IS NULL AND phone_changed_at IS NULL AND created_at IS NULL AND updated_at IS NULL":                                                      1,
			"SELECT COUNT(*) FROM factors WHERE enrolled_at IS NULL AND pending_expires_at IS NULL AND blocked_until IS NULL AND code_blocked_until IS NULL AND hold_until IS NULL AND updated_at IS NULL": 1,
			"SELECT COUNT(*) FROM ip_throttles WHERE bucket_start IS NULL AND blocked_until IS NULL":                                                                                                       1,
			"SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL":                                                                                                                                       1,
			"SELECT COUNT(*) FROM reenroll_tokens WHERE used_at IS NULL":                                                                                                                                   1,
			"SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL":                                                                                                                                    3,
			fmt.Sprintf("SELECT COUNT(*) FROM accounts WHERE email_changed_at = %d", t0.Add(1).UnixNano()):                                                                                                 1,
		} {
			if n := count(t, dsn, q); n != want {
				t.Errorf("%s = %d, want %d", q, n, want)
			}
		}

		// Updates in place: revoke the key, spend a code, use the live token, replace the codes.
		key.RevokedAt = t0.Add(time.Minute)
		var spent int64
		update(t, s, func(tx recovery.Tx) error {
			if err := tx.PutAPIKey(key); err != nil {
				return err
			}
			cs, err := tx.RecoveryCodes("full")
			if err != nil {
				return err
			}
			spent = cs[1].ID
			if ok, err := tx.UseRecoveryCode(spent, t0.Add(time.Second)); !ok || err != nil {
				return fmt.Errorf("UseRecoveryCode = %v, %v", ok, err)
			}
			return tx.UseReenrollTokens("full", t0.Add(2*time.Hour))
		})
		view(t, s, func(tx recovery.ReadTx) error {
			if got := must(tx.APIKey(key.ID)); !reflect.DeepEqual(got, key) {
				t.Errorf("revoked key = %+v", got)
			}
			cs := must(tx.RecoveryCodes("full"))
			if len(cs) != 2 || slices.ContainsFunc(cs, func(c recovery.RecoveryCode) bool { return c.ID == spent }) {
				t.Errorf("after spending one: %+v", cs)
			}
			if got := must(tx.ReenrollToken("h-live")); !got.UsedAt.Equal(t0.Add(2 * time.Hour)) {
				t.Errorf("live token used at %v", got.UsedAt)
			}
			if got := must(tx.ReenrollToken("h-used")); !got.UsedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("an already used token was used again: %v", got.UsedAt)
			}
			return nil
		})
		if n := count(t, dsn, "SELECT COUNT(*) FROM recovery_codes WHERE used_at = ?", t0.Add(time.Second).UnixNano()); n != 1 {
			t.Errorf("spent code's used_at not stored: %d", n)
		}
		update(t, s, func(tx recovery.Tx) error {
			return tx.ReplaceRecoveryCodes("full", []recovery.RecoveryCode{{Hash: "n1", CreatedAt: t0}})
		})
		if n := count(t, dsn, "SELECT COUNT(*) FROM recovery_codes"); n != 1 {
			t.Errorf("after replacing: %d codes in the table (used ones too must go), want 1", n)
		}
	})
}

// must drops a nil error; a non-nil one panics, which fails the test with its stack.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAuditRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		view(t, s, func(tx recovery.ReadTx) error {
			if evs := must(tx.AuditEvents(0, 10)); len(evs) != 0 {
				t.Errorf("empty chain has events: %v", evs)
			}
			return nil
		})
		update(t, s, func(tx recovery.Tx) error {
			seq, hash, err := tx.AuditHead()
			if err != nil || seq != 0 || hash != recovery.ZeroHash {
				t.Errorf("empty AuditHead = %d, %q, %v", seq, hash, err)
			}
			return err
		})
		inputs := []recovery.Event{
			{Time: t0, ActorType: recovery.ActorAgent, ActorID: "agent-7", Action: "ticket.approved", TargetType: "ticket", TargetID: "T-1",
				TicketID: "T-1", Reason: "identity verified", Details: []byte(`{"after":{"state":"cooling_off"},"before":{"state":"pending_approval"}}`), RequestID: "r-1"},
			{Time: t0.Add(1), ActorType: recovery.ActorSystem, Action: "factor.suspended", TargetType: "account", TargetID: "a"}, // nil details, no ticket
			{Time: t0.Add(999_999_999), ActorType: recovery.ActorAPIKey, ActorID: "host", Action: "account.updated", TargetType: "account",
				TargetID: "ü", Details: []byte(`{"name":"Zoë \u003c\u003e"}`)},
		}
		var want []recovery.Event
		update(t, s, func(tx recovery.Tx) error {
			for _, e := range inputs {
				seq, head, err := tx.AuditHead()
				if err != nil {
					return err
				}
				e.Seq, e.PrevHash = seq+1, head
				if e.Hash, err = e.ComputeHash(); err != nil {
					return err
				}
				if err := tx.AppendAudit(e); err != nil {
					return err
				}
				want = append(want, e)
			}
			return nil
		})
		view(t, s, func(tx recovery.ReadTx) error {
			got := must(tx.AuditEvents(0, 10))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("events:\n got %+v\nwant %+v", got, want)
			}
			v := recovery.NewChainVerifier()
			for _, e := range got {
				if !v.Add(e) {
					t.Fatalf("chain broken after a round trip: %+v", v.Report())
				}
			}
			if got := must(tx.AuditEvents(1, 1)); len(got) != 1 || got[0].Seq != 2 {
				t.Errorf("AuditEvents(1, 1) = %+v", got)
			}
			if got := must(tx.AuditEvents(3, 10)); len(got) != 0 {
				t.Errorf("AuditEvents past the head = %+v", got)
			}
			if got := must(tx.AuditEvents(0, 0)); len(got) != 0 {
				t.Errorf("AuditEvents with limit 0 = %+v", got)
			}
			return nil
		})
		update(t, s, func(tx recovery.Tx) error {
			seq, hash, err := tx.AuditHead()
			if seq != 3 || hash != want[2].Hash {
				t.Errorf("AuditHead = %d, %s", seq, hash)
			}
			return err
		})
		if n := count(t, dsn, "SELECT COUNT(*) FROM audit_events WHERE ticket_id IS NULL"); n != 2 {
			t.Errorf("%d events with a NULL ticket_id, want 2", n)
		}
		if n := count(t, dsn, `SELECT COUNT(*) FROM audit_events WHERE "time" = ?`, t0.Add(999_999_999).UnixNano()); n != 1 {
			t.Errorf("nanosecond time not stored exactly")
		}
		// A second event with a seq already present is refused: the chain cannot fork.
		before := count(t, dsn, "SELECT COUNT(*) FROM audit_events")
		err := s.Update(bg, func(tx recovery.Tx) error { return tx.AppendAudit(want[2]) })
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") && !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("appending a duplicate seq: %v, want a primary-key violation", err)
		}
		if after := count(t, dsn, "SELECT COUNT(*) FROM audit_events"); after != before {
			t.Fatalf("the refused append changed the chain: %d events, then %d", before, after)
		}
	})
}

func TestNotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, recovery.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", what, err)
			}
		}
		err := s.Update(bg, func(tx recovery.Tx) error {
			_, err := tx.LockFactor("nobody")
			check("LockFactor", err)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		view(t, s, func(tx recovery.ReadTx) error {
			_, err := tx.Account("nobody")
			check("Account", err)
			_, err = tx.AccountByEmail("nobody@example.com")
			check("AccountByEmail", err)
			_, err = tx.Factor("nobody")
			check("Factor", err)
			_, err = tx.APIKey("nobody")
			check("APIKey", err)
			_, err = tx.IPThrottle("198.51.100.1")
			check("IPThrottle", err)
			_, err = tx.ReenrollToken("nothing")
			check("ReenrollToken", err)
			for what, n := range map[string]int{
				"Accounts":      len(must(tx.Accounts())),
				"Factors":       len(must(tx.Factors())),
				"APIKeys":       len(must(tx.APIKeys())),
				"RecoveryCodes": len(must(tx.RecoveryCodes("nobody"))),
			} {
				if n != 0 {
					t.Errorf("%s on an empty database: %d rows", what, n)
				}
			}
			return nil
		})
	})
}

func TestEmailTaken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		putAccount(t, s, "alice")
		update(t, s, func(tx recovery.Tx) error {
			mallory := account("mallory")
			mallory.EmailKey = "alice@example.com"
			if err := tx.PutAccount(mallory); !errors.Is(err, recovery.ErrEmailTaken) {
				t.Errorf("PutAccount with a taken e-mail key: %v, want ErrEmailTaken", err)
			}
			// The transaction goes on after the refusal (the domain records it and commits).
			if err := tx.PutAccount(account("bob")); err != nil {
				return err
			}
			_, err := appendEvent(tx, "account.refused", t0)
			return err
		})
		// An account keeps its own e-mail key on update.
		a := account("alice")
		a.DisplayName = "Alice"
		update(t, s, func(tx recovery.Tx) error { return tx.PutAccount(a) })
		view(t, s, func(tx recovery.ReadTx) error {
			if _, err := tx.Account("mallory"); !errors.Is(err, recovery.ErrNotFound) {
				t.Errorf("the refused account exists: %v", err)
			}
			if got := must(tx.Account("bob")); got.EmailKey != "bob@example.com" {
				t.Errorf("bob = %+v", got)
			}
			if got := must(tx.AccountByEmail("alice@example.com")); got.ID != "alice" || got.DisplayName != "Alice" {
				t.Errorf("alice = %+v", got)
			}
			if evs := must(tx.AuditEvents(0, 10)); len(evs) != 1 {
				t.Errorf("the refusal's event was not committed: %v", evs)
			}
			return nil
		})
	})
}

// The replay guard: 50 transactions racing to consume the same step, exactly one wins.
func TestConsumeStepRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		putFactor(t, s, "alice", 100)
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				<-start
				err := s.Update(bg, func(tx recovery.Tx) error {
					if _, err := tx.LockFactor("alice"); err != nil {
						return err
					}
					ok, err := tx.ConsumeStep("alice", 101, t0)
					if ok {
						wins.Add(1)
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of 50 concurrent transactions consumed step 101, want exactly 1", n)
		}
		update(t, s, func(tx recovery.Tx) error {
			for _, c := range []struct {
				account string
				step    int64
				want    bool
			}{{"alice", 101, false}, {"alice", 100, false}, {"alice", 50, false}, {"alice", 102, true}, {"nobody", 5, false}} {
				if ok, err := tx.ConsumeStep(c.account, c.step, t0.Add(time.Minute)); ok != c.want || err != nil {
					t.Errorf("ConsumeStep(%s, %d) = %v, %v; want %v", c.account, c.step, ok, err, c.want)
				}
			}
			return nil
		})
		view(t, s, func(tx recovery.ReadTx) error {
			if f := must(tx.Factor("alice")); f.LastStep != 102 || !f.UpdatedAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("factor after consuming = %+v", f)
			}
			return nil
		})
	})
}

func TestUseRecoveryCodeOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		putFactor(t, s, "alice", 0)
		var id int64
		update(t, s, func(tx recovery.Tx) error {
			if err := tx.ReplaceRecoveryCodes("alice", []recovery.RecoveryCode{{Hash: "only", CreatedAt: t0}}); err != nil {
				return err
			}
			id = must(tx.RecoveryCodes("alice"))[0].ID
			return nil
		})
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				err := s.Update(bg, func(tx recovery.Tx) error {
					ok, err := tx.UseRecoveryCode(id, t0)
					if ok {
						wins.Add(1)
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("the code was spent %d times, want once", n)
		}
		view(t, s, func(tx recovery.ReadTx) error {
			if cs := must(tx.RecoveryCodes("alice")); len(cs) != 0 {
				t.Errorf("spent code still offered: %+v", cs)
			}
			return nil
		})
	})
}

func TestAuditAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		update(t, s, func(tx recovery.Tx) error {
			for range 3 {
				if _, err := appendEvent(tx, "test.event", t0); err != nil {
					return err
				}
			}
			return nil
		})
		db := rawDB(t, dsn)
		refused := []string{"UPDATE audit_events SET reason = 'edited' WHERE seq = 2", "DELETE FROM audit_events WHERE seq = 3", "DELETE FROM audit_events"}
		if s.Dialect() == sqlstore.DialectPostgres {
			refused = append(refused, "TRUNCATE audit_events")
		}
		for _, q := range refused {
			if _, err := db.ExecContext(bg, q); err == nil || !strings.Contains(err.Error(), "audit_events is append-only") {
				t.Errorf("%s: %v, want the append-only refusal", q, err)
			}
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM audit_events WHERE reason = ''"); n != 3 {
			t.Fatalf("%d untouched events, want 3", n)
		}
		// With the triggers dropped (by name, as the tamper tests do) the same statements work.
		for _, tr := range []string{"audit_events_no_update", "audit_events_no_delete"} {
			if s.Dialect() == sqlstore.DialectPostgres {
				storetest.Exec(t, dsn, "DROP TRIGGER "+tr+" ON audit_events")
			} else {
				storetest.Exec(t, dsn, "DROP TRIGGER "+tr)
			}
		}
		storetest.Exec(t, dsn, "UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
		storetest.Exec(t, dsn, "DELETE FROM audit_events WHERE seq = 3")
		view(t, s, func(tx recovery.ReadTx) error {
			evs := must(tx.AuditEvents(0, 10))
			if len(evs) != 2 || evs[1].Reason != "edited" {
				t.Fatalf("after tampering: %+v", evs)
			}
			v := recovery.NewChainVerifier()
			for _, e := range evs {
				v.Add(e)
			}
			if r := v.Report(); r.BadSeq != 2 {
				t.Errorf("verifier report after the edit: %+v, want bad seq 2", r)
			}
			return nil
		})
		if s.Dialect() == sqlstore.DialectPostgres {
			storetest.Exec(t, dsn, "DROP TRIGGER audit_events_no_truncate ON audit_events")
			storetest.Exec(t, dsn, "TRUNCATE audit_events")
			if n := count(t, dsn, "SELECT COUNT(*) FROM audit_events"); n != 0 {
				t.Errorf("%d events after TRUNCATE", n)
			}
		}
	})
}

var errBoom = errors.New("boom")

// An Update whose fn fails, or panics, leaves nothing behind, and the store goes on.
func TestUpdateFailureLeavesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		putFactor(t, s, "alice", 7)
		writeAll := func(tx recovery.Tx) error {
			if err := tx.PutAccount(account("ghost")); err != nil {
				return err
			}
			if _, err := tx.ConsumeStep("alice", 8, t0); err != nil {
				return err
			}
			if err := tx.ReplaceRecoveryCodes("alice", []recovery.RecoveryCode{{Hash: "x"}}); err != nil {
				return err
			}
			_, err := appendEvent(tx, "ghost.created", t0)
			return err
		}
		if err := s.Update(bg, func(tx recovery.Tx) error {
			if err := writeAll(tx); err != nil {
				return err
			}
			return fmt.Errorf("domain says no: %w", errBoom)
		}); !errors.Is(err, errBoom) {
			t.Fatalf("Update = %v, want fn's error", err)
		}
		err := s.Update(bg, func(tx recovery.Tx) error {
			if err := writeAll(tx); err != nil {
				return err
			}
			var m map[string]int
			m["boom"]++ // panics: assignment to entry in nil map
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("Update with a panicking fn = %v, want a panic error", err)
		}
		for _, table := range []string{"audit_events", "recovery_codes", "accounts WHERE id = 'ghost'", "factors WHERE last_step <> 7"} {
			if n := count(t, dsn, "SELECT COUNT(*) FROM "+table); n != 0 {
				t.Errorf("%d rows left in %s", n, table)
			}
		}
		// Still works.
		update(t, s, writeAll)
		if n := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = 'ghost'"); n != 1 {
			t.Fatal("the store stopped writing after a failed Update")
		}
	})
}

// A write acknowledged by Update is visible to the next View.
func TestReadYourWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		putFactor(t, s, "alice", 0)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 25 {
					id := fmt.Sprintf("u%d-%d", g, i)
					if err := s.Update(bg, func(tx recovery.Tx) error { return tx.PutAccount(account(id)) }); err != nil {
						t.Error(err)
						return
					}
					err := s.View(bg, func(tx recovery.ReadTx) error {
						_, err := tx.Account(id)
						return err
					})
					if err != nil {
						t.Errorf("account %s written but not visible: %v", id, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// View is one snapshot: a commit that lands between two reads of the same View is not seen.
func TestViewSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		putFactor(t, s, "alice", 1)
		view(t, s, func(tx recovery.ReadTx) error {
			before := must(tx.Factor("alice")).LastStep
			update(t, s, func(tx recovery.Tx) error {
				_, err := tx.ConsumeStep("alice", 2, t0)
				return err
			})
			if after := must(tx.Factor("alice")).LastStep; after != before {
				t.Errorf("View saw a commit mid-way: last_step %d then %d", before, after)
			}
			return nil
		})
		view(t, s, func(tx recovery.ReadTx) error {
			if got := must(tx.Factor("alice")).LastStep; got != 2 {
				t.Errorf("a new View does not see the commit: %d", got)
			}
			return nil
		})
	})
}

func TestContext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, dsn string) {
		done, cancel := context.WithCancel(bg)
		cancel()
		ran := false
		if err := s.Update(done, func(tx recovery.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
			t.Errorf("Update with a done context = %v (fn ran: %v), want context.Canceled without running", err, ran)
		}
		if err := s.View(done, func(tx recovery.ReadTx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
			t.Errorf("View with a done context = %v (fn ran: %v)", err, ran)
		}
		// A context that ends inside fn fails its next statement, and fn's writes are undone.
		ctx, cancel := context.WithCancel(bg)
		err := s.Update(ctx, func(tx recovery.Tx) error {
			if err := tx.PutAccount(account("early")); err != nil {
				return err
			}
			cancel()
			return tx.PutAccount(account("late"))
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Update whose context ended mid-way = %v, want context.Canceled", err)
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM accounts"); n != 0 {
			t.Errorf("%d accounts written by a cancelled Update", n)
		}
		ctx, cancel = context.WithCancel(bg)
		err = s.View(ctx, func(tx recovery.ReadTx) error {
			cancel()
			_, err := tx.Accounts()
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("View whose context ended mid-way = %v, want context.Canceled", err)
		}
	})
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, _ *sqlstore.Store, dsn string) {
		s, err := openStore(t, dsn, false)
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- s.Update(bg, func(tx recovery.Tx) error {
				close(started)
				time.Sleep(100 * time.Millisecond)
				return tx.PutAccount(account("slow"))
			})
		}()
		<-started
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-result; err != nil {
			t.Fatalf("the Update in flight during Close: %v", err)
		}
		if n := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = 'slow'"); n != 1 {
			t.Fatal("the Update in flight during Close was lost")
		}
		if err := s.Update(bg, func(recovery.Tx) error { return nil }); !errors.Is(err, sqlstore.ErrClosed) {
			t.Errorf("Update after Close = %v", err)
		}
		if err := s.View(bg, func(recovery.ReadTx) error { return nil }); !errors.Is(err, sqlstore.ErrClosed) {
			t.Errorf("View after Close = %v", err)
		}
		if err := s.Ping(bg); !errors.Is(err, sqlstore.ErrClosed) {
			t.Errorf("Ping after Close = %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func TestTimeOutOfRange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *sqlstore.Store, _ string) {
		a := account("far")
		a.UpdatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // past int64 nanoseconds
		if err := s.Update(bg, func(tx recovery.Tx) error { return tx.PutAccount(a) }); err == nil || !strings.Contains(err.Error(), "1678-2262") {
			t.Fatalf("a time that cannot be stored exactly: %v, want the range error", err)
		}
	})
}

// TestActiveStatesIndexMatchesDomain keeps the queue's partial index and the domain's list of
// active states the same: a state added to one and not the other would silently drop tickets
// from the index's queue, or make it unusable.
func TestActiveStatesIndexMatchesDomain(t *testing.T) {
	var quoted []string
	for _, s := range recovery.ActiveTicketStates {
		quoted = append(quoted, "'"+string(s)+"'")
	}
	want := "state IN (" + strings.Join(quoted, ", ") + ")"
	if sqlstore.ActiveStatesSQL != want {
		t.Fatalf("activeStatesSQL %q, want %q", sqlstore.ActiveStatesSQL, want)
	}
	for _, d := range []string{"sqlite", "postgres"} {
		b, err := os.ReadFile("migrations/" + d + "/00009_queue.sql")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "WHERE "+want+";") {
			t.Fatalf("%s migration's index predicate differs from %q", d, want)
		}
	}
}
