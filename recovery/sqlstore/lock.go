package sqlstore

import (
	"context"
	"fmt"
)

// TryLock takes the session-level advisory lock key on a dedicated PostgreSQL connection and
// reports whether it got it; release unlocks it and returns the connection. The lock is held as
// long as that connection lives: if the connection breaks, PostgreSQL releases the lock, and lost
// then reports it (the holder must stop the work the lock guarded). Several replicas use it to
// elect one for a job (the Telegram poller). On SQLite, a single-host database, the lock is
// always taken and never lost.
func (s *Store) TryLock(ctx context.Context, key int64) (release func(), lost func(ctx context.Context) bool, ok bool, err error) {
	if err := s.begin(); err != nil {
		return nil, nil, false, err
	}
	defer s.ops.Done()
	if s.dialect == DialectSQLite {
		return func() {}, func(context.Context) bool { return false }, true, nil
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, nil, false, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("sqlstore: lock connection: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		conn.Close()
		return nil, nil, false, fmt.Errorf("sqlstore: try advisory lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, nil, false, nil
	}
	release = func() {
		// Closing the connection would release the lock too; unlocking first returns a clean
		// connection to the pool.
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key)
		conn.Close()
	}
	lost = func(ctx context.Context) bool {
		var one int
		return conn.QueryRowContext(ctx, "SELECT 1").Scan(&one) != nil && ctx.Err() == nil
	}
	return release, lost, true, nil
}
