package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
	// poolSize bounds the connections one replica holds. A verify holds its connection for a
	// few round trips; 16 keeps two cores busy without crowding PostgreSQL's max_connections
	// (100 by default) when a few replicas share it.
	poolSize = 16
	// pgAttempts is how often Update runs fn when PostgreSQL aborts the transaction with a
	// serialization failure or a deadlock.
	pgAttempts = 5
)

func openPostgres(ctx context.Context, dsn string, migrate bool, log *slog.Logger) (_ *Store, err error) {
	// pgx caches prepared statements per connection by itself, so gorm's PrepareStmt is not
	// needed here either.
	db, err := gorm.Open(postgres.New(postgres.Config{DSN: dsn}), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	defer func() {
		if err != nil {
			sqlDB.Close()
		}
	}()
	sqlDB.SetMaxOpenConns(poolSize)
	sqlDB.SetMaxIdleConns(poolSize)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	if err := prepareSchema(ctx, sqlDB, DialectPostgres, migrate, log); err != nil {
		return nil, err
	}
	return &Store{dialect: DialectPostgres, log: log, db: db}, nil
}

// updatePostgres runs fn in a READ COMMITTED transaction; the domain's row locks (LockFactor)
// and the audit lock (AuditHead) make its read-decide-write sequences safe. A transaction that
// PostgreSQL aborts as a serialization failure or deadlock victim is run again, a few times,
// after a short random pause.
func (s *Store) updatePostgres(ctx context.Context, fn func(tx recovery.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.updatePostgresOnce(ctx, fn)
		if err == nil || attempt == pgAttempts || !retryable(err) {
			return err
		}
		pause := time.Duration(attempt) * time.Duration(2+rand.IntN(8)) * time.Millisecond
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		s.log.Debug("sqlstore: retrying transaction", "attempt", attempt+1, "err", err)
	}
}

func (s *Store) updatePostgresOnce(ctx context.Context, fn func(tx recovery.Tx) error) error {
	tx := s.db.Session(&gorm.Session{Context: ctx, NewDB: true}).Begin(&sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if tx.Error != nil {
		return fmt.Errorf("sqlstore: begin: %w", tx.Error)
	}
	// A panic in fn is returned as an error, as on SQLite, so that both dialects behave alike.
	if err := call(s.log, fn, recovery.Tx(&sqlTx{db: tx, ctx: ctx, dialect: DialectPostgres})); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit().Error; err != nil {
		tx.Rollback()
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// viewPostgres runs fn in a READ ONLY REPEATABLE READ transaction: one snapshot for all reads.
func (s *Store) viewPostgres(ctx context.Context, fn func(tx recovery.ReadTx) error) error {
	tx := s.db.Session(&gorm.Session{Context: ctx, NewDB: true}).Begin(&sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if tx.Error != nil {
		return fmt.Errorf("sqlstore: begin read: %w", tx.Error)
	}
	defer tx.Rollback()
	return fn(&sqlTx{db: tx, ctx: ctx, dialect: DialectPostgres})
}

// retryable reports a PostgreSQL error that asks the client to run the transaction again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01" // serialization_failure, deadlock_detected
}
