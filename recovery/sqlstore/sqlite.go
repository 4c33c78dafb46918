package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
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

	w := startWriter(wdb, wsql, DialectSQLite, log)
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
