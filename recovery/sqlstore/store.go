package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Dialect names returned by Store.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("sqlstore: store is closed")

// ErrPendingMigrations is returned (wrapped, with both versions) by Open without
// Options.Migrate when the database lacks migrations this binary has.
var ErrPendingMigrations = errors.New("database schema is out of date: run `recoverydesk migrate`")

// Options configure Open.
type Options struct {
	// Migrate applies pending migrations on open (serve and `migrate` use it). Without it Open
	// refuses a database with pending migrations.
	Migrate bool
	// Logger receives migration notes and write-path failures; nil discards them. Nothing
	// logged carries a stored value.
	Logger *slog.Logger
}

// Store implements recovery.Store over SQLite or PostgreSQL. It is safe for concurrent use.
type Store struct {
	dialect string
	log     *slog.Logger

	// db runs the reads (and TryLock, SchemaVersion, Ping): the query-only pool on SQLite,
	// poolSize-1 connections on PostgreSQL.
	db *gorm.DB
	// w is the group-commit writer, with a connection of its own: it runs every Update.
	w *writer

	// mu guards closed; ops counts calls in flight so that Close can wait for them before it
	// stops the writer and closes the pools.
	mu     sync.RWMutex
	closed bool
	ops    sync.WaitGroup
}

var _ recovery.Store = (*Store)(nil)

// IsPostgres reports whether dsn names a PostgreSQL database (a postgres:// or postgresql://
// URL); anything else is a SQLite file path.
func IsPostgres(dsn string) bool {
	d := strings.ToLower(dsn)
	return strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://")
}

// Open opens dsn: a postgres:// or postgresql:// URL is PostgreSQL, anything else a SQLite file
// path such as "recoverydesk.db" (created when missing). It refuses, with an error wrapping
// recovery.ErrSchemaTooNew that names both versions, a database whose schema is newer than the
// newest embedded migration. With opts.Migrate it applies pending migrations; without, it
// refuses a database that has any (ErrPendingMigrations).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckDSN(dsn); err != nil {
		return nil, err
	}
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn, opts.Migrate, log)
	}
	return openSQLite(ctx, dsn, opts.Migrate, log)
}

// CheckDSN refuses what Open cannot use: an empty DSN, and for SQLite anything but a plain
// file path. The writer and the readers are separate connections: an in-memory database would
// be a different one on each, and a URI would bypass the DSN built here.
func CheckDSN(dsn string) error {
	switch {
	case dsn == "":
		return errors.New("sqlstore: empty database path")
	case IsPostgres(dsn):
		return nil
	case dsn == ":memory:" || strings.HasPrefix(dsn, "file:"):
		return errors.New("sqlstore: give SQLite a plain file path (not :memory: or a file: URI)")
	}
	return nil
}

// gormConfig is shared by every gorm handle: no implicit transactions (each Update/View is
// one explicit transaction), no logging (statements carry sealed values and hashes).
func gormConfig() *gorm.Config {
	return &gorm.Config{
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
	}
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// begin registers a call in flight, or reports ErrClosed.
func (s *Store) begin() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// Update runs fn in one write transaction and returns after the commit is durable. If fn
// returns an error (or panics) nothing it wrote remains and Update returns that error. fn runs
// on the store's writer goroutine, in a batch with the Updates that arrived meanwhile (one
// transaction, one commit; fn sees what earlier fns of its batch wrote), and may be run again:
// when another fn of its batch fails, and on PostgreSQL when the batch is aborted by a
// serialization failure or a deadlock. So it must have no effects outside tx, must not keep tx
// after returning, use it from other goroutines, or call Update itself.
func (s *Store) Update(ctx context.Context, fn func(tx recovery.Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.w.update(ctx, fn)
}

// View runs fn in a read-only transaction that sees one consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(tx recovery.ReadTx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.dialect == DialectSQLite {
		return s.viewSQLite(ctx, fn)
	}
	return s.viewPostgres(ctx, fn)
}

// Ping reports whether the writer runs and the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.ops.Done()
	select {
	case <-s.w.done:
		return errors.New("sqlstore: writer stopped")
	default:
	}
	q := "SELECT 1"
	if s.dialect == DialectSQLite {
		q = "PRAGMA schema_version" // reads the file header, unlike SELECT 1
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	var n int64
	if err := sqlDB.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest migration version applied to the database (0 when none).
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.ops.Done()
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, err
	}
	v, err := readVersions(ctx, sqlDB, s.dialect)
	if err != nil {
		return 0, err
	}
	return v.current, nil
}

// Close waits for the calls in flight, stops the writer and closes the connections. Later calls
// return ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.ops.Wait()
	errs := []error{s.w.close()}
	if sqlDB, err := s.db.DB(); err == nil {
		errs = append(errs, sqlDB.Close())
	}
	return errors.Join(errs...)
}

// errPanic is what Update returns when fn panicked. Its message carries a runtime error's
// text (which holds no data) or only the panic value's type: a panic value made by code could
// carry anything.
func errPanic(p any) error {
	if re, ok := p.(runtime.Error); ok {
		return fmt.Errorf("sqlstore: update function panicked: %v", re)
	}
	return fmt.Errorf("sqlstore: update function panicked with a %T", p)
}

// call runs fn, turning a panic into an error (logged with its stack, which names code, not
// values) so that the writer goroutine, or a pool connection in a transaction, survives it.
func call[T any](log *slog.Logger, fn func(T) error, tx T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanic(p)
			log.Error("sqlstore: update function panicked", "err", err, "stack", string(debug.Stack()))
		}
	}()
	return fn(tx)
}
