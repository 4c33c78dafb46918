package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// The PostgreSQL group-commit writer: Updates that arrive together share one transaction and
// one commit, as on SQLite.

// pgQueue starts one Update per fn, in order: each is in the writer's queue before the next is
// sent, so that a batch runs them in this order. It returns a function that waits for all and
// returns their answers.
func pgQueue(t *testing.T, s *sqlstore.Store, fns []func(tx recovery.Tx) error) (wait func() []error) {
	t.Helper()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = s.Update(bg, fn) })
		waitFor(t, "the update to queue", func() bool { return sqlstore.QueueLen(s) == i+1 })
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

// checkChain asserts that the audit chain holds exactly want events, contiguous and valid.
func checkChain(t *testing.T, s *sqlstore.Store, want int) {
	t.Helper()
	view(t, s, func(tx recovery.ReadTx) error {
		evs := must(tx.AuditEvents(0, 10*want+10))
		if len(evs) != want {
			t.Errorf("%d audit events, want %d", len(evs), want)
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

// pgFailOnce makes the first insert of the account id fail with a serialization failure
// (SQLSTATE 40001), raised by a trigger: immediately (a BEFORE trigger: inside fn) or at COMMIT
// (a deferred constraint trigger). Later inserts succeed: the trigger counts with a sequence,
// which a rollback does not undo.
func pgFailOnce(t *testing.T, dsn, id string, atCommit bool) {
	t.Helper()
	storetest.Exec(t, dsn, "CREATE SEQUENCE rd_test_fail_once")
	storetest.Exec(t, dsn, `CREATE FUNCTION rd_test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('rd_test_fail_once') = 1 THEN
		RAISE EXCEPTION 'test serialization failure' USING ERRCODE = '40001';
	END IF;
	RETURN NEW;
END $$`)
	when := fmt.Sprintf("FOR EACH ROW WHEN (NEW.id = '%s') EXECUTE FUNCTION rd_test_fail_once()", id)
	if atCommit {
		storetest.Exec(t, dsn, "CREATE CONSTRAINT TRIGGER rd_test_fail_once AFTER INSERT ON accounts DEFERRABLE INITIALLY DEFERRED "+when)
	} else {
		storetest.Exec(t, dsn, "CREATE TRIGGER rd_test_fail_once BEFORE INSERT ON accounts "+when)
	}
}

// createAccount is an Update's fn: one account and one audit event, counting its runs.
func createAccount(id string, runs *atomic.Int32) func(tx recovery.Tx) error {
	return func(tx recovery.Tx) error {
		runs.Add(1)
		if err := tx.PutAccount(account(id)); err != nil {
			return err
		}
		_, err := appendEvent(tx, "account.created", t0)
		return err
	}
}

// 64 Updates queued while the writer is busy commit in one transaction, each appending an audit
// event to one valid chain; meanwhile Views and TryLock get connections of their own.
func TestPostgresGroupCommit(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	release := holdWriter(t, s)

	// The held batch has its connection and the audit lock: the rest of the pool still serves.
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := s.View(ctx, func(tx recovery.ReadTx) error {
		_, err := tx.AuditEvents(0, 1)
		return err
	}); err != nil {
		t.Fatalf("View while the writer holds a batch: %v", err)
	}
	unlock, _, ok, err := s.TryLock(ctx, 42)
	if err != nil || !ok {
		t.Fatalf("TryLock while the writer holds a batch: %v, %v", ok, err)
	}
	unlock()

	batchesBefore, requestsBefore := sqlstore.BatchStats(s)
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(bg, func(tx recovery.Tx) error {
				if err := tx.PutAccount(account(fmt.Sprintf("gc-%02d", i))); err != nil {
					return err
				}
				_, err := appendEvent(tx, "account.created", t0)
				return err
			})
		})
	}
	waitFor(t, "the updates to queue", func() bool { return sqlstore.QueueLen(s) == n })
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	batches, requests := sqlstore.BatchStats(s)
	if got := batches - batchesBefore; got != 1 {
		t.Errorf("%d queued updates took %d batches, want 1", n, got)
	}
	if got := requests - requestsBefore; got != n {
		t.Errorf("the writer ran %d requests, want %d", got, n)
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id LIKE 'gc-%'"); got != n {
		t.Errorf("%d accounts, want %d", got, n)
	}
	checkChain(t, s, n)
}

// Two replicas (two Stores on one database) write at once: each batch takes the audit lock
// first, so the batches of both run one after the other and the chain stays one valid sequence.
func TestPostgresReplicasShareChain(t *testing.T) {
	s1, dsn := storetest.Postgres(t)
	s2, err := openStore(t, dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100 // per replica
	start := make(chan struct{})
	var wg sync.WaitGroup
	var runs atomic.Int32
	for r, s := range []*sqlstore.Store{s1, s2} {
		for i := range n {
			wg.Go(func() {
				<-start
				if err := s.Update(bg, createAccount(fmt.Sprintf("r%d-%03d", r, i), &runs)); err != nil {
					t.Errorf("replica %d, update %d: %v", r, i, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts"); got != 2*n {
		t.Errorf("%d accounts, want %d", got, 2*n)
	}
	checkChain(t, s1, 2*n)
	for r, s := range []*sqlstore.Store{s1, s2} {
		batches, requests := sqlstore.BatchStats(s)
		t.Logf("replica %d: %d updates in %d batches, %d reruns", r, requests, batches, sqlstore.BatchReruns(s))
	}
}

// A serialization failure inside one fn aborts the batch's transaction: the whole batch runs
// again, and every Update succeeds once.
func TestPostgresBatchRetriedOnSerializationFailure(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	pgFailOnce(t, dsn, "retry-2", false)
	testBatchRetried(t, s, dsn, []int32{2, 2, 2, 1, 1})
}

// The same failure at COMMIT (a deferred trigger) reruns the batch too.
func TestPostgresBatchRetriedAtCommit(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	pgFailOnce(t, dsn, "retry-2", true)
	testBatchRetried(t, s, dsn, []int32{2, 2, 2, 2, 2})
}

// testBatchRetried queues five Updates "retry-0".."retry-4" in one batch and checks that each
// fn ran as often as wantRuns says, that each Update succeeded, and that each wrote once.
func testBatchRetried(t *testing.T, s *sqlstore.Store, dsn string, wantRuns []int32) {
	t.Helper()
	release := holdWriter(t, s)
	reruns0 := sqlstore.BatchReruns(s)
	runs := make([]atomic.Int32, len(wantRuns))
	fns := make([]func(recovery.Tx) error, len(wantRuns))
	for i := range fns {
		fns[i] = createAccount(fmt.Sprintf("retry-%d", i), &runs[i])
	}
	wait := pgQueue(t, s, fns)
	release()
	errs := wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("retry-%d: %v", i, err)
		}
		if got := runs[i].Load(); got != wantRuns[i] {
			t.Errorf("retry-%d: fn ran %d times, want %d", i, got, wantRuns[i])
		}
	}
	if got := sqlstore.BatchReruns(s) - reruns0; got != 1 {
		t.Errorf("%d batch reruns, want 1", got)
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id LIKE 'retry-%'"); got != len(wantRuns) {
		t.Errorf("%d accounts, want %d", got, len(wantRuns))
	}
	checkChain(t, s, len(wantRuns))
}

// A fn that keeps failing with a serialization failure runs pgAttempts times; then its Update
// returns that error.
func TestPostgresBatchRetriesBounded(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	var runs atomic.Int32
	err := s.Update(bg, func(tx recovery.Tx) error {
		runs.Add(1)
		if err := tx.PutAccount(account("doomed")); err != nil {
			return err
		}
		// An error PostgreSQL raised, as a deadlock or serialization failure would arrive.
		return &pgconn.PgError{Code: "40001", Message: "test serialization failure"}
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40001" {
		t.Fatalf("Update = %v, want the serialization failure", err)
	}
	if got := runs.Load(); got != sqlstore.PgAttempts {
		t.Errorf("fn ran %d times, want %d", got, sqlstore.PgAttempts)
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = 'doomed'"); got != 0 {
		t.Errorf("the failed Update wrote %d accounts", got)
	}
}

// One batch, several kinds of failing fn — an error of its own, a panic, a statement that fails
// (which aborts a PostgreSQL transaction), and a failed statement ignored — among Updates that
// succeed: each gets its own answer, and only the successful ones are written.
func TestPostgresBatchIsolatesFailures(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	release := holdWriter(t, s)
	batchesBefore, _ := sqlstore.BatchStats(s)

	const n = 40
	kind := func(i int) string {
		switch i % 8 {
		case 1:
			return "error"
		case 3:
			return "panic"
		case 5:
			return "statement" // a duplicate audit seq: primary-key violation, returned
		case 6:
			return "ignored" // the same, ignored: the transaction is aborted all the same
		}
		return "ok"
	}
	fns := make([]func(recovery.Tx) error, n)
	for i := range n {
		fns[i] = func(tx recovery.Tx) error {
			if err := tx.PutAccount(account(fmt.Sprintf("iso-%02d", i))); err != nil {
				return err
			}
			e, err := appendEvent(tx, "account.created", t0)
			if err != nil {
				return err
			}
			switch kind(i) {
			case "error":
				return fmt.Errorf("update %d: %w", i, errBoom)
			case "panic":
				panic(fmt.Sprintf("update %d goes wrong", i))
			case "statement":
				return tx.AppendAudit(e) // the same seq again
			case "ignored":
				_ = tx.AppendAudit(e)
				return nil
			}
			return nil
		}
	}
	wait := pgQueue(t, s, fns)
	release()
	errs := wait()

	committed := 0
	for i, err := range errs {
		id := fmt.Sprintf("iso-%02d", i)
		want := 0
		switch kind(i) {
		case "error":
			if !errors.Is(err, errBoom) {
				t.Errorf("%s: %v, want its own error", id, err)
			}
		case "panic":
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("%s: %v, want a panic error", id, err)
			}
		case "statement":
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23505" {
				t.Errorf("%s: %v, want the primary-key violation", id, err)
			}
		case "ignored":
			if err == nil {
				t.Errorf("%s: nil, want an error (its statement failed, its writes are undone)", id)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
			want = 1
			committed++
		}
		if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = ?", id); got != want {
			t.Errorf("%s: %d rows, want %d", id, got, want)
		}
	}
	if batches, _ := sqlstore.BatchStats(s); batches-batchesBefore != 1 {
		t.Errorf("the queued updates took %d batches, want 1", batches-batchesBefore)
	}
	checkChain(t, s, committed)
}

// A batch whose only failure is the last fn ignoring a failed statement: COMMIT finds the
// transaction aborted and rolls back; the batch runs again with savepoints, and only that fn's
// Update fails.
func TestPostgresIgnoredStatementFailureAtCommit(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	release := holdWriter(t, s)
	var runs atomic.Int32
	fns := []func(recovery.Tx) error{
		createAccount("ign-0", &runs),
		createAccount("ign-1", &runs),
		func(tx recovery.Tx) error {
			if err := tx.PutAccount(account("ign-2")); err != nil {
				return err
			}
			e, err := appendEvent(tx, "account.created", t0)
			if err != nil {
				return err
			}
			_ = tx.AppendAudit(e) // a primary-key violation, ignored
			return nil
		},
	}
	wait := pgQueue(t, s, fns)
	release()
	errs := wait()
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("the sound updates: %v, %v", errs[0], errs[1])
	}
	if errs[2] == nil {
		t.Error("the update that ignored a failed statement succeeded")
	}
	if got := runs.Load(); got != 4 {
		t.Errorf("the sound fns ran %d times in all, want 4 (the batch ran twice)", got)
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id LIKE 'ign-%'"); got != 2 {
		t.Errorf("%d accounts, want 2", got)
	}
	checkChain(t, s, 2)
}

// The writer has a connection of its own: with every other connection of the store held by an
// open View, an Update still commits.
func TestPostgresWriterNotStarvedByViews(t *testing.T) {
	s, dsn := storetest.Postgres(t)
	const views = sqlstore.PoolSize - 1
	var opened sync.WaitGroup
	opened.Add(views)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range views {
		wg.Go(func() {
			if err := s.View(bg, func(tx recovery.ReadTx) error {
				_, err := tx.AuditEvents(0, 1)
				opened.Done()
				<-gate
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	defer wg.Wait()
	defer close(gate)
	opened.Wait()

	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	var runs atomic.Int32
	done := make(chan error, 1)
	go func() { done <- s.Update(ctx, createAccount("starved", &runs)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Update while every read connection is held: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Update did not finish while every read connection was held")
	}
	if got := count(t, dsn, "SELECT COUNT(*) FROM accounts WHERE id = 'starved'"); got != 1 {
		t.Errorf("%d accounts, want 1", got)
	}
}
