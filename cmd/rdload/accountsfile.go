package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// An accounts file lets runs against the same server and database reuse the accounts an earlier
// run enrolled, so that a measurement after a server change takes seconds instead of the minutes
// of enrolling tens of thousands of accounts. It holds the accounts' TOTP secrets: it is written
// with mode 0600 and is meant for load-test databases only.

// accountsFileVersion is the "version" field of the file; another value is refused.
const accountsFileVersion = 1

type accountsFile struct {
	Version  int            `json:"version"`
	Target   string         `json:"target"` // the --url the accounts live behind
	Accounts []savedAccount `json:"accounts"`
}

// savedAccount is what the tool knows of one account between runs: see account.
type savedAccount struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	IP     string `json:"ip,omitempty"`
	Last   int64  `json:"last"`  // highest step the server may have consumed
	Fails  int    `json:"fails"` // upper bound of the server's consecutive-failure count
}

// loadAccounts reads path. It returns (nil, nil) when path does not exist: the run enrolls its
// accounts and saves them there. Accounts the last run retired (fails ≥ retireAfter) are left out.
func (l *loader) loadAccounts(path string) ([]*account, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	var f accountsFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != accountsFileVersion {
		return nil, fmt.Errorf("accounts file %s: not an rdload accounts file of version %d", path, accountsFileVersion)
	}
	if f.Target != l.cfg.base.String() {
		return nil, fmt.Errorf("accounts file %s: its accounts live behind %s, not %s", path, f.Target, l.cfg.base)
	}
	accounts := make([]*account, 0, len(f.Accounts))
	for i, s := range f.Accounts {
		if s.ID == "" || s.Secret == "" {
			return nil, fmt.Errorf("accounts file %s: account %d has no id or secret", path, i+1)
		}
		if s.Fails >= retireAfter {
			continue
		}
		accounts = append(accounts, &account{id: s.ID, verifyURL: l.accountURL(s.ID) + "/2fa/verify",
			ip: s.IP, secret: s.Secret, last: s.Last, fails: s.Fails})
	}
	if len(accounts) == 0 {
		return nil, fmt.Errorf("accounts file %s: no usable account", path)
	}
	return accounts, nil
}

// saveAccounts writes accounts to path with mode 0600, through a temporary file and a rename so
// that an interrupted write never leaves half a file.
func (l *loader) saveAccounts(path string, accounts []*account) error {
	f := accountsFile{Version: accountsFileVersion, Target: l.cfg.base.String(), Accounts: make([]savedAccount, len(accounts))}
	for i, a := range accounts {
		f.Accounts[i] = savedAccount{ID: a.id, Secret: a.secret, IP: a.ip, Last: a.last, Fails: a.fails}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rdload-accounts-*")
	if err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("accounts file: %w", err)
	}
	if err := tmp.Close(); err != nil { // CreateTemp made it 0600
		return fmt.Errorf("accounts file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	return nil
}
