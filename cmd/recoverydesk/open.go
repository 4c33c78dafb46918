package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

// cliActor is who the audit chain names for changes made with this command.
var cliActor = recovery.Actor{Type: recovery.ActorSystem, ID: "cli"}

// openOpts says how a command opens the database.
type openOpts struct {
	migrate bool    // apply pending migrations (commands that write the schema)
	keys    keyMode // what to do without a configured master key; keyCreate also checks the keys
	// mustExist refuses a SQLite path that does not exist instead of creating an empty
	// database (for commands that only read or change rows, like audit verify or apikey list).
	mustExist bool
	// auditKey loads the audit signing key too, creating its file beside a new SQLite
	// database: serve does not sign, but a malformed key then stops the start instead of a
	// later export. With PostgreSQL the key is checked when set and not required.
	auditKey bool
	// observer hears the service's outcomes (serve's metrics); nil for other commands.
	observer recovery.Observer
}

// readOpen opens an existing database as it is: no migration, no key file created, no master
// key needed (for commands that never open a sealed value).
var readOpen = openOpts{migrate: false, keys: keyOptional, mustExist: true}

// opened is a configured service over an open store. Close the store when done.
type opened struct {
	cfg   *Config
	store *sqlstore.Store
	svc   *recovery.Service
	keys  *recovery.Keyring
}

// open loads the configuration and the master key, opens the store and builds the service.
// Keys are checked before the database is touched, so a key problem never leaves a new database.
// With keyCreate, every key that sealed a stored value must be in the keyring
// (recovery.Service.CheckKeys), or open fails.
func (a *app) open(ctx context.Context, cfg *Config, o openOpts) (*opened, error) {
	pg := sqlstore.IsPostgres(cfg.DB)
	if o.mustExist {
		if err := requireDatabase(cfg); err != nil {
			return nil, err
		}
	}
	keys, err := a.loadKeyring(cfg, pg, o.keys)
	if err != nil {
		return nil, err
	}
	if o.auditKey {
		mode := keyCreate
		if pg {
			mode = keyOptional
		}
		if _, err := a.loadAuditKey(cfg, pg, mode); err != nil {
			return nil, err
		}
	}
	var policy *recovery.Policy
	if cfg.PolicyFile != "" {
		if policy, err = recovery.LoadPolicyFile(cfg.PolicyFile); err != nil {
			return nil, &lineError{msg: fmt.Sprintf("RECOVERYDESK_POLICY_FILE: %v", err), err: err}
		}
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{Migrate: o.migrate, Logger: a.log})
	if err != nil {
		return nil, openError(cfg.DB, err)
	}
	// cmd owns the real clock; the domain takes it from here.
	svc, err := recovery.New(store, recovery.Options{Now: a.now, Keys: keys, Issuer: cfg.Issuer,
		StaticAPIKeys: cfg.StaticAPIKeys, BaseURL: cfg.resolveBaseURL(cfg.Addr), HostWebhook: cfg.HostWebhookURL != "",
		Policy: policy, Observer: o.observer})
	if err != nil {
		store.Close()
		return nil, err
	}
	if o.keys == keyCreate {
		if err := svc.CheckKeys(ctx); err != nil {
			store.Close()
			return nil, missingKeyError(cfg, err)
		}
	}
	return &opened{cfg: cfg, store: store, svc: svc, keys: keys}, nil
}

// requireDatabase refuses a SQLite database file that does not exist, so that a command which
// must not create one says so instead ("no database at PATH"). PostgreSQL is checked by
// connecting.
func requireDatabase(cfg *Config) error {
	if sqlstore.IsPostgres(cfg.DB) {
		return nil
	}
	path := cfg.DB // a plain file path: checkDB refused URIs
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no database at %s (%s): check the path; serve or migrate creates a new one",
			absPath(path), cfg.Source("RECOVERYDESK_DB"))
	case err != nil:
		return fmt.Errorf("database %s: %v", path, errors.Unwrap(err))
	}
	return nil
}

// missingKeyError explains a failed key check: which keys to supply, and where.
func missingKeyError(cfg *Config, err error) error {
	if !errors.Is(err, recovery.ErrMissingKey) {
		return fmt.Errorf("check the master keys: %w", err)
	}
	if cfg.Keys != "" {
		src := cfg.Source("RECOVERYDESK_KEYS")
		return fmt.Errorf("%s: %w: add them to %s after the sealing key (the first key seals, all open)", src, err, src)
	}
	path := absPath(filepath.Join(keyFileDir(cfg.DB), masterKeyFile))
	return fmt.Errorf("master key file %s: %w: restore the key file that holds them from a backup, "+
		"or set RECOVERYDESK_KEYS to include them", path, err)
}

// openError makes a store error one line that names the database (without its password). The
// store's own errors say what to do about a schema too new (recovery.ErrSchemaTooNew) or out
// of date (sqlstore.ErrPendingMigrations); both stay visible to errors.Is.
func openError(dsn string, err error) error {
	msg := fmt.Sprintf("open database %s: %s", redactDSN(dsn), strings.Join(strings.Fields(err.Error()), " "))
	return &lineError{msg: msg, err: err}
}

// lineError replaces an error's text with one line and keeps it for errors.Is.
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// withService opens the service, runs fn and closes the store, reporting a close error too.
func (a *app) withService(ctx context.Context, cfg *Config, o openOpts, fn func(o *opened) error) error {
	op, err := a.open(ctx, cfg, o)
	if err != nil {
		return err
	}
	err = fn(op)
	if cerr := op.store.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	return err
}
