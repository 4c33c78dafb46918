package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// holdWriter occupies the SQLite writer with an Update whose fn waits for release, so that the
// Updates sent meanwhile queue up and form the next batches. It returns release, which waits
// for the held Update to finish.
func holdWriter(t *testing.T, s *sqlstore.Store) (release func()) {
	t.Helper()
	entered, gate, result := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		result <- s.Update(bg, func(tx recovery.Tx) error {
			close(entered)
			<-gate
			return tx.PutAccount(account("gatekeeper"))
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-result; err != nil {
			t.Errorf("held update: %v", err)
		}
	}
}

// One batch, three kinds of callers: those whose fn succeeds are committed, those whose fn
// returns an error or panics leave nothing, and each gets its own answer.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, dsn := storetest.SQLite(t)
	release := holdWriter(t, s)
	batchesBefore, _ := sqlstore.BatchStats(s)

	const n = 90
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(bg, func(tx recovery.Tx) error {
				if err := tx.PutAccount(account(fmt.Sprintf("acct-%02d", i))); err != nil {
					return err
				}
				if _, err := appendEvent(tx, "account.created", t0); err != nil {
					return err
				}
				switch {
				case i%3 == 0:
					return fmt.Errorf("update %d: %w", i, errBoom)
				case i%10 == 4:
					panic(fmt.Sprintf("update %d goes wrong", i))
				}
				return nil
			})
		})
	}
	waitFor(t, "the updates to queue", func() bool { return sqlstore.QueueLen(s) == n })
	release()
	wg.Wait()

	batches, requests := sqlstore.BatchStats(s)
	if got, max := batches-batchesBefore, int64((n+63)/64); got > max {
		t.Errorf("%d queued updates took %d transactions, want at most %d", n, got, max)
	}
	if requests < n+1 {
		t.Errorf("the writer ran %d requests, want at least %d", requests, n+1)
	}
	committed := 0
	for i, err := range errs {
		id := fmt.Sprintf("acct-%02d", i)
		want := 1
		switch {
		case i%3 == 0:
			if !errors.Is(err, errBoom) {
				t.Errorf("%s: %v, want its own error", id, err)
			}
			want = 0
		case i%10 == 4:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("%s: %v, want a panic error", id, err)
			}
			want = 0
		default:
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
			committed++
		}
		if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = ?", id); got != want {
			t.Errorf("%s: %d rows, want %d", id, got, want)
		}
	}
	// The chain holds exactly the committed updates' events, contiguous and valid.
	view(t, s, func(tx recovery.ReadTx) error {
		evs := must(tx.AuditEvents(0, 1000))
		if len(evs) != committed {
			t.Errorf("%d events, want %d", len(evs), committed)
		}
		v := recovery.NewChainVerifier()
		for _, e := range evs {
			if !v.Add(e) {
				t.Fatalf("chain broken: %+v", v.Report())
			}
		}
		return nil
	})
}

// Without a gate: many concurrent writers, every third failing, all answered correctly.
func TestGroupCommitUnderLoad(t *testing.T) {
	s, dsn := storetest.SQLite(t)
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(bg, func(tx recovery.Tx) error {
				if err := tx.PutAccount(account(fmt.Sprintf("load-%03d", i))); err != nil {
					return err
				}
				if i%3 == 0 {
					return errBoom
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (i%3 == 0) != errors.Is(err, errBoom) || (i%3 != 0 && err != nil) {
			t.Errorf("update %d: %v", i, err)
		}
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts"); got != n-n/3 {
		t.Errorf("%d accounts, want %d", got, n-n/3)
	}
	batches, requests := sqlstore.BatchStats(s)
	t.Logf("%d updates in %d transactions", requests, batches)
}

// An Update whose context ends while it waits in the queue returns at once, and its fn never
// runs.
func TestQueuedUpdateAbandoned(t *testing.T) {
	s, dsn := storetest.SQLite(t)
	release := holdWriter(t, s)
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	ran := make(chan struct{}, 1)
	began := time.Now()
	err := s.Update(ctx, func(tx recovery.Tx) error {
		ran <- struct{}{}
		return tx.PutAccount(account("abandoned"))
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("the abandoned Update returned after %v", d)
	}
	release()
	// The writer goes on past the abandoned request.
	putAccount(t, s, "next")
	select {
	case <-ran:
		t.Fatal("the abandoned Update's fn ran")
	default:
	}
	if n := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = 'abandoned'"); n != 0 {
		t.Fatal("the abandoned Update wrote")
	}
}

// Reads do not wait for the writer: a View completes while an Update holds the write
// transaction open.
func TestViewDoesNotWaitForWriter(t *testing.T) {
	s, _ := storetest.SQLite(t)
	putAccount(t, s, "alice")
	release := holdWriter(t, s)
	defer release()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := s.View(ctx, func(tx recovery.ReadTx) error {
		_, err := tx.Account("alice")
		return err
	}); err != nil {
		t.Fatalf("View while the writer is busy: %v", err)
	}
}

// Views cannot write: reader connections are query-only.
func TestViewIsReadOnly(t *testing.T) {
	s, _ := storetest.SQLite(t)
	err := s.View(bg, func(rtx recovery.ReadTx) error {
		return rtx.(recovery.Tx).PutAccount(account("sneaky"))
	})
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "readonly") {
		t.Fatalf("a write through View: %v, want a read-only refusal", err)
	}
}

// The SQLite DSN is built from any path, including ones with URI metacharacters.
func TestSQLitePathWithURICharacters(t *testing.T) {
	path := t.TempDir() + "/odd ?name#%20.db"
	s, err := openStore(t, path, true)
	if err != nil {
		t.Fatal(err)
	}
	putAccount(t, s, "alice")
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	s, err = openStore(t, path, false)
	if err != nil {
		t.Fatal(err)
	}
	view(t, s, func(tx recovery.ReadTx) error {
		_, err := tx.Account("alice")
		return err
	})
}

func TestSQLiteRefusesMemoryAndURIs(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		s, err := sqlstore.Open(bg, dsn, sqlstore.Options{Migrate: true})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		} else if !strings.Contains(err.Error(), "empty database path") && !strings.Contains(err.Error(), "plain file path") {
			t.Errorf("Open(%q): %v, want the DSN refusal", dsn, err)
		}
	}
}

// The database file and its WAL hold hashes and sealed secrets: owner-only, whatever the umask.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	_, path := storetest.SQLite(t)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), mode)
		}
	}
}
