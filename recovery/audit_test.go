package recovery_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

func TestAuditConcurrentAppendsFormOneChain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, _ string) {
		ctx := context.Background()
		s := newService(t, st, newClock())
		const workers, each = 100, 100
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				actor := recovery.Actor{Type: recovery.ActorSystem, ID: fmt.Sprintf("w%d", w)}
				for i := range each {
					if err := recovery.AppendTestEvent(ctx, s, actor, i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rep, err := s.VerifyAudit(ctx, nil)
		if err != nil || !rep.OK() || rep.Count != workers*each || rep.HeadSeq != workers*each {
			t.Fatalf("report %+v, %v; want %d contiguous events", rep, err, workers*each)
		}
	})
}

func auditFixture(t *testing.T, st *sqlstore.Store) *recovery.Service {
	t.Helper()
	c := newClock()
	s := newService(t, st, c)
	for i := range 10 {
		c.Add(time.Second)
		if err := recovery.AppendTestEvent(context.Background(), s, recovery.Actor{Type: recovery.ActorSystem, ID: "fixture"}, i); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestAuditTamperIsFound(t *testing.T) {
	cases := []struct {
		name  string
		sql   []string
		bad   int64
		count int64
	}{
		{"edited reason", []string{"UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 4"}, 4, 3},
		{"edited details", []string{`UPDATE audit_events SET details = '{"n":99}' WHERE seq = 7`}, 7, 6},
		{"deleted row", []string{"DELETE FROM audit_events WHERE seq = 5"}, 5, 4},
		{"swapped rows", []string{"UPDATE audit_events SET seq = 1000 WHERE seq = 3", "UPDATE audit_events SET seq = 3 WHERE seq = 6", "UPDATE audit_events SET seq = 6 WHERE seq = 1000"}, 3, 2},
		{"rehashed edit", []string{"UPDATE audit_events SET actor_id = 'mallory', hash = 'ab' || substr(hash, 3) WHERE seq = 2"}, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
				s := auditFixture(t, st)
				storetest.DropAuditGuards(t, dsn)
				for _, q := range tc.sql {
					storetest.Exec(t, dsn, q)
				}
				rep, err := s.VerifyAudit(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() || rep.BadSeq != tc.bad || rep.Count != tc.count {
					t.Fatalf("report %+v; want first bad seq %d after %d good", rep, tc.bad, tc.count)
				}
			})
		})
	}
}

func TestAuditTruncationNeedsCheckpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		ctx := context.Background()
		s := auditFixture(t, st)
		rep, _ := s.VerifyAudit(ctx, nil)
		cp := recovery.Checkpoint{Count: rep.Count, Head: rep.Head}
		if err := cp.Check(rep, func(seq int64) (string, error) { return s.AuditHash(ctx, seq) }); err != nil {
			t.Fatalf("intact chain against its checkpoint: %v", err)
		}
		storetest.DropAuditGuards(t, dsn)
		storetest.Exec(t, dsn, "DELETE FROM audit_events WHERE seq > 7")
		rep, _ = s.VerifyAudit(ctx, nil)
		if !rep.OK() || rep.Count != 7 {
			t.Fatalf("a truncated chain is still a valid chain: %+v", rep)
		}
		if err := cp.Check(rep, func(seq int64) (string, error) { return s.AuditHash(ctx, seq) }); err == nil {
			t.Fatal("checkpoint did not catch the truncation")
		}
	})
}

func TestAuditEventsCarryNoSecrets(t *testing.T) {
	st, _ := storetest.SQLite(t)
	ctx := context.Background()
	c := newClock()
	s := newService(t, st, c)
	secret, codes := enrolled(t, s, c, "quiet")
	c.Add(time.Minute)
	good := code(t, secret, recovery.Step(c.Now()))
	s.Verify(ctx, api, "quiet", good)
	s.Verify(ctx, api, "quiet", wrongCode(t, secret, c.Now()))
	s.UseRecoveryCode(ctx, api, "quiet", codes[0])
	var buf bytes.Buffer
	if _, err := s.ExportAudit(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{secret, good, codes[0], codes[0][:4] + codes[0][5:9]} {
		if bytes.Contains(buf.Bytes(), []byte(needle)) {
			t.Errorf("audit export contains %q", needle)
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"action":"totp.verified"`)) || !bytes.Contains(buf.Bytes(), []byte(`"action":"recovery_code.used"`)) {
		t.Errorf("export lacks the expected events:\n%s", buf.String())
	}
}

func TestExportLinesReverify(t *testing.T) {
	st, _ := storetest.SQLite(t)
	s := auditFixture(t, st)
	var buf bytes.Buffer
	rep, err := s.ExportAudit(context.Background(), &buf)
	if err != nil || rep.Count != 10 {
		t.Fatal(rep, err)
	}
	v := recovery.NewChainVerifier()
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		e, err := recovery.ParseEventJSONL(line)
		if err != nil || !v.Add(e) {
			t.Fatalf("line %s: %v %+v", line, err, v.Report())
		}
		again, _ := e.MarshalJSONL()
		if !bytes.Equal(again, line) {
			t.Fatalf("line does not round-trip:\n%s\n%s", line, again)
		}
	}
	if v.Report().Head != rep.Head {
		t.Fatal("heads differ")
	}
}

// TestVerifyCacheWalksOnAndFull: the console's cached verify continues from the last verified
// event, and a full walk within FullVerifyEvery catches an edit of an event already verified.
func TestVerifyCacheWalksOnAndFull(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *sqlstore.Store, dsn string) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c)
		actor := recovery.Actor{Type: recovery.ActorSystem, ID: "fixture"}
		for i := 0; i < 5; i++ {
			if err := recovery.AppendTestEvent(ctx, s, actor, i); err != nil {
				t.Fatal(err)
			}
		}
		var vc recovery.VerifyCache
		// get returns the report of a walk made at the clock's current time: a stale report
		// starts a walk in the background, so it asks again until that walk has finished.
		get := func() recovery.ChainReport {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				rep, at, pending, err := s.VerifyAuditCached(ctx, &vc, time.Minute, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !pending && at.Equal(c.Now()) {
					return rep
				}
				if time.Now().After(deadline) {
					t.Fatalf("no report of a walk at %v (pending %v, last at %v)", c.Now(), pending, at)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if rep := get(); !rep.OK() || rep.Count != 5 {
			t.Fatalf("first walk: %+v", rep)
		}
		for i := 5; i < 8; i++ {
			recovery.AppendTestEvent(ctx, s, actor, i)
		}
		if rep := get(); rep.Count != 5 {
			t.Fatalf("within maxAge the report is reused: %+v", rep)
		}
		c.Add(time.Minute)
		if rep := get(); !rep.OK() || rep.Count != 8 {
			t.Fatalf("walk on: %+v", rep)
		}
		storetest.DropAuditGuards(t, dsn)
		storetest.Exec(t, dsn, "UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
		c.Add(time.Minute)
		if rep := get(); !rep.OK() {
			t.Fatalf("an incremental walk re-reads old events: %+v", rep)
		}
		c.Add(recovery.FullVerifyEvery)
		if rep := get(); rep.OK() || rep.BadSeq != 2 {
			t.Fatalf("the full walk missed the edit: %+v", rep)
		}
	})
}
