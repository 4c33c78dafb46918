package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// An audit checkpoint is a signed note (golang.org/x/mod/sumdb/note) whose text is
//
//	recoverydesk audit
//	<event count>
//	<head hash, lowercase hex>
//
// signed with Ed25519 by the audit key under the key name below. Kept off the machine with the
// verifier key, it lets `audit verify --checkpoint` tell a truncated or rewritten tail from a
// chain that merely grew.
// The text is recovery.Checkpoint's MarshalText; only the signing lives here (x/mod stays out of
// the domain).
const auditKeyName = "recoverydesk-audit"

// auditSigner returns the note signer for the audit key and its verifier key (public), in the
// "<name>+<hash>+<base64(0x01 ‖ key)>" form of note.NewVerifier.
func auditSigner(priv ed25519.PrivateKey) (note.Signer, string, error) {
	vkey, err := note.NewEd25519VerifierKey(auditKeyName, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", err
	}
	// The signer key shares the verifier key's name and hash; its key is 0x01 (Ed25519) ‖ seed,
	// the form note.GenerateKey writes.
	parts := strings.SplitN(vkey, "+", 3)
	skey := "PRIVATE+KEY+" + auditKeyName + "+" + parts[1] + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", err
	}
	return signer, vkey, nil
}

// auditVerifierKey is the public verifier key of an audit key.
func auditVerifierKey(priv ed25519.PrivateKey) (string, error) {
	_, vkey, err := auditSigner(priv)
	return vkey, err
}

// signCheckpoint returns the signed note for cp and the verifier key that checks it.
func signCheckpoint(priv ed25519.PrivateKey, cp recovery.Checkpoint) (signed []byte, vkey string, err error) {
	signer, vkey, err := auditSigner(priv)
	if err != nil {
		return nil, "", err
	}
	text, err := cp.MarshalText()
	if err != nil {
		return nil, "", err
	}
	signed, err = note.Sign(&note.Note{Text: string(text)}, signer)
	return signed, vkey, err
}

// openCheckpoint checks the signature of a checkpoint with the verifier key vkey and parses it.
// Errors say why it is refused: another key, a bad signature, or not a checkpoint at all.
func openCheckpoint(data []byte, vkey string) (recovery.Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		// Never quote it: a private key passed here by mistake must not reach the terminal.
		return recovery.Checkpoint{}, fmt.Errorf("the verifier key is malformed (%v): pass the verifier key that audit export printed", err)
	}
	n, err := note.Open(data, note.VerifierList(v))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		var by []string
		for _, s := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return recovery.Checkpoint{}, fmt.Errorf("not signed by the audit key %s (signed by %s): refused",
			vkey, strings.Join(by, ", "))
	case errors.As(err, &invalid):
		return recovery.Checkpoint{}, errors.New("the signature does not verify: the checkpoint was altered or forged")
	case err != nil:
		return recovery.Checkpoint{}, fmt.Errorf("not a signed checkpoint: %v", err)
	}
	var cp recovery.Checkpoint
	if err := cp.UnmarshalText([]byte(n.Text)); err != nil {
		return recovery.Checkpoint{}, err
	}
	return cp, nil
}
