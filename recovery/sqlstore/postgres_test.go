package sqlstore_test

import (
	"sync"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

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
