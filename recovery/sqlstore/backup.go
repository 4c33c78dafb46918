package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Backups of SQLite databases. PostgreSQL has its own tools (pg_dump, pg_restore); after either
// kind of restore the domain's Service.FinishRestore spends again what the copy brings back.

// ErrPostgresBackup is returned by Backup for a PostgreSQL DSN.
var ErrPostgresBackup = errors.New("a PostgreSQL database is backed up with pg_dump and restored with pg_restore")

// ErrInUse is returned by Detach when another connection has the SQLite database open.
var ErrInUse = errors.New("the database is open in another process")

// BackupInfo describes a SQLite backup file: what a restore of it brings back.
type BackupInfo struct {
	Path          string
	Size          int64 // bytes
	SchemaVersion int64
	Events        int64  // audit events in the copy: the chain's last seq
	Head          string // the last event's hash (recovery.ZeroHash when there is none)
}

// Backup writes a consistent copy of the SQLite database at src to dest, mode 0600, with
// VACUUM INTO: one read transaction, so the copy is the database as of one moment while servers
// go on writing (a WAL reader never blocks the writer, nor the writer it). The copy is written to
// a temporary file beside dest, checked with integrity_check, synced, and only then given the
// name dest by a hard link, which fails if dest exists: a backup never overwrites anything, not
// even a file created while it ran.
//
// Backup is a function of the file, not a Store method: it needs no keys, writes nothing to
// src, and works on a database of any schema version — a backup taken before a migration is the
// one that matters most.
func Backup(ctx context.Context, src, dest string) (BackupInfo, error) {
	if IsPostgres(src) {
		return BackupInfo{}, ErrPostgresBackup
	}
	if err := CheckDSN(src); err != nil {
		return BackupInfo{}, err
	}
	if _, err := os.Lstat(dest); err == nil {
		return BackupInfo{}, fmt.Errorf("%s already exists: a backup never overwrites a file; choose a new name", dest)
	}
	if _, err := os.Stat(src); err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", src, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp*") // mode 0600
	if err != nil {
		return BackupInfo{}, fmt.Errorf("create the backup file: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // after the link, only the name goes

	// mode=rw: the source is never created (and never written: VACUUM INTO only reads it). It
	// is not query_only either, which refuses VACUUM INTO.
	db, err := openRaw(src, "mode=rw")
	if err != nil {
		return BackupInfo{}, err
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	db.Close()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("copy %s: %w", src, oneLine(err))
	}
	info, err := inspect(ctx, tmp)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the copy of %s failed its check: %w", src, err)
	}
	if err := syncFile(tmp); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Link(tmp, dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return BackupInfo{}, fmt.Errorf("%s already exists: a backup never overwrites a file; choose a new name", dest)
		}
		return BackupInfo{}, fmt.Errorf("name the backup file: %w", err)
	}
	syncDir(filepath.Dir(dest))
	info.Path = dest
	return info, nil
}

// CheckBackup checks a SQLite database file before it is restored: it is a sound SQLite file
// (integrity_check), it is a RecoveryDesk database (schema version and audit table present),
// and its schema is not newer than this binary's (recovery.ErrSchemaTooNew). The audit chain
// itself is the domain's to verify, once the file is open as a store. Check a private copy:
// opening a file that has a hot journal rolls it back.
func CheckBackup(ctx context.Context, path string) (BackupInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return BackupInfo{}, fmt.Errorf("%s is not a regular file", path)
	}
	return inspect(ctx, path)
}

// inspect runs integrity_check on the SQLite file at path and reads its schema version and
// audit head.
func inspect(ctx context.Context, path string) (BackupInfo, error) {
	db, err := openRaw(path, "mode=rw")
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&result); err != nil {
		return BackupInfo{}, fmt.Errorf("not a sound SQLite database: %w", oneLine(err))
	}
	if result != "ok" {
		return BackupInfo{}, fmt.Errorf("not a sound SQLite database: integrity_check says %s", oneLine(errors.New(result)))
	}
	v, err := readVersions(ctx, db, DialectSQLite)
	if err != nil {
		return BackupInfo{}, err
	}
	if v.current == 0 {
		return BackupInfo{}, errors.New("not a RecoveryDesk database (it has no schema version)")
	}
	_, known, err := migrations(DialectSQLite)
	if err != nil {
		return BackupInfo{}, err
	}
	if latest := known[len(known)-1]; v.current > latest {
		return BackupInfo{}, fmt.Errorf("it is at schema version %d but this binary knows versions up to %d: %w; use a newer recoverydesk",
			v.current, latest, recovery.ErrSchemaTooNew)
	}
	info := BackupInfo{Path: path, SchemaVersion: v.current, Head: recovery.ZeroHash}
	err = db.QueryRowContext(ctx, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").Scan(&info.Events, &info.Head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return BackupInfo{}, fmt.Errorf("read the audit head: %w", oneLine(err))
	}
	st, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	info.Size = st.Size()
	return info, nil
}

// Detach makes the SQLite database at path one self-contained file that may be moved or
// replaced: it refuses (ErrInUse) while any other connection has the database open — a server,
// a command — and otherwise folds the write-ahead log into the file and removes it (the
// journal mode goes back to DELETE; the store sets WAL again when it opens the file) and syncs the
// file. A missing file is not an error.
//
// How it knows: while a connection has a WAL database open it holds a shared lock that keeps
// every other connection from leaving WAL mode.
func Detach(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := openRaw(path, "mode=rw&_busy_timeout=0")
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil {
		if strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "busy") {
			return fmt.Errorf("%s: %w", path, ErrInUse)
		}
		return fmt.Errorf("%s: %w", path, oneLine(err))
	}
	if mode != "delete" {
		return fmt.Errorf("%s: %w (its journal mode stayed %s)", path, ErrInUse, mode)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, oneLine(err))
	}
	return syncFile(path) // the folded file is what a rename that follows makes current
}

// openRaw opens the SQLite file at path on one connection of its own with the URI parameters
// params ("mode=rw" opens an existing file only).
func openRaw(path, params string) (*sql.DB, error) {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	if !strings.Contains(params, "_busy_timeout") {
		params += "&_busy_timeout=5000"
	}
	db, err := sql.Open("sqlite3", "file:"+p+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// oneLine is err's text on one line.
func oneLine(err error) error {
	return errors.New(strings.Join(strings.Fields(err.Error()), " "))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// syncDir makes a new directory entry durable; failure is not fatal (the file itself is synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
