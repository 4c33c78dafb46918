package sqlstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// benchVerify is the store side of a successful verify: lock the factor, consume the step,
// read the audit head, append the event.
func benchVerify(tx recovery.Tx, id string, step int64) error {
	if _, err := tx.LockFactor(id); err != nil {
		return err
	}
	if _, err := tx.ConsumeStep(id, step, t0); err != nil {
		return err
	}
	_, err := appendEvent(tx, "totp.verified", t0)
	return err
}

// benchStore opens a store of the dialect (storetest.SQLite or storetest.Postgres) with 64
// active factors.
func benchStore(b *testing.B, open func(testing.TB) (*sqlstore.Store, string)) (*sqlstore.Store, []string) {
	s, _ := open(b)
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%02d", i)
		putFactor(b, s, ids[i], 0)
	}
	return s, ids
}

// BenchmarkUpdateParallel measures group commit on SQLite (synchronous=FULL): many goroutines
// each running verify-sized Updates. updates/commit is how many Updates shared one fsync.
func BenchmarkUpdateParallel(b *testing.B) { benchUpdateParallel(b, storetest.SQLite) }

// BenchmarkUpdateParallelPostgres is the same on PostgreSQL (skipped without
// RECOVERYDESK_TEST_POSTGRES).
func BenchmarkUpdateParallelPostgres(b *testing.B) { benchUpdateParallel(b, storetest.Postgres) }

func benchUpdateParallel(b *testing.B, open func(testing.TB) (*sqlstore.Store, string)) {
	s, ids := benchStore(b, open)
	b.SetParallelism(16) // 16 × GOMAXPROCS callers, like concurrent HTTP requests
	var next atomic.Int64
	batches0, requests0 := sqlstore.BatchStats(s)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids[next.Add(1)%int64(len(ids))]
		var step int64
		for pb.Next() {
			step++
			if err := s.Update(bg, func(tx recovery.Tx) error { return benchVerify(tx, id, step) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	batches, requests := sqlstore.BatchStats(s)
	if batches > batches0 {
		b.ReportMetric(float64(requests-requests0)/float64(batches-batches0), "updates/commit")
	}
}

// BenchmarkUpdateSerial is the same Update from one goroutine: one fsync per Update, the
// baseline group commit improves on.
func BenchmarkUpdateSerial(b *testing.B) { benchUpdateSerial(b, storetest.SQLite) }

// BenchmarkUpdateSerialPostgres is BenchmarkUpdateSerial on PostgreSQL.
func BenchmarkUpdateSerialPostgres(b *testing.B) { benchUpdateSerial(b, storetest.Postgres) }

func benchUpdateSerial(b *testing.B, open func(testing.TB) (*sqlstore.Store, string)) {
	s, ids := benchStore(b, open)
	var step int64
	for b.Loop() {
		step++
		if err := s.Update(bg, func(tx recovery.Tx) error { return benchVerify(tx, ids[0], step) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
