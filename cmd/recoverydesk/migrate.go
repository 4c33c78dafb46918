package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const migrateHelp = `
Apply the pending database migrations and print the schema version. serve migrates on start as
well; run migrate on its own to upgrade before starting new replicas.

With --reseal, every sealed value (TOTP secrets, account facts) that is not sealed under the
first key of RECOVERYDESK_KEYS is opened with its own key and sealed again under the first one,
in one transaction. Key rotation:
  1. put the new key first: RECOVERYDESK_KEYS=new:…,old:…
  2. recoverydesk migrate --reseal
  3. drop the old key: RECOVERYDESK_KEYS=new:…

Before anything is re-sealed (and on every start), a value sealed under a key id that
RECOVERYDESK_KEYS (or the key file) lacks stops the command with a message naming the id.`

func (a *app) migrate(ctx context.Context, args []string) error {
	fs := a.command("migrate", "migrate [--reseal] [flags]", migrateHelp)
	reseal := fs.Bool("reseal", false, "re-seal every secret under the first key (after adding a key in front)")
	pos, err := a.parseAll(fs, "migrate", args)
	if err != nil {
		return err
	}
	if err := wantArgs("migrate", pos); err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		version, err := o.store.SchemaVersion(ctx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		fmt.Fprintf(a.stdout, "Database %s (%s) is at schema version %d.\n", redactDSN(cfg.DB), o.store.Dialect(), version)
		if !*reseal {
			return nil
		}
		n, err := o.svc.Reseal(ctx, cliActor)
		if errors.Is(err, recovery.ErrUnseal) {
			return fmt.Errorf("reseal: %w: every key that sealed a value must still be listed in RECOVERYDESK_KEYS (after the first)", err)
		}
		if err != nil {
			return fmt.Errorf("reseal: %w", err)
		}
		fmt.Fprintf(a.stdout, "Re-sealed %d values under key %q.\n", n, o.keys.SealingKeyID())
		return nil
	})
}
