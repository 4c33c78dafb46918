package sqlstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore/storetest"
)

// verifyChain walks the audit chain of the SQLite file at path, opened as a store.
func verifyChain(t *testing.T, path string) recovery.ChainReport {
	t.Helper()
	s, err := openStore(t, path, false)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	v := recovery.NewChainVerifier()
	view(t, s, func(tx recovery.ReadTx) error {
		for _, e := range must(tx.AuditEvents(0, 1<<30)) {
			if !v.Add(e) {
				break
			}
		}
		return nil
	})
	return v.Report()
}

// TestBackupWhileWriting: backups taken while eight writers append to the chain and consume
// steps are each one consistent moment: integrity_check passes, the chain verifies and ends where
// the backup said, mode 0600 — and the writers went on committing while the copy ran.
func TestBackupWhileWriting(t *testing.T) {
	s, path := storetest.SQLite(t)
	for i := range 8 {
		putFactor(t, s, string(rune('a'+i)), 0)
	}
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		id := string(rune('a' + i))
		wg.Go(func() {
			for step := int64(1); ; step++ {
				select {
				case <-stop:
					return
				default:
				}
				err := s.Update(bg, func(tx recovery.Tx) error {
					if _, err := tx.ConsumeStep(id, step, t0); err != nil {
						return err
					}
					_, err := appendEvent(tx, "test.write", t0)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				committed.Add(1)
			}
		})
	}
	waitFor(t, "the first writes", func() bool { return committed.Load() > 50 })
	dir := t.TempDir()
	overlapped := false
	for i := 0; i < 10 && !overlapped; i++ {
		dest := filepath.Join(dir, "backup-"+string(rune('0'+i))+".db")
		before := committed.Load()
		info, err := sqlstore.Backup(bg, path, dest)
		after := committed.Load()
		if err != nil {
			t.Fatal(err)
		}
		overlapped = after > before
		if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o600 || st.Size() != info.Size {
			t.Fatalf("backup file: %v, %v (info %+v)", st, err, info)
		}
		var ok string
		if err := rawDB(t, dest).QueryRowContext(bg, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("integrity_check of the backup: %q, %v", ok, err)
		}
		r := verifyChain(t, dest)
		if !r.OK() || r.Count != info.Events || r.Head != info.Head || info.Events < before {
			t.Fatalf("backup chain %+v, backup said %d events head %s (%d writes committed before)", r, info.Events, info.Head, before)
		}
	}
	close(stop)
	wg.Wait()
	if !overlapped {
		t.Fatal("no backup ran while writes committed: the test proved nothing")
	}
	if r := verifyChain(t, path); !r.OK() || r.Count != committed.Load() {
		t.Errorf("live chain %+v after %d writes", r, committed.Load())
	}
	// Nothing but the backups is left in the directory.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "backup-") || !strings.HasSuffix(e.Name(), ".db") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestBackupRefuses: an existing file is never overwritten, PostgreSQL is sent to pg_dump, and a
// missing database leaves no file.
func TestBackupRefuses(t *testing.T) {
	_, path := storetest.SQLite(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	os.WriteFile(existing, []byte("keep me"), 0o600)
	if _, err := sqlstore.Backup(bg, path, existing); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
	if _, err := sqlstore.Backup(bg, "postgres://u@127.0.0.1/x", filepath.Join(dir, "pg.db")); !errors.Is(err, sqlstore.ErrPostgresBackup) {
		t.Errorf("PostgreSQL: %v", err)
	}
	if _, err := sqlstore.Backup(bg, filepath.Join(dir, "missing.db"), filepath.Join(dir, "b.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("backup created the missing database")
	}
}

// TestCheckBackup refuses what is not a sound RecoveryDesk database of a known schema.
func TestCheckBackup(t *testing.T) {
	s, path := storetest.SQLite(t)
	putFactor(t, s, "a", 1)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	if _, err := sqlstore.Backup(bg, path, good); err != nil {
		t.Fatal(err)
	}
	if info, err := sqlstore.CheckBackup(bg, good); err != nil || info.SchemaVersion != int64(len(embeddedVersions(t, "sqlite"))) {
		t.Fatalf("good backup: %+v, %v", info, err)
	}
	copyWith := func(name string, edit func(b []byte) []byte) string {
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	junk := copyWith("junk.db", func(b []byte) []byte { return []byte(strings.Repeat("not a database ", 400)) })
	// Page 2 onwards overwritten: the schema's b-trees are garbage.
	corrupt := copyWith("corrupt.db", func(b []byte) []byte {
		for i := 4096; i < 3*4096 && i < len(b); i++ {
			b[i] = 0xA5
		}
		return b
	})
	truncated := copyWith("truncated.db", func(b []byte) []byte { return b[:len(b)/3] })
	plain := filepath.Join(dir, "plain.db")
	storetest.Exec(t, plain, "CREATE TABLE x (y INTEGER)")
	newer := copyWith("newer.db", func(b []byte) []byte { return b })
	storetest.Exec(t, newer, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, 1)")
	for _, c := range []struct {
		path, want string
	}{
		{junk, "not a sound SQLite database: file is not a database"},
		{corrupt, "not a sound SQLite database"},
		{truncated, "not a sound SQLite database"},
		{plain, "not a RecoveryDesk database"},
		{newer, "schema version 999"},
		{filepath.Join(dir, "missing.db"), "no such file"},
	} {
		_, err := sqlstore.CheckBackup(bg, c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", filepath.Base(c.path), err, c.want)
		}
	}
	if _, err := sqlstore.CheckBackup(bg, newer); !errors.Is(err, recovery.ErrSchemaTooNew) {
		t.Errorf("newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestDetach refuses a database another connection has open, and leaves a closed one as one
// file without its write-ahead log.
func TestDetach(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rd.db")
	s, err := openStore(t, path, true)
	if err != nil {
		t.Fatal(err)
	}
	putFactor(t, s, "a", 7)
	if err := sqlstore.Detach(bg, path); !errors.Is(err, sqlstore.ErrInUse) {
		t.Fatalf("detach while the store is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Detach(bg, path); err != nil {
		t.Fatalf("detach after close: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s left behind", suffix)
		}
	}
	// The file alone holds the data; the store opens it in WAL mode again.
	s2, err := openStore(t, path, false)
	if err != nil {
		t.Fatal(err)
	}
	view(t, s2, func(tx recovery.ReadTx) error {
		if f := must(tx.Factor("a")); f.LastStep != 7 {
			t.Errorf("last step %d after detach", f.LastStep)
		}
		return nil
	})
	if err := sqlstore.Detach(bg, filepath.Join(dir, "missing.db")); err != nil {
		t.Errorf("detach of a missing file: %v", err)
	}
}
