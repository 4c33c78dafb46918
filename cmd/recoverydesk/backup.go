package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

const backupHelp = `
Write a consistent copy of the SQLite database (RECOVERYDESK_DB) to FILE with SQLite's
VACUUM INTO, while servers go on serving: the copy is the database as of one moment. It is
checked (integrity_check) before it gets its name, and written mode 0600. FILE must not exist:
a backup never overwrites a file. Prints the copy's size and the audit chain's event count and
head hash at that moment.

The backup holds the sealed secrets but NOT the keys that open them. Back up the master key
(recoverydesk.key beside the database, or RECOVERYDESK_KEYS) and the audit signing key
(recoverydesk-audit.key, or RECOVERYDESK_AUDIT_KEY) separately, once and after every rotation,
and keep them apart from the backups: a backup is useless without its key, and whoever holds
both holds every secret.

PostgreSQL databases are backed up with pg_dump; see 'recoverydesk restore --help'.`

func (a *app) backup(ctx context.Context, args []string) error {
	fs := a.command("backup", "backup FILE [flags]", backupHelp)
	pos, err := a.parseAll(fs, "backup", args)
	if err != nil {
		return err
	}
	if err := wantArgs("backup", pos, "FILE"); err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	if sqlstore.IsPostgres(cfg.DB) {
		return errors.New("backup: RECOVERYDESK_DB is PostgreSQL: back it up with pg_dump " +
			"(pg_dump -Fc -f FILE DSN); to restore, pg_restore it and run 'recoverydesk restore --finish'")
	}
	if err := requireDatabase(cfg); err != nil {
		return err
	}
	info, err := sqlstore.Backup(ctx, cfg.DB, pos[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(a.stdout, "Backed up %s to %s (%d bytes, schema version %d, mode 0600): %s, head %s.\n",
		cfg.DB, info.Path, info.Size, info.SchemaVersion, events(info.Events), info.Head)
	fmt.Fprintf(a.stdout, "The backup does not hold the master key: keep %s (or RECOVERYDESK_KEYS) backed up separately.\n",
		masterKeyLocation(cfg))
	return nil
}

// masterKeyLocation says where the master key of cfg comes from, for messages.
func masterKeyLocation(cfg *Config) string {
	if cfg.Keys != "" {
		return cfg.Source("RECOVERYDESK_KEYS")
	}
	return absPath(filepath.Join(keyFileDir(cfg.DB), masterKeyFile))
}
