package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

const restoreHelp = `
Restore the database from a backup, and finish every restore with the same last step.

  recoverydesk restore FILE       SQLite: put the backup FILE (written by 'recoverydesk backup')
                                  in place of RECOVERYDESK_DB, then run the last step
  recoverydesk restore --finish   run only the last step on RECOVERYDESK_DB as it is: after
                                  pg_restore on PostgreSQL, or after copying a file by hand

Stop every server (and command) that uses the database first; with SQLite, restore refuses
while another process has the database open.

restore FILE checks a private copy of FILE in the database's directory: a sound SQLite file
(integrity_check), a schema not newer than this binary (an older one is migrated), the master
key opens its sealed values, and its audit chain verifies. Then it runs the last step on the
copy, moves the current database aside (kept as DB.before-restore-<time>, never deleted) and
renames the copy into place. A refused backup changes nothing.

The last step spends again what the backup brings back, in one transaction:
  - every factor's last used time step is advanced to the current step + 1, so that no code
    entered before the restore (one consumed after the backup included) can be replayed;
    new codes work again within a minute
  - every agent and end-user session ends (everyone signs in again)
  - every single-use token still unused is voided: re-enrollment, veto and agent setup links,
    Telegram link tokens, e-mail check codes (whoever needs one gets a new one)
  - the audit event system.restored records the backup's event count and head hash and what
    was changed
Not undone: recovery codes used since the backup are unused again (nothing in the backup says
which), and throttle counters are as they were.

The restored chain no longer matches checkpoints taken after the backup: it was rolled back.
The restore writes a new signed checkpoint (as 'audit export' does) to --checkpoint-out FILE
(default: DB.restore-<time>.checkpoint beside a SQLite database, or
recoverydesk-restore-<time>.checkpoint in the current directory with PostgreSQL); keep it off
this machine in place of the old one.

PostgreSQL (every server stopped for the restore):
  pg_dump -Fc -f rd.dump "$RECOVERYDESK_DB"
  pg_restore --clean --if-exists --no-owner --single-transaction -d "$RECOVERYDESK_DB" rd.dump
  recoverydesk restore --finish --checkpoint-out restore.checkpoint`

func (a *app) restore(ctx context.Context, args []string) error {
	fs := a.command("restore", "restore FILE | restore --finish [--checkpoint-out FILE] [flags]", restoreHelp)
	finish := fs.Bool("finish", false, "run only the last step of a restore on RECOVERYDESK_DB (after pg_restore, or a file copied by hand)")
	cpOut := fs.String("checkpoint-out", "", "write the new signed checkpoint to `FILE` (must not exist)")
	pos, err := a.parseAll(fs, "restore", args)
	if err != nil {
		return err
	}
	if *finish {
		err = wantArgs("restore --finish", pos)
	} else {
		err = wantArgs("restore", pos, "FILE (or --finish)")
	}
	if err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	pg := sqlstore.IsPostgres(cfg.DB)
	if pg && !*finish {
		return errors.New("restore: RECOVERYDESK_DB is PostgreSQL: restore the pg_dump with pg_restore, " +
			"then run 'recoverydesk restore --finish'")
	}
	stamp := a.now().UTC().Format("20060102T150405Z")
	cp := *cpOut
	if cp == "" {
		if pg {
			cp = "recoverydesk-restore-" + stamp + ".checkpoint"
		} else {
			cp = cfg.DB + ".restore-" + stamp + ".checkpoint"
		}
	}
	// What could stop the restore half-way is checked before anything is created or changed:
	// the checkpoint's file name, the database or the backup file and the master key, and the
	// audit key that signs the checkpoint.
	if _, err := os.Lstat(cp); err == nil {
		return fmt.Errorf("restore: the checkpoint file %s already exists: choose another with --checkpoint-out", cp)
	}
	switch {
	case *finish && !pg:
		if err = requireDatabase(cfg); err != nil {
			err = fmt.Errorf("restore --finish: %w", err)
		}
	case !*finish:
		err = checkRestoreInputs(cfg, pos[0])
	}
	if err != nil {
		return err
	}
	signWith, err := a.loadAuditKey(cfg, pg, keyCreate)
	if err != nil {
		return err
	}
	r := restoreRun{a: a, cfg: cfg, signWith: signWith, checkpoint: cp, stamp: stamp}
	if *finish {
		return r.finish(ctx)
	}
	return r.fromFile(ctx, pos[0])
}

// restoreRun is one restore.
type restoreRun struct {
	a          *app
	cfg        *Config
	signWith   ed25519.PrivateKey
	checkpoint string // where the new checkpoint goes
	stamp      string // the restore's time, in file names
}

// finish runs the last step on the configured database as it is.
func (r restoreRun) finish(ctx context.Context) error {
	cfg := r.cfg
	if !sqlstore.IsPostgres(cfg.DB) {
		if err := detach(ctx, cfg.DB); err != nil {
			return err
		}
	}
	return r.a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		res, err := o.svc.FinishRestore(ctx, cliActor, recovery.RestoreInfo{Source: "restore --finish"})
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		return r.report(res)
	})
}

// fromFile restores the SQLite backup at file in place of the configured database.
func (r restoreRun) fromFile(ctx context.Context, file string) error {
	a, cfg := r.a, r.cfg
	// A server with the database open would go on with the file that is moved aside.
	if err := detach(ctx, cfg.DB); err != nil {
		return err
	}

	// Everything below works on a private copy beside the database, so that a refused backup
	// changes nothing and the final rename is atomic (same directory, same file system).
	tmp, err := copyToTemp(file, filepath.Dir(cfg.DB), "."+filepath.Base(cfg.DB)+".restore-*.tmp")
	if err != nil {
		return fmt.Errorf("restore: copy %s: %w", file, err)
	}
	placed := false
	defer func() {
		if !placed {
			removeSQLiteFiles(tmp)
		}
	}()
	info, err := sqlstore.CheckBackup(ctx, tmp)
	if err != nil {
		return fmt.Errorf("restore: %s: %v", file, err)
	}
	tcfg := *cfg
	tcfg.DB = tmp
	var res recovery.RestoreResult
	err = a.withService(ctx, &tcfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		var err error
		res, err = o.svc.FinishRestore(ctx, cliActor, recovery.RestoreInfo{Source: filepath.Base(file)})
		return err
	})
	if err != nil {
		return fmt.Errorf("restore: %s: %w", file, err)
	}
	fmt.Fprintf(a.stdout, "Checked %s: integrity ok, schema version %d, audit chain ok (%s, head %s).\n",
		file, info.SchemaVersion, events(res.BackupEvents), res.BackupHead)
	// The copy becomes one self-contained file (its write-ahead log folded in), synced, before
	// its rename.
	if err := sqlstore.Detach(ctx, tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	aside := ""
	if _, err := os.Stat(cfg.DB); err == nil {
		aside = cfg.DB + ".before-restore-" + r.stamp
		if err := moveSQLiteFiles(cfg.DB, aside); err != nil {
			return fmt.Errorf("restore: move the current database aside: %w", err)
		}
	}
	if err := os.Rename(tmp, cfg.DB); err != nil {
		if aside != "" {
			moveSQLiteFiles(aside, cfg.DB) // put it back: nothing was restored
		}
		return fmt.Errorf("restore: put the backup in place: %w", err)
	}
	placed = true
	// Stale files of the replaced database would be read as the new one's log.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		os.Remove(cfg.DB + suffix)
	}
	syncDir(filepath.Dir(cfg.DB))
	if aside != "" {
		fmt.Fprintf(a.stdout, "Restored %s into %s; the database it replaced is kept as %s.\n", file, cfg.DB, aside)
	} else {
		fmt.Fprintf(a.stdout, "Restored %s into %s (there was no database there).\n", file, cfg.DB)
	}
	return r.report(res)
}

// report prints what the last step did and writes the new checkpoint.
func (r restoreRun) report(res recovery.RestoreResult) error {
	w := r.a.stdout
	fmt.Fprintf(w, "Last step of the restore, recorded as audit event system.restored (seq %d):\n", res.Checkpoint.Count)
	fmt.Fprintf(w, "  %d factors advanced to time step %d: no code entered before the restore can be used again; new codes work within a minute\n",
		res.FactorsAdvanced, res.Step)
	fmt.Fprintf(w, "  sessions ended: %d agent, %d end-user (everyone signs in again)\n", res.AgentSessionsEnded, res.UserSessionsEnded)
	var kinds []string
	for _, k := range recovery.RestoreTokenKinds() {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, res.TokensVoided[k]))
	}
	fmt.Fprintf(w, "  single-use tokens voided: %d (%s)\n", res.TokensVoidedTotal(), strings.Join(kinds, ", "))
	fmt.Fprintf(w, "  veto links sent again: %d (to the owners of tickets that can still be vetoed; the old links were voided)\n", res.VetoLinksReissued)
	fmt.Fprintf(w, "Not undone: recovery codes used since the backup are unused again.\n")

	signed, vkey, err := signCheckpoint(r.signWith, res.Checkpoint)
	if err == nil {
		err = writeFileAtomic(r.checkpoint, func(w io.Writer) error { _, err := w.Write(signed); return err })
	}
	if err != nil {
		return fmt.Errorf("restore: the database is restored, but writing the checkpoint failed (%v): run 'recoverydesk audit export --out FILE' for a new one", err)
	}
	fmt.Fprintf(w, "Checkpoint (%s, head %s) written to %s.\n", events(res.Checkpoint.Count), res.Checkpoint.Head, r.checkpoint)
	fmt.Fprintf(w, "Verifier key: %s\n", vkey)
	fmt.Fprintf(w, "Checkpoints taken before this restore no longer match: the chain was rolled back to the backup. "+
		"Keep this checkpoint off this machine in place of the old one. Check with:\n"+
		"  recoverydesk audit verify --checkpoint %s --verifier-key %s\n", r.checkpoint, vkey)
	return nil
}

// checkRestoreInputs checks, before anything is created or changed, that the backup file is
// there and so is the master key: the backup holds no key, without the one that sealed its data
// it would open nothing, and a new key file must not be made for it.
func checkRestoreInputs(cfg *Config, file string) error {
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("restore: no backup at %s", absPath(file))
	case err != nil:
		return fmt.Errorf("restore: %s: %v", file, errors.Unwrap(err))
	case !st.Mode().IsRegular():
		return fmt.Errorf("restore: %s is not a backup file", file)
	}
	keyPath := filepath.Join(keyFileDir(cfg.DB), masterKeyFile)
	if cfg.Keys == "" {
		if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore: master key file %s is missing: put back the key file that belongs to the backup "+
				"(the backup does not hold it), or set RECOVERYDESK_KEYS", absPath(keyPath))
		}
	}
	return nil
}

// detach refuses a SQLite database that another process has open, and folds its log into it.
func detach(ctx context.Context, path string) error {
	err := sqlstore.Detach(ctx, path)
	if errors.Is(err, sqlstore.ErrInUse) {
		return fmt.Errorf("restore: the database %s is open in another process: stop every recoverydesk server "+
			"and command that uses it, then run the restore again", absPath(path))
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// copyToTemp copies file into a new temporary file (mode 0600) in dir, synced, and returns its path.
func copyToTemp(file, dir, pattern string) (string, error) {
	in, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// moveSQLiteFiles renames a SQLite database and its companion files (log, journal) from to to.
// The shared-memory index is rebuilt by SQLite and is removed instead.
func moveSQLiteFiles(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		if _, err := os.Stat(from + suffix); err == nil {
			if err := os.Rename(from+suffix, to+suffix); err != nil {
				return err
			}
		}
	}
	os.Remove(from + "-shm")
	return nil
}

// removeSQLiteFiles removes a SQLite database file and its companions.
func removeSQLiteFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}
