package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/recoverydesk/recoverydesk/recovery"
	"github.com/recoverydesk/recoverydesk/recovery/sqlstore"
)

const auditHelp = `
Check and export the tamper-evident audit chain. Every state change appends an event whose hash
covers its content and the previous event's hash.

  recoverydesk audit verify [--checkpoint FILE]   walk the chain; name the first bad event
  recoverydesk audit export [--out FILE]          write the chain as JSONL and a signed checkpoint

Run 'recoverydesk audit COMMAND --help' for details.`

func (a *app) audit(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("audit", "audit: missing command: verify or export")
	}
	switch args[0] {
	case "verify":
		return a.auditVerify(ctx, args[1:])
	case "export":
		return a.auditExport(ctx, args[1:])
	}
	fs := a.command("audit", "audit verify|export [flags]", auditHelp)
	if err := a.parse(fs, "audit", args); err != nil {
		return err
	}
	return usagef("audit", "audit: unknown command %q: use verify or export", args[0])
}

const auditVerifyHelp = `
Walk the audit chain from the first event and check each event's sequence number, its link to
the previous event (prev_hash) and its own hash. Prints "ok: N events, head HASH" and exits 0,
or names the first bad sequence number and what is wrong there and exits 1.

A chain cut short at its end still verifies on its own. With --checkpoint FILE (written by
'audit export' and kept off this machine), verify also checks the checkpoint's signature and
that the chain still holds the events the checkpoint counted, ending in the hash it recorded:
a truncated or rewritten tail fails. The signature is checked with --verifier-key, or else
with the public half of the audit key (RECOVERYDESK_AUDIT_KEY or recoverydesk-audit.key).`

func (a *app) auditVerify(ctx context.Context, args []string) error {
	fs := a.command("audit verify", "audit verify [--checkpoint FILE [--verifier-key KEY]] [flags]", auditVerifyHelp)
	cpFile := fs.String("checkpoint", "", "signed checkpoint `FILE` written by 'audit export'")
	vkeyFlag := fs.String("verifier-key", "", "verifier `KEY` printed by 'audit export' (default: from the audit key)")
	pos, err := a.parseAll(fs, "audit verify", args)
	if err != nil {
		return err
	}
	if err := wantArgs("audit verify", pos); err != nil {
		return err
	}
	if *vkeyFlag != "" && *cpFile == "" {
		return usagef("audit verify", "audit verify: --verifier-key needs --checkpoint")
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	// The audit commands only read the chain: they neither migrate nor create the database (nor
	// a key file), and they need no master key (the chain holds no sealed value).
	if err := requireDatabase(cfg); err != nil {
		return err
	}
	// Read and check the checkpoint before the walk, so that a bad one fails fast.
	var cp *recovery.Checkpoint
	if *cpFile != "" {
		c, err := a.readCheckpoint(cfg, *cpFile, *vkeyFlag)
		if err != nil {
			return err
		}
		cp = &c
	}
	return a.withService(ctx, cfg, readOpen, func(o *opened) error {
		report, err := o.svc.VerifyAudit(ctx, func(n int64) {
			fmt.Fprintf(a.stderr, "audit verify: %d events checked so far\n", n)
		})
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		if !report.OK() {
			return brokenChain(report)
		}
		if cp != nil {
			hashAt := func(seq int64) (string, error) { return o.svc.AuditHash(ctx, seq) }
			if err := cp.Check(report, hashAt); err != nil {
				return fmt.Errorf("audit verify: checkpoint %s (%d events, head %s): %v", *cpFile, cp.Count, cp.Head, err)
			}
		}
		fmt.Fprintf(a.stdout, "ok: %s, head %s\n", events(report.Count), report.Head)
		if cp != nil {
			fmt.Fprintf(a.stdout, "checkpoint ok: the chain still holds the %s of %s (%d added since)\n",
				events(cp.Count), *cpFile, report.Count-cp.Count)
		}
		return nil
	})
}

// brokenChain is the error for a chain that failed at report.BadSeq.
func brokenChain(r recovery.ChainReport) error {
	return fmt.Errorf("audit chain broken at seq %d: %s; the %s before it verified", r.BadSeq, r.Problem, events(r.Count))
}

// events says "1 event" or "n events".
func events(n int64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

// readCheckpoint reads a checkpoint file and checks its signature with vkey, or with the public
// half of the configured audit key when vkey is "".
func (a *app) readCheckpoint(cfg *Config, file, vkey string) (recovery.Checkpoint, error) {
	if vkey == "" {
		priv, err := a.loadAuditKey(cfg, sqlstore.IsPostgres(cfg.DB), keyOptional)
		if err != nil {
			return recovery.Checkpoint{}, err
		}
		if priv == nil {
			return recovery.Checkpoint{}, errors.New("audit verify: no audit key to check the checkpoint with: " +
				"pass --verifier-key (printed by 'audit export') or set RECOVERYDESK_AUDIT_KEY")
		}
		if vkey, err = auditVerifierKey(priv); err != nil {
			return recovery.Checkpoint{}, err
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return recovery.Checkpoint{}, fmt.Errorf("audit verify: read checkpoint: %w", err)
	}
	cp, err := openCheckpoint(data, vkey)
	if err != nil {
		return recovery.Checkpoint{}, fmt.Errorf("audit verify: checkpoint %s: %v", file, err)
	}
	return cp, nil
}

const auditExportHelp = `
Write every audit event as one line of JSON (JSONL, canonical: sorted keys, no spaces) to
stdout or to --out FILE (mode 0600), verifying the chain as it goes; a broken chain is refused.

Also writes a checkpoint, a note signed with the audit key (Ed25519, the signed-note format of
golang.org/x/mod/sumdb/note) that records the event count and the head hash, to --checkpoint
FILE (default: FILE.checkpoint beside --out; without --out and --checkpoint, to stderr after
the line "Checkpoint (keep it off this machine):"), and prints the verifier key. Keep both off
this machine: 'audit verify --checkpoint FILE --verifier-key KEY' later proves that no event up
to the checkpoint was removed or rewritten.

The database must exist already; with SQLite and no RECOVERYDESK_AUDIT_KEY, the audit key file
recoverydesk-audit.key beside it is used (created when missing).`

func (a *app) auditExport(ctx context.Context, args []string) error {
	fs := a.command("audit export", "audit export [--out FILE] [--checkpoint FILE] [flags]", auditExportHelp)
	out := fs.String("out", "", "write the JSONL to `FILE` instead of stdout")
	cpFile := fs.String("checkpoint", "", "write the signed checkpoint to `FILE` (default: <out>.checkpoint, or stderr without --out)")
	pos, err := a.parseAll(fs, "audit export", args)
	if err != nil {
		return err
	}
	if err := wantArgs("audit export", pos); err != nil {
		return err
	}
	if *cpFile == "" && *out != "" {
		*cpFile = *out + ".checkpoint"
	}
	cfg, err := loadConfig(a.getenv, a.overlay)
	if err != nil {
		return err
	}
	// No key file is created beside a database that is not there.
	if err := requireDatabase(cfg); err != nil {
		return err
	}
	// The audit key is loaded (or, beside a SQLite database, created) before anything is written.
	signWith, err := a.loadAuditKey(cfg, sqlstore.IsPostgres(cfg.DB), keyCreate)
	if err != nil {
		return err
	}
	// Messages go to stdout unless stdout carries the JSONL.
	msg := a.stdout
	if *out == "" {
		msg = a.stderr
	}
	return a.withService(ctx, cfg, readOpen, func(o *opened) error {
		var report recovery.ChainReport
		export := func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 64<<10)
			var err error
			report, err = o.svc.ExportAudit(ctx, bw)
			if err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
			if !report.OK() {
				return brokenChain(report)
			}
			return bw.Flush()
		}
		if *out == "" {
			if err := export(a.stdout); err != nil {
				return err
			}
		} else {
			if err := writeFileAtomic(*out, export); err != nil {
				return err
			}
			fmt.Fprintf(msg, "Exported %s to %s (head %s).\n", events(report.Count), *out, report.Head)
		}
		cp := recovery.Checkpoint{Count: report.Count, Head: report.Head}
		signed, vkey, err := signCheckpoint(signWith, cp)
		if err != nil {
			return fmt.Errorf("audit export: sign checkpoint: %w", err)
		}
		file := *cpFile
		if file == "" {
			// The JSONL went to stdout and no file was named: the checkpoint goes to stderr, to be
			// saved off this machine.
			fmt.Fprintf(msg, "Checkpoint (keep it off this machine):\n%s", signed)
			file = "FILE"
			fmt.Fprintf(msg, "Save the checkpoint above (from its first line to its signature line) as FILE.\n")
		} else {
			if err := writeFileAtomic(file, func(w io.Writer) error { _, err := w.Write(signed); return err }); err != nil {
				return err
			}
			fmt.Fprintf(msg, "Checkpoint (%s, head %s) written to %s.\n", events(cp.Count), cp.Head, file)
		}
		fmt.Fprintf(msg, "Verifier key: %s\n", vkey)
		fmt.Fprintf(msg, "Keep the checkpoint and the verifier key off this machine. Check later with:\n"+
			"  recoverydesk audit verify --checkpoint %s --verifier-key %s\n", file, vkey)
		return nil
	})
}

// writeFileAtomic writes path (mode 0600) through a temporary file in the same directory that
// is synced and renamed into place only when write succeeds, so that a failed or interrupted
// export never leaves a partial file under the final name.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}
