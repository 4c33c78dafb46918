package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const (
	// poolSize bounds the connections one replica holds: one for the writer, the rest for Views
	// and TryLock. A View holds its connection for a few round trips; 16 keeps two cores busy
	// without crowding PostgreSQL's max_connections (100 by default) when a few replicas share it.
	poolSize = 16
	// pgAttempts is how often the writer runs a batch when PostgreSQL aborts its transaction
	// with a serialization failure or a deadlock.
	pgAttempts = 5
)

// openPostgres opens two pools on dsn: the writer's single connection, and poolSize-1 for
// everything else. The writer has its own so that no read load can keep it waiting for a
// connection (it begins its batches under a context that never ends), and so that it never
// takes one a View or TryLock needs.
func openPostgres(ctx context.Context, dsn string, migrate bool, log *slog.Logger) (_ *Store, err error) {
	// pgx caches prepared statements per connection by itself, so gorm's PrepareStmt is not
	// needed here either.
	open := func(conns int) (*gorm.DB, *sql.DB, error) {
		db, err := gorm.Open(postgres.New(postgres.Config{DSN: dsn}), gormConfig())
		if err != nil {
			return nil, nil, fmt.Errorf("sqlstore: open postgres: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, nil, fmt.Errorf("sqlstore: open postgres: %w", err)
		}
		sqlDB.SetMaxOpenConns(conns)
		sqlDB.SetMaxIdleConns(conns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		sqlDB.SetConnMaxLifetime(time.Hour)
		return db, sqlDB, nil
	}
	db, sqlDB, err := open(poolSize - 1)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sqlDB.Close()
		}
	}()
	if err := prepareSchema(ctx, sqlDB, DialectPostgres, migrate, log); err != nil {
		return nil, err
	}
	wdb, wsql, err := open(1)
	if err != nil {
		return nil, err
	}
	w := startWriter(wdb, wsql, DialectPostgres, log)
	return &Store{dialect: DialectPostgres, log: log, db: db, w: w}, nil
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
