package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// maxBatch bounds how many Updates share one commit: enough to amortise the fsync, few enough
// that the first caller of a batch is not kept waiting long by the others.
const maxBatch = 64

// Request states: the writer and a caller whose context ends race to move a request out of
// queued; whoever wins decides whether fn runs.
const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

type writeReq struct {
	ctx   context.Context
	fn    func(recovery.Tx) error
	state atomic.Int32
	done  chan error // buffered: the writer never waits for a caller
	err   error      // the answer, while the batch runs (writer goroutine only)
}

// writer is the group-commit writer, one per Store: every Update of the process runs on its
// goroutine, in batches that share one transaction and one commit (one fsync).
//
// It is the only user of its own pool of one connection: on SQLite the only write connection;
// on PostgreSQL one of the replica's poolSize (Views and TryLock have the others). On PostgreSQL
// it runs each batch READ COMMITTED and takes the audit chain's advisory lock as the batch's
// first statement: the batches of all replicas then run one after the other, whole, and can
// never deadlock with each other over row locks taken before that lock.
type writer struct {
	db      *gorm.DB // over own's single connection
	own     *sql.DB
	dialect string
	log     *slog.Logger
	reqs    chan *writeReq
	stop    chan struct{} // closed by close, after every Update has returned
	done    chan struct{} // closed when loop returns

	// Counters for tests and benchmarks.
	batches   atomic.Int64 // batches run (each one transaction, or more when rerun)
	committed atomic.Int64 // requests whose fn ran in a batch
	reruns    atomic.Int64 // PostgreSQL batches run again after a retryable error
}

// startWriter starts the writer's goroutine over db, whose connection pool own (one connection)
// the writer closes when it stops.
func startWriter(db *gorm.DB, own *sql.DB, dialect string, log *slog.Logger) *writer {
	w := &writer{
		db:      db,
		own:     own,
		dialect: dialect,
		log:     log,
		reqs:    make(chan *writeReq, 4*maxBatch),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.loop()
	return w
}

// update queues fn and waits for its answer. Once the writer has taken the request the caller
// waits for the commit even if ctx ends, so that the answer is always the truth: context errors
// mean fn did not run or was rolled back.
func (w *writer) update(ctx context.Context, fn func(recovery.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return ctx.Err()
		}
		return <-r.done
	}
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.stop:
			return
		}
		// Everything that arrived while the previous batch was committing joins this one.
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.run(batch)
		clear(batch)
	}
}

// outcome is how one run of a batch ended.
type outcome int

const (
	// answered: committed, or failed for good; every request has its answer.
	answered outcome = iota
	// fnFailed: without savepoints, some fn returned an error (or, on PostgreSQL, ignored a
	// failed statement, so that COMMIT rolled back); rolled back, no one answered.
	fnFailed
	// retry: PostgreSQL aborted the transaction with a retryable error (retryable); rolled
	// back, no one answered.
	retry
)

// run executes one batch and answers every request in it.
func (w *writer) run(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if !r.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // the caller gave up while queued
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	w.batches.Add(1)
	w.committed.Add(int64(len(live)))

	// Fast path: every fn in the one transaction, no savepoints (two statements per request
	// saved). fn errors are rare — refusals are decided and recorded, then returned after the
	// commit — so when one does fail, the whole batch is rolled back and run again with a
	// savepoint per request (the port allows fn to be called again). On PostgreSQL a
	// serialization failure or deadlock anywhere aborts the whole transaction: the batch runs
	// again as it was, up to pgAttempts times in all, after a short random pause.
	savepoints := false
	for attempt := 1; ; {
		out, err := w.runBatch(live, savepoints)
		switch out {
		case answered:
			return
		case fnFailed:
			savepoints = true
			continue
		}
		if attempt == pgAttempts {
			w.log.Error("sqlstore: write batch failed after retries", "err", err, "attempts", attempt, "requests", len(live))
			w.fail(live, err)
			return
		}
		pause := time.Duration(attempt) * time.Duration(2+rand.IntN(8)) * time.Millisecond
		attempt++
		w.log.Debug("sqlstore: retrying write batch", "attempt", attempt, "err", err, "requests", len(live))
		w.reruns.Add(1)
		time.Sleep(pause)
	}
}

// begin opens a batch's transaction. Its statements use a context that never ends: an
// interrupted statement would roll back the whole batch, not one caller's part of it. Callers'
// contexts are checked by sqlTx before each statement instead.
func (w *writer) begin() (*gorm.DB, error) {
	if w.dialect == DialectSQLite {
		tx := w.db.Begin() // BEGIN IMMEDIATE (the DSN's _txlock): the file's write lock
		if tx.Error != nil {
			return nil, fmt.Errorf("sqlstore: begin: %w", tx.Error)
		}
		return tx, nil
	}
	tx := w.db.Session(&gorm.Session{Context: context.Background(), NewDB: true}).
		Begin(&sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if tx.Error != nil {
		return nil, fmt.Errorf("sqlstore: begin: %w", tx.Error)
	}
	// First, before any row lock: see the writer's comment. Under READ COMMITTED every
	// statement after it sees what the previous holder committed.
	if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", auditLockID).Error; err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("sqlstore: lock audit chain: %w", err)
	}
	return tx, nil
}

// runBatch runs live in one transaction. It answers every request (answered) unless
// savepoints is false and some fn failed (fnFailed), or PostgreSQL asked for the transaction
// to be run again (retry, with that error): then it has rolled back and answered no one.
func (w *writer) runBatch(live []*writeReq, savepoints bool) (outcome, error) {
	for _, r := range live {
		r.err = nil
	}
	tx, err := w.begin()
	if err != nil {
		if w.retryable(err) {
			return retry, err
		}
		w.fail(live, err)
		return answered, nil
	}
	// The batch holds the write lock (SQLite) or the audit lock (PostgreSQL) to its end: no one
	// else appends meanwhile, so the chain's head is read at most once per batch.
	head := &auditHead{}
	raw := tx.Statement.ConnPool
	for _, r := range live {
		stx := &sqlTx{db: tx, ctx: r.ctx, dialect: w.dialect, raw: raw, head: head}
		if !savepoints {
			if r.err = r.ctx.Err(); r.err != nil {
				continue // nothing of it ran: the others need no rollback
			}
			if r.err = call(w.log, r.fn, recovery.Tx(stx)); r.err != nil {
				tx.Rollback()
				if w.retryable(r.err) {
					return retry, r.err
				}
				return fnFailed, nil
			}
			continue
		}
		if err := w.runOne(tx, stx, r); err != nil {
			tx.Rollback()
			if w.retryable(err) {
				return retry, err
			}
			// The savepoint machinery failed: the transaction's state is unknown, so all of
			// it goes.
			w.log.Error("sqlstore: write batch abandoned", "err", err, "requests", len(live))
			w.fail(live, err)
			return answered, nil
		}
	}
	if err := tx.Commit().Error; err != nil {
		tx.Rollback()
		if !savepoints && errors.Is(err, pgx.ErrTxCommitRollback) {
			// PostgreSQL rolled back at COMMIT: the transaction was aborted, so some fn went on
			// (and returned nil) after one of its statements failed. Nothing was written; the
			// savepoint run finds that fn.
			return fnFailed, nil
		}
		err = fmt.Errorf("sqlstore: commit: %w", err)
		if w.retryable(err) {
			return retry, err
		}
		w.log.Error("sqlstore: group commit failed", "err", err, "requests", len(live))
		for _, r := range live {
			if r.err == nil {
				r.err = err
			}
		}
	}
	for _, r := range live {
		r.done <- r.err
	}
	return answered, nil
}

// retryable reports an error after which a PostgreSQL batch runs again.
func (w *writer) retryable(err error) bool {
	return w.dialect == DialectPostgres && retryable(err)
}

// runOne runs one request inside its own savepoint. fn's error (or panic) rolls back that
// savepoint only and becomes the request's answer; the returned error is a failure of the
// savepoint statements themselves, or fn's error when it is retryable (the whole batch must run
// again).
func (w *writer) runOne(tx *gorm.DB, stx *sqlTx, r *writeReq) error {
	if err := r.ctx.Err(); err != nil { // it may have ended while earlier requests ran
		r.err = err
		return nil
	}
	if err := tx.Exec("SAVEPOINT batch_item").Error; err != nil {
		return fmt.Errorf("sqlstore: savepoint: %w", err)
	}
	r.err = call(w.log, r.fn, recovery.Tx(stx))
	if w.retryable(r.err) {
		return r.err
	}
	if r.err == nil {
		err := tx.Exec("RELEASE SAVEPOINT batch_item").Error
		if err == nil {
			return nil
		}
		if w.retryable(err) {
			return err
		}
		// On PostgreSQL, fn returned nil after one of its statements failed (the transaction
		// is aborted): its part is undone below and it gets the error; the others go on.
		r.err = fmt.Errorf("sqlstore: release savepoint: %w", err)
	}
	// What fn wrote is undone, and with it any audit head it cached.
	*stx.head = auditHead{}
	if err := tx.Exec("ROLLBACK TO SAVEPOINT batch_item").Error; err != nil {
		return fmt.Errorf("sqlstore: rollback to savepoint: %w", err)
	}
	if err := tx.Exec("RELEASE SAVEPOINT batch_item").Error; err != nil {
		return fmt.Errorf("sqlstore: release savepoint: %w", err)
	}
	return nil
}

// fail answers every request of a batch that did not commit. A request whose fn failed keeps
// its own error: nothing of it was going to be written either way.
func (w *writer) fail(live []*writeReq, err error) {
	for _, r := range live {
		if r.err == nil {
			r.err = err
		}
		r.done <- r.err
	}
}

// close stops the loop (Store.Close calls it once no Update is in flight) and closes the
// writer's connection.
func (w *writer) close() error {
	close(w.stop)
	<-w.done
	if err := w.own.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}
