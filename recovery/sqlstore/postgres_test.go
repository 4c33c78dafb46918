package sqlstore_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// Two transactions lock two factors in opposite orders: PostgreSQL kills one as a deadlock
// victim (40P01), and Update runs that one's fn again, so both succeed.
func TestPostgresDeadlockRetried(t *testing.T) {
	s, _ := storetest.Postgres(t)
	putFactor(t, s, "a", 0)
	putFactor(t, s, "b", 0)
	var calls atomic.Int32
	var firstLocks sync.WaitGroup
	firstLocks.Add(2)
	lockBoth := func(first, second string) func(tx recovery.Tx) error {
		var once sync.Once
		return func(tx recovery.Tx) error {
			calls.Add(1)
			if _, err := tx.LockFactor(first); err != nil {
				return err
			}
			// On the first run only, wait until the other transaction holds its first lock.
			once.Do(func() { firstLocks.Done(); firstLocks.Wait() })
			if _, err := tx.LockFactor(second); err != nil {
				return err
			}
			_, err := tx.ConsumeStep(first, int64(calls.Load())+10, t0)
			return err
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = s.Update(bg, lockBoth("a", "b")) })
	wg.Go(func() { errs[1] = s.Update(bg, lockBoth("b", "a")) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("fn ran %d times, want 3 (one deadlock victim run again)", n)
	}
}

// The audit lock serializes appends across connections: 20 concurrent transactions, one
// contiguous, valid chain.
func TestPostgresAuditChainConcurrent(t *testing.T) {
	s, _ := storetest.Postgres(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := s.Update(bg, func(tx recovery.Tx) error {
				for range 5 {
					if _, err := appendEvent(tx, "test.event", t0); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	view(t, s, func(tx recovery.ReadTx) error {
		evs := must(tx.AuditEvents(0, 1000))
		if len(evs) != 100 {
			t.Fatalf("%d events, want 100", len(evs))
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
