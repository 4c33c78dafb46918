package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

const lockKey int64 = 0x72642f74657374 // "rd/test"

// TestTryLockSQLite: a single-host database always grants the lock and never loses it.
func TestTryLockSQLite(t *testing.T) {
	s, _ := storetest.SQLite(t)
	for range 2 {
		release, lost, ok, err := s.TryLock(bg, lockKey)
		if err != nil || !ok || lost(bg) {
			t.Fatalf("TryLock = ok %v, err %v", ok, err)
		}
		release()
	}
}

// TestTryLockPostgres: two stores (two replicas) on one database contend for one key: one gets
// it, the other is refused until release; a different key is independent; when the holder's
// connection dies, lost reports it and the other replica can take the lock.
func TestTryLockPostgres(t *testing.T) {
	s1, dsn := storetest.Postgres(t)
	s2, err := sqlstore.Open(bg, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })

	rel1, lost1, ok, err := s1.TryLock(bg, lockKey)
	if err != nil || !ok {
		t.Fatalf("first TryLock: ok %v, err %v", ok, err)
	}
	if lost1(bg) {
		t.Fatal("a held lock reports lost")
	}
	for _, s := range []*sqlstore.Store{s2, s1} {
		// Advisory locks are per session: even the holder's own pool cannot take it twice.
		if _, _, ok, err := s.TryLock(bg, lockKey); err != nil || ok {
			t.Fatalf("second TryLock while held: ok %v, err %v", ok, err)
		}
	}
	relOther, _, ok, err := s2.TryLock(bg, lockKey+1)
	if err != nil || !ok {
		t.Fatalf("another key: ok %v, err %v", ok, err)
	}
	relOther()

	rel1()
	rel2, lost2, ok, err := s2.TryLock(bg, lockKey)
	if err != nil || !ok {
		t.Fatalf("TryLock after release: ok %v, err %v", ok, err)
	}

	// The holder's session ends (a network cut, a killed backend): PostgreSQL drops the lock,
	// lost says so, and the first replica can take over.
	storetest.Exec(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, lockKey)
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if !lost2(ctx) {
		t.Fatal("the lock's session was terminated but lost reports it held")
	}
	rel2() // releasing a lost lock is harmless
	// The backend drops its locks as it exits, which may lag its socket's closing a little; the
	// poller retries every few seconds, so a short wait is what a replica sees too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rel3, lost3, ok, err := s1.TryLock(bg, lockKey)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if lost3(bg) {
				t.Fatal("a fresh lock reports lost")
			}
			rel3()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock of a terminated session was never freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A cancelled context is not a lost lock: the caller is stopping, not the lock.
	rel4, lost4, ok, err := s2.TryLock(bg, lockKey)
	if err != nil || !ok {
		t.Fatalf("TryLock: ok %v, err %v", ok, err)
	}
	done, stop := context.WithCancel(bg)
	stop()
	if lost4(done) {
		t.Fatal("lost reported true for a cancelled context")
	}
	rel4()
}
