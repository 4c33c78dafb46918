package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
	// maxBatch bounds how many Updates share one SQLite commit: enough to amortise the fsync,
	// few enough that the first caller of a batch is not kept waiting long by the others.
	maxBatch = 64
	// readers is the size of the read pool. WAL readers never block each other or the writer;
	// more connections than cores only add memory.
	readers = 4
	// stmtCache is mattn/go-sqlite3's per-connection prepared statement cache. It replaces
	// gorm's PrepareStmt, which prepares statements on the transaction and so prepares them
	// again in every transaction (database/sql closes a transaction's statements at its end).
	stmtCache = "_stmt_cache_size=64"
)

// sqliteDSNs builds the connection strings for the file at path. The writer's is style.md's
// (immediate transactions, full fsync on commit, foreign keys); readers open deferred,
// query-only transactions, and never change the journal mode.
func sqliteDSNs(path string) (write, read string) {
	// The path goes into a file: URI: escape what the URI syntax would otherwise read.
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	write = "file:" + p + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate&_foreign_keys=on&" + stmtCache
	read = "file:" + p + "?_busy_timeout=5000&_txlock=deferred&_query_only=1&" + stmtCache
	return write, read
}

func openSQLite(ctx context.Context, path string, migrate bool, log *slog.Logger) (_ *Store, err error) {
	wdsn, rdsn := sqliteDSNs(path)
	// The file holds password, recovery-code and API-key hashes and sealed secrets: create it
	// readable by its owner only (SQLite gives the -wal and -shm files the same mode). With
	// migrate false a missing file is an error, not a new empty database.
	if migrate {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("sqlstore: create %s: %w", path, err)
		}
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sqlstore: no database at %s: %w", path, ErrPendingMigrations)
	}

	// The write connection: one, forever. The pool's limit makes database/sql queue any second
	// user instead of opening a second writer that would only wait for the file lock.
	wsql, err := sql.Open("sqlite3", wdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	defer func() {
		if err != nil {
			wsql.Close()
		}
	}()
	wsql.SetMaxOpenConns(1)
	wsql.SetMaxIdleConns(1)
	wsql.SetConnMaxLifetime(0)
	wsql.SetConnMaxIdleTime(0)
	if err := wsql.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// goose runs its own transactions on the same single connection before the writer starts.
	if err := prepareSchema(ctx, wsql, DialectSQLite, migrate, log); err != nil {
		return nil, err
	}
	wdb, err := gorm.Open(sqlite.New(sqlite.Config{Conn: wsql}), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}

	rsql, err := sql.Open("sqlite3", rdsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	defer func() {
		if err != nil {
			rsql.Close()
		}
	}()
	rsql.SetMaxOpenConns(readers)
	rsql.SetMaxIdleConns(readers)
	rsql.SetConnMaxLifetime(0)
	rdb, err := gorm.Open(sqlite.New(sqlite.Config{Conn: rsql}), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}

	w := &writer{
		db:   wdb,
		sql:  wsql,
		log:  log,
		reqs: make(chan *writeReq, 4*maxBatch),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.loop()
	return &Store{dialect: DialectSQLite, log: log, db: rdb, w: w}, nil
}

// viewSQLite runs fn in a deferred read transaction on a reader connection: SQLite takes the
// WAL snapshot at the first read and keeps it to the end.
func (s *Store) viewSQLite(ctx context.Context, fn func(tx recovery.ReadTx) error) error {
	tx := s.db.Session(&gorm.Session{Context: ctx, NewDB: true}).Begin()
	if tx.Error != nil {
		return fmt.Errorf("sqlstore: begin read: %w", tx.Error)
	}
	defer tx.Rollback() // read-only: nothing to commit
	return fn(&sqlTx{db: tx, ctx: ctx, dialect: DialectSQLite})
}

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

// writer is the group-commit writer: the only user of the write connection.
type writer struct {
	db   *gorm.DB // over sql, whose single connection the writer owns
	sql  *sql.DB
	log  *slog.Logger
	reqs chan *writeReq
	stop chan struct{} // closed by close, after every Update has returned
	done chan struct{} // closed when loop returns

	// Counters for tests and benchmarks.
	batches   atomic.Int64 // transactions committed or attempted
	committed atomic.Int64 // requests whose fn ran in a batch
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

// run executes one batch in one transaction and answers every request in it.
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
	// savepoint per request (the port allows fn to be called again).
	if w.runBatch(live, false) {
		return
	}
	w.runBatch(live, true)
}

// runBatch runs live in one transaction and answers every request, unless savepoints is false
// and some fn failed: then it rolls back, answers no one and reports false.
//
// The transaction's statements use a context that never ends: an interrupted statement would
// roll back the whole batch, not one caller's part of it. Callers' contexts are checked by
// sqlTx before each statement instead.
func (w *writer) runBatch(live []*writeReq, savepoints bool) bool {
	tx := w.db.Begin()
	if err := tx.Error; err != nil {
		w.fail(live, fmt.Errorf("sqlstore: begin: %w", err))
		return true
	}
	head := &auditHead{}
	raw := tx.Statement.ConnPool
	for _, r := range live {
		r.err = nil
		stx := &sqlTx{db: tx, ctx: r.ctx, dialect: DialectSQLite, raw: raw, head: head}
		if !savepoints {
			if r.err = r.ctx.Err(); r.err != nil {
				continue // nothing of it ran: the others need no rollback
			}
			if r.err = call(w.log, r.fn, recovery.Tx(stx)); r.err != nil {
				tx.Rollback()
				return false
			}
			continue
		}
		if err := w.runOne(tx, stx, r); err != nil {
			// The savepoint machinery failed: the transaction's state is unknown, so all of
			// it goes.
			tx.Rollback()
			w.log.Error("sqlstore: write batch abandoned", "err", err, "requests", len(live))
			w.fail(live, err)
			return true
		}
	}
	if err := tx.Commit().Error; err != nil {
		tx.Rollback()
		err = fmt.Errorf("sqlstore: commit: %w", err)
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
	return true
}

// runOne runs one request inside its own savepoint. fn's error (or panic) rolls back that
// savepoint only and becomes the request's answer; the returned error is a failure of the
// savepoint statements themselves.
func (w *writer) runOne(tx *gorm.DB, stx *sqlTx, r *writeReq) error {
	if err := r.ctx.Err(); err != nil { // it may have ended while earlier requests ran
		r.err = err
		return nil
	}
	if err := tx.Exec("SAVEPOINT batch_item").Error; err != nil {
		return fmt.Errorf("sqlstore: savepoint: %w", err)
	}
	r.err = call(w.log, r.fn, recovery.Tx(stx))
	if r.err != nil {
		// What fn wrote is undone, and with it any audit head it cached.
		*stx.head = auditHead{}
		if err := tx.Exec("ROLLBACK TO SAVEPOINT batch_item").Error; err != nil {
			return fmt.Errorf("sqlstore: rollback to savepoint: %w", err)
		}
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
// write connection.
func (w *writer) close() error {
	close(w.stop)
	<-w.done
	if err := w.sql.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}
