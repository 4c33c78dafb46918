// Package storetest gives tests real databases: a migrated SQLite store on a fresh file, a
// migrated PostgreSQL store on a fresh database of the server named by RECOVERYDESK_TEST_POSTGRES,
// and raw SQL access for tamper tests. Each helper cleans up after the test.
//
// PostgreSQL tests skip when RECOVERYDESK_TEST_POSTGRES is unset, except under CI=true, where a
// missing database is a failure: CI must not pass by skipping them.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "github.com/mattn/go-sqlite3"    // database/sql driver "sqlite3"

	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// EnvPostgres names the environment variable holding the PostgreSQL server DSN
// (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable).
const EnvPostgres = "RECOVERYDESK_TEST_POSTGRES"

// SQLite opens a migrated store on a fresh file in t.TempDir() and closes it at cleanup. It
// returns the file path too.
func SQLite(t testing.TB) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recoverydesk.db")
	return open(t, path), path
}

// Postgres creates a fresh database (rd_test_<random hex>) on the server named by
// RECOVERYDESK_TEST_POSTGRES, opens a migrated store on it, and at cleanup closes the store and
// drops the database. It returns the new database's DSN too. Without the variable it skips the
// test, or fails it when CI=true.
func Postgres(t testing.TB) (*sqlstore.Store, string) {
	t.Helper()
	server := os.Getenv(EnvPostgres)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: the PostgreSQL tests must run in CI", EnvPostgres)
		}
		t.Skipf("PostgreSQL tests skipped: set %s to a server DSN, e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable", EnvPostgres)
	}
	u, err := url.Parse(server)
	if err != nil || !sqlstore.IsPostgres(server) {
		t.Fatalf("%s must be a postgres:// URL", EnvPostgres)
	}
	var raw [8]byte
	rand.Read(raw[:])
	name := "rd_test_" + hex.EncodeToString(raw[:])
	Exec(t, server, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// Registered before the store's cleanup, so it runs after the store is closed; FORCE
		// ends any connection a test leaked.
		Exec(t, server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	dsn := u.String()
	return open(t, dsn), dsn
}

func open(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// Each runs fn as the subtests "sqlite" and "postgres", each on a fresh migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *sqlstore.Store, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Helper()
		s, dsn := SQLite(t)
		fn(t, s, dsn)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Helper()
		s, dsn := Postgres(t)
		fn(t, s, dsn)
	})
}

// Exec runs one raw statement on the database behind dsn (a SQLite path or a PostgreSQL DSN)
// over its own database/sql connection, bypassing the store: for tamper tests that drop the
// append-only triggers and edit or delete rows. It fails the test on error.
func Exec(t testing.TB, dsn string, query string, args ...any) {
	t.Helper()
	if err := exec(dsn, query, args...); err != nil {
		t.Fatalf("storetest.Exec %q: %v", query, err)
	}
}

func exec(dsn, query string, args ...any) error {
	driver, source := "pgx", dsn
	if !sqlstore.IsPostgres(dsn) {
		// A plain path: the driver reads the parameters after '?' and opens the rest as the
		// file name. Foreign keys as the store has them; busy_timeout waits for its writer.
		driver, source = "sqlite3", dsn+"?_busy_timeout=5000&_foreign_keys=on"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = db.ExecContext(ctx, query, args...)
	return err
}

// DropAuditGuards removes the audit table's append-only triggers, as an attacker with database
// access would, so that a test can then tamper with the chain.
func DropAuditGuards(t testing.TB, dsn string) {
	t.Helper()
	triggers := []string{"audit_events_no_update", "audit_events_no_delete"}
	if sqlstore.IsPostgres(dsn) {
		triggers = append(triggers, "audit_events_no_truncate")
	}
	for _, tr := range triggers {
		q := "DROP TRIGGER IF EXISTS " + tr
		if sqlstore.IsPostgres(dsn) {
			q += " ON audit_events"
		}
		Exec(t, dsn, q)
	}
}
