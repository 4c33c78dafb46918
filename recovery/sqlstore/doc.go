// Package sqlstore is the GORM adapter behind recovery.Store: SQLite by default (one file, WAL),
// PostgreSQL when several replicas share one database.
//
// It keeps no business rules. It loads and saves what the domain hands it, maps missing rows to
// recovery.ErrNotFound and a second account with the same e-mail key to recovery.ErrEmailTaken,
// and offers the two atomic primitives the domain's rules rest on: ConsumeStep and
// UseRecoveryCode are each one conditional UPDATE whose row count is the answer.
//
// # Schema
//
// The schema is versioned SQL per dialect, embedded (migrations/sqlite, migrations/postgres) and
// applied with goose; its version table is goose_db_version. Open refuses a database migrated by a
// newer binary (recovery.ErrSchemaTooNew) and, unless Options.Migrate is set, one with pending
// migrations (ErrPendingMigrations). On PostgreSQL migrations run under a session advisory lock,
// so replicas that start together migrate once.
//
// Every time is stored as Unix nanoseconds in a 64-bit integer and the zero time.Time as NULL;
// times come back in UTC. Nanoseconds because the audit chain hashes them and PostgreSQL
// timestamps keep microseconds only.
//
// audit_events is append-only in the database itself: triggers named audit_events_no_update and
// audit_events_no_delete (and, on PostgreSQL, audit_events_no_truncate) raise
// "audit_events is append-only".
//
// # Writes on SQLite: group commit
//
// "Acknowledged means durable" asks for synchronous=FULL, one fsync per commit. One writer
// goroutine owns the only write connection. Update hands it fn and waits; the writer takes every
// request that has arrived (up to 64), opens one BEGIN IMMEDIATE transaction, runs every fn in it
// and commits once; only then does each caller get its answer. If an fn fails (an error or a
// panic), the batch is rolled back and run again with each fn in its own SAVEPOINT, so that the
// failure undoes that fn's writes only. Reads (View) use a separate pool of query-only
// connections, each View in a deferred read transaction: a consistent WAL snapshot that never
// waits for the writer.
//
// # Writes on PostgreSQL
//
// The same writer, one per process, on a connection of its own (so that Views and the poll lock,
// which use the rest of the pool, can never starve it): each batch
// is one READ COMMITTED transaction whose first statement takes the audit chain's
// transaction-scoped advisory lock, so the batches of all replicas run one after the other, whole
// (and cannot deadlock with each other over row locks), and the chain's head is read once per
// batch. A serialization failure or deadlock anywhere in a batch, commit included, runs the whole
// batch again, a few times (so fn must have no effects outside tx). View is a READ ONLY
// REPEATABLE READ transaction on the pool, in parallel with the writer.
package sqlstore
