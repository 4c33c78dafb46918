package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

const apikeyHelp = `
Manage the API keys with which the host platform calls /api/v1 ("Authorization: Bearer <key>").

  recoverydesk apikey add --name NAME   create a key; it is printed once and only its hash is kept
  recoverydesk apikey list              list keys: id, name, created, revoked (never a key or hash)
  recoverydesk apikey revoke ID         revoke a key by the id that list shows

Keys given in RECOVERYDESK_API_KEYS are accepted besides these; list names them.
Run 'recoverydesk apikey COMMAND --help' for details.`

func (a *app) apikey(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("apikey", "apikey: missing command: add, list or revoke")
	}
	switch args[0] {
	case "add":
		return a.apikeyAdd(ctx, args[1:])
	case "list":
		return a.apikeyList(ctx, args[1:])
	case "revoke":
		return a.apikeyRevoke(ctx, args[1:])
	}
	fs := a.command("apikey", "apikey add|list|revoke [flags]", apikeyHelp)
	if err := a.parse(fs, "apikey", args); err != nil {
		return err
	}
	return usagef("apikey", "apikey: unknown command %q: use add, list or revoke", args[0])
}

func (a *app) apikeyAdd(ctx context.Context, args []string) error {
	fs := a.command("apikey add", "apikey add --name NAME [flags]", `
Create an API key for the host platform and print it once. Only its hash is stored: a lost key
cannot be shown again; revoke it and add another. The key looks like rdk_<16 hex id>_<secret>.`)
	name := fs.String("name", "", "name of the key: 1-64 letters, digits or . _ - (e.g. the host platform's name)")
	pos, err := a.parseAll(fs, "apikey add", args)
	if err != nil {
		return err
	}
	if err := wantArgs("apikey add", pos); err != nil {
		return err
	}
	if *name == "" {
		return usagef("apikey add", "apikey add: --name is required")
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, openOpts{migrate: true, keys: keyCreate}, func(o *opened) error {
		k, plaintext, err := o.svc.CreateAPIKey(ctx, cliActor, *name)
		if err != nil {
			return fmt.Errorf("apikey add: %w", err)
		}
		fmt.Fprintf(a.stdout, "Created API key %q (id %s):\n%s\n", k.Name, k.ID, plaintext)
		fmt.Fprintf(a.stdout, "This key will not be shown again: store it now. The host sends it as \"Authorization: Bearer <key>\".\n")
		return nil
	})
}

func (a *app) apikeyList(ctx context.Context, args []string) error {
	fs := a.command("apikey list", "apikey list [flags]", `
List the stored API keys: id, name, when created and when revoked. Keys and hashes are never shown.
The database must exist already: list neither creates nor migrates one.`)
	pos, err := a.parseAll(fs, "apikey list", args)
	if err != nil {
		return err
	}
	if err := wantArgs("apikey list", pos); err != nil {
		return err
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, readOpen, func(o *opened) error {
		keys, err := o.svc.APIKeys(ctx)
		if err != nil {
			return fmt.Errorf("apikey list: %w", err)
		}
		if len(keys) == 0 {
			fmt.Fprintln(a.stdout, "No API keys stored. Create one with: recoverydesk apikey add --name NAME")
		} else {
			sort.SliceStable(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tREVOKED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, listTime(k.CreatedAt), listTime(k.RevokedAt))
			}
			tw.Flush()
		}
		if len(cfg.StaticAPIKeys) > 0 {
			names := make([]string, 0, len(cfg.StaticAPIKeys))
			for n := range cfg.StaticAPIKeys {
				names = append(names, n)
			}
			sort.Strings(names)
			fmt.Fprintf(a.stdout, "Also accepted from %s: %s\n", cfg.Source("RECOVERYDESK_API_KEYS"), strings.Join(names, ", "))
		}
		return nil
	})
}

func listTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

var apiKeyIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

func (a *app) apikeyRevoke(ctx context.Context, args []string) error {
	fs := a.command("apikey revoke", "apikey revoke ID [flags]", `
Revoke the API key with id ID (the 16 hex digits 'apikey list' shows, also the part after rdk_
in the key; never pass the key itself). Requests with it are refused from then on. Revoking is
recorded in the audit chain. The database must exist already.`)
	pos, err := a.parseAll(fs, "apikey revoke", args)
	if err != nil {
		return err
	}
	// The arguments are never quoted back: someone may paste the whole key (rdk_<id>_<secret>).
	for _, p := range pos {
		if strings.HasPrefix(p, "rdk_") {
			return usagef("apikey revoke", "apikey revoke: pass the key's id (16 hex characters, see 'apikey list'), not the key itself")
		}
	}
	switch {
	case len(pos) == 0:
		return usagef("apikey revoke", "apikey revoke: missing ID")
	case len(pos) > 1:
		return usagef("apikey revoke", "apikey revoke: takes one ID, got %d arguments", len(pos))
	case !apiKeyIDPattern.MatchString(pos[0]):
		return usagef("apikey revoke", "apikey revoke: the argument is not a key id (16 hex characters, see 'apikey list')")
	}
	id := pos[0]
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	return a.withService(ctx, cfg, readOpen, func(o *opened) error {
		k, err := o.svc.RevokeAPIKey(ctx, cliActor, id)
		if errors.Is(err, recovery.ErrAlreadyRevoked) {
			fmt.Fprintf(a.stdout, "API key %s (%q) was already revoked at %s.\n", id, k.Name, listTime(k.RevokedAt))
			return nil
		}
		if errors.Is(err, recovery.ErrNotFound) {
			return fmt.Errorf("apikey revoke: no API key with id %s", id)
		}
		if err != nil {
			return fmt.Errorf("apikey revoke: %w", err)
		}
		fmt.Fprintf(a.stdout, "Revoked API key %s.\n", id)
		return nil
	})
}
