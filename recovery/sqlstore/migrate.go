package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// migrationsFS holds one directory of goose SQL migrations per dialect. Both directories carry
// the same versions: a migration is written once per dialect.
//
//go:embed migrations
var migrationsFS embed.FS

// versionTable is goose's bookkeeping table (goose's default name).
const versionTable = "goose_db_version"

// migrationLockID is the PostgreSQL session advisory lock held while migrating ("rd/migra" in
// ASCII), so that replicas starting together apply each migration once.
const migrationLockID int64 = 0x72642f6d69677261

// migrations returns the dialect's migration files and their versions in ascending order.
func migrations(dialect string) (fs.FS, []int64, error) {
	fsys, err := fs.Sub(migrationsFS, "migrations/"+dialect)
	if err != nil {
		return nil, nil, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, nil, err
	}
	var versions []int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlstore: migration %s: %w", n, err)
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return nil, nil, fmt.Errorf("sqlstore: no embedded migrations for %s", dialect)
	}
	slices.Sort(versions)
	return fsys, versions, nil
}

// schemaVersions is what the database's version table says.
type schemaVersions struct {
	current int64          // highest applied version, 0 when none
	applied map[int64]bool // every applied version
}

// readVersions reads the version table without creating it: a database that has none is at
// version 0. It writes nothing, so Open without Migrate changes nothing.
func readVersions(ctx context.Context, db *sql.DB, dialect string) (schemaVersions, error) {
	v := schemaVersions{applied: map[int64]bool{}}
	exists := "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '" + versionTable + "'"
	if dialect == DialectPostgres {
		exists = "SELECT to_regclass('" + versionTable + "') IS NOT NULL"
	}
	var ok bool
	if err := db.QueryRowContext(ctx, exists).Scan(&ok); err != nil {
		return v, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	if !ok {
		return v, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT version_id FROM "+versionTable+" WHERE is_applied")
	if err != nil {
		return v, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return v, fmt.Errorf("sqlstore: read schema version: %w", err)
		}
		v.applied[n] = true
		v.current = max(v.current, n)
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	return v, nil
}

func (v schemaVersions) tooNew(latest int64) error {
	if v.current > latest {
		return fmt.Errorf("sqlstore: the database is at schema version %d but this binary knows versions up to %d: %w; run a newer recoverydesk",
			v.current, latest, recovery.ErrSchemaTooNew)
	}
	return nil
}

// prepareSchema refuses a schema newer than the embedded migrations, then applies the pending
// ones when migrate is set, or refuses them when it is not.
func prepareSchema(ctx context.Context, db *sql.DB, dialect string, migrate bool, log *slog.Logger) error {
	fsys, known, err := migrations(dialect)
	if err != nil {
		return err
	}
	latest := known[len(known)-1]
	v, err := readVersions(ctx, db, dialect)
	if err != nil {
		return err
	}
	if err := v.tooNew(latest); err != nil {
		return err
	}
	pending := slices.ContainsFunc(known, func(n int64) bool { return !v.applied[n] })
	if !pending {
		return nil
	}
	if !migrate {
		return fmt.Errorf("sqlstore: the database is at schema version %d but this binary needs version %d: %w",
			v.current, latest, ErrPendingMigrations)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	gooseDialect := goose.DialectSQLite3
	if dialect == DialectPostgres {
		gooseDialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gooseDialect, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil {
			log.Info("sqlstore: applied migration", "dialect", dialect, "version", r.Source.Version, "duration", r.Duration)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	// A replica running a newer binary may have migrated further while this one waited for the
	// migration lock.
	if v, err = readVersions(ctx, db, dialect); err != nil {
		return err
	}
	return v.tooNew(latest)
}
