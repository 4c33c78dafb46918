package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

var bg = context.Background()

// t0 has nanoseconds on purpose: every time must survive a round trip exactly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func update(t testing.TB, s *sqlstore.Store, fn func(tx recovery.Tx) error) {
	t.Helper()
	if err := s.Update(bg, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t testing.TB, s *sqlstore.Store, fn func(tx recovery.ReadTx) error) {
	t.Helper()
	if err := s.View(bg, fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func account(id string) recovery.Account {
	return recovery.Account{ID: id, Email: id + "@Example.com", EmailKey: id + "@example.com", CreatedAt: t0, UpdatedAt: t0}
}

func putAccount(t testing.TB, s *sqlstore.Store, id string) {
	t.Helper()
	update(t, s, func(tx recovery.Tx) error { return tx.PutAccount(account(id)) })
}

func putFactor(t testing.TB, s *sqlstore.Store, id string, lastStep int64) {
	t.Helper()
	update(t, s, func(tx recovery.Tx) error {
		if err := tx.PutAccount(account(id)); err != nil {
			return err
		}
		return tx.PutFactor(recovery.Factor{AccountID: id, State: recovery.StateActive, SecretSealed: "sealed", LastStep: lastStep})
	})
}

// appendEvent appends a correctly chained event the way the domain does.
func appendEvent(tx recovery.Tx, action string, at time.Time) (recovery.Event, error) {
	seq, head, err := tx.AuditHead()
	if err != nil {
		return recovery.Event{}, err
	}
	e := recovery.Event{Seq: seq + 1, Time: at, ActorType: recovery.ActorSystem, ActorID: "test", Action: action,
		TargetType: "account", TargetID: "a", Details: []byte(`{"n":1}`), RequestID: "req", PrevHash: head}
	if e.Hash, err = e.ComputeHash(); err != nil {
		return recovery.Event{}, err
	}
	return e, tx.AppendAudit(e)
}

// rawDB opens the database behind dsn with database/sql, beside the store, to look at what it
// wrote (NULLs, row counts) and to try what the store never does.
func rawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, source := "pgx", dsn
	if !sqlstore.IsPostgres(dsn) {
		driver, source = "sqlite3", dsn+"?_busy_timeout=5000"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// count runs a COUNT query with ? placeholders (numbered for PostgreSQL).
func count(t testing.TB, dsn, query string, args ...any) int {
	t.Helper()
	if sqlstore.IsPostgres(dsn) {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	var n int
	if err := rawDB(t, dsn).QueryRowContext(bg, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// freshDSN names a new, empty database of the same dialect as dsn, dropped at cleanup.
func freshDSN(t *testing.T, dsn string) string {
	t.Helper()
	if !sqlstore.IsPostgres(dsn) {
		return filepath.Join(t.TempDir(), "fresh.db")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var raw [6]byte
	rand.Read(raw[:])
	name := "rd_test_" + hex.EncodeToString(raw[:]) + "_fresh"
	storetest.Exec(t, dsn, "CREATE DATABASE "+name)
	t.Cleanup(func() { storetest.Exec(t, dsn, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}

func dialectOf(dsn string) string {
	if sqlstore.IsPostgres(dsn) {
		return sqlstore.DialectPostgres
	}
	return sqlstore.DialectSQLite
}

// embeddedVersions reads the migration versions of a dialect from the source tree.
func embeddedVersions(t testing.TB, dialect string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("migrations", dialect))
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, e := range entries {
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	if len(vs) == 0 {
		t.Fatalf("no migrations for %s", dialect)
	}
	return vs
}

func openStore(t testing.TB, dsn string, migrate bool) (*sqlstore.Store, error) {
	t.Helper()
	s, err := sqlstore.Open(bg, dsn, sqlstore.Options{Migrate: migrate})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
