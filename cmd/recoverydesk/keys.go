package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// Key files live beside the SQLite database (design.md, Running). With PostgreSQL there is no
// such place that every replica shares, so the keys must come from the environment.
const (
	masterKeyFile = "recoverydesk.key"
	auditKeyFile  = "recoverydesk-audit.key"
)

// keyMode says what a command may do when no key is configured and no key file exists.
type keyMode int

const (
	// keyCreate: the key is needed (serve, migrate, apikey add). A missing key file is created,
	// the master key file only beside a SQLite database that does not exist yet: a database
	// with data needs the key that sealed it, and a new key would open none of it.
	keyCreate   keyMode = iota
	keyOptional         // go on without (audit commands, apikey list and revoke read no sealed value)
)

// keyFileDir is the directory of the SQLite database file named by dsn.
func keyFileDir(dsn string) string { return filepath.Dir(dsn) }

// loadKeyring returns the master keyring: RECOVERYDESK_KEYS when set, else (SQLite only) the key
// file beside the database, created on first use, that is when the database does not exist yet
// (or is an empty file). A missing key file beside an existing database stops the command. In
// keyOptional mode a missing key gives an ephemeral keyring, which is enough for commands that
// never open a sealed value. Errors never carry key material.
func (a *app) loadKeyring(cfg *Config, postgres bool, mode keyMode) (*recovery.Keyring, error) {
	if cfg.Keys != "" {
		k, err := recovery.ParseKeys(cfg.Keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", cfg.Source("RECOVERYDESK_KEYS"), err)
		}
		return k, nil
	}
	if postgres {
		if mode == keyOptional {
			return ephemeralKeyring()
		}
		return nil, errors.New("RECOVERYDESK_KEYS is required with PostgreSQL (all replicas must share it)")
	}
	path := filepath.Join(keyFileDir(cfg.DB), masterKeyFile)
	parse := func(s string) error { _, err := recovery.ParseKeys(s); return err }
	generate := func() (string, error) {
		k, err := recovery.NewKey()
		if err != nil {
			return "", err
		}
		return recovery.FormatKey("k1", k), nil
	}
	// The first start creates the database and the key file together; afterwards the key file
	// is required. Only a new or empty database may get a new key.
	mayCreate := func() error {
		db, ok := existingDatabase(cfg.DB)
		if !ok {
			return nil
		}
		return fmt.Errorf("master key file %s is missing, but the database %s already exists: "+
			"restore the key file from a backup, or set RECOVERYDESK_KEYS to the keys that sealed its data "+
			"(a new key would open none of it)", absPath(path), db)
	}
	content, err := a.keyFile(path, "master key", mode, generate, parse, mayCreate,
		"it opens every sealed secret; back it up, and never lose it")
	switch {
	case err != nil:
		return nil, err
	case content == "": // keyOptional and no file
		return ephemeralKeyring()
	}
	return recovery.ParseKeys(content)
}

// ephemeralKeyring seals under a random key that is never stored.
func ephemeralKeyring() (*recovery.Keyring, error) {
	k, err := recovery.NewKey()
	if err != nil {
		return nil, err
	}
	return recovery.NewKeyring([]string{"ephemeral"}, [][]byte{k})
}

// loadAuditKey returns the Ed25519 key that signs audit checkpoints: RECOVERYDESK_AUDIT_KEY when
// set, else (SQLite only) the audit key file beside the database, created in keyCreate mode.
// It returns nil and no error when the key is optional and absent.
func (a *app) loadAuditKey(cfg *Config, postgres bool, mode keyMode) (ed25519.PrivateKey, error) {
	if cfg.AuditKey != "" {
		k, err := parseAuditSeed(cfg.AuditKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", cfg.Source("RECOVERYDESK_AUDIT_KEY"), err)
		}
		return k, nil
	}
	if postgres {
		if mode == keyOptional {
			return nil, nil
		}
		return nil, errors.New("RECOVERYDESK_AUDIT_KEY is required with PostgreSQL to sign audit checkpoints")
	}
	path := filepath.Join(keyFileDir(cfg.DB), auditKeyFile)
	generate := func() (string, error) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(seed), nil
	}
	parse := func(s string) error { _, err := parseAuditSeed(s); return err }
	content, err := a.keyFile(path, "audit signing key", mode, generate, parse, nil,
		"it signs audit checkpoints; keep the verifier key that audit export prints off this machine")
	if err != nil || content == "" {
		return nil, err
	}
	return parseAuditSeed(content)
}

// parseAuditSeed reads a base64 Ed25519 seed (32 bytes). The error never quotes the input.
func parseAuditSeed(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if seed, err := enc.DecodeString(s); err == nil {
			if len(seed) != ed25519.SeedSize {
				return nil, fmt.Errorf("is %d bytes, want the base64 of a %d-byte Ed25519 seed", len(seed), ed25519.SeedSize)
			}
			return ed25519.NewKeyFromSeed(seed), nil
		}
	}
	return nil, errors.New("is not base64 (want the base64 of a 32-byte Ed25519 seed)")
}

// keyFile reads the key file at path, or creates it (mode 0600, O_EXCL so that two processes
// starting together cannot both write one) with generate's content. It logs and tells stdout the
// path of a new file, never its content; it warns when an existing file is readable by group or
// others. It returns "" when the file is missing and mode is keyOptional. mayCreate, when not
// nil, is asked before a file is created and may refuse with the error to report.
func (a *app) keyFile(path, what string, mode keyMode, generate func() (string, error), parse func(string) error,
	mayCreate func() error, why string) (string, error) {
	content, err := a.readKeyFile(path, what, parse)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return content, err
	}
	if mode == keyOptional {
		return "", nil
	}
	if mayCreate != nil {
		if err := mayCreate(); err != nil {
			// Another process may have created the database and its key file just now.
			if content, rerr := a.readKeyFile(path, what, parse); rerr == nil {
				return content, nil
			}
			return "", err
		}
	}
	content, err = generate()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it first: use theirs
		return a.readKeyFile(path, what, parse)
	}
	if err != nil {
		return "", fmt.Errorf("create %s file: %w", what, err)
	}
	_, err = io.WriteString(f, content+"\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // a half-written key file would stop every later start
		return "", fmt.Errorf("write %s file %s: %w", what, path, err)
	}
	syncDir(filepath.Dir(path))
	path = absPath(path)
	a.log.Info("created "+what+" file", "path", path)
	fmt.Fprintf(a.stdout, "Created %s file %s (mode 0600): %s.\n", what, path, why)
	return content, nil
}

// readKeyFile reads and checks an existing key file; a missing file gives an fs.ErrNotExist error.
func (a *app) readKeyFile(path, what string, parse func(string) error) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	content := strings.TrimSpace(string(b))
	if content == "" {
		return "", fmt.Errorf("%s file %s is empty: restore it from a backup", what, path)
	}
	if err := parse(content); err != nil {
		return "", fmt.Errorf("%s file %s is malformed: %v", what, path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		a.log.Warn(what+" file is readable by group or others; chmod 600 it", "path", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	return content, nil
}

// syncDir makes a new directory entry durable; failure is not fatal (the file itself is synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// absPath is path made absolute for messages, or path itself when that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// existingDatabase reports whether the SQLite database named by dsn exists with content: a
// non-empty database file or write-ahead log. A file it cannot inspect counts as existing. It
// returns the absolute path for messages.
func existingDatabase(dsn string) (string, bool) {
	path := dsn
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		if (err == nil && st.Size() > 0) || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
			return absPath(path), true
		}
	}
	return absPath(path), false
}
