package recovery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Purposes bind a sealed value to what it is, so a ciphertext moved to another field fails to open.
const (
	PurposeTOTPSecret = "totp-secret"
	PurposeFacts      = "facts"
)

// ErrUnseal means a sealed value could not be opened: unknown key id, wrong key, or a ciphertext
// moved to another account or purpose. It never says which, and never carries the value.
var ErrUnseal = errors.New("sealed value cannot be opened")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// Keyring seals with its first key and opens with any of them (rotation).
type Keyring struct {
	keys []sealKey
}

// NewKeyring builds a keyring from (id, 32-byte key) pairs; the first one seals.
func NewKeyring(ids []string, keys [][]byte) (*Keyring, error) {
	if len(ids) == 0 || len(ids) != len(keys) {
		return nil, errors.New("keyring: at least one key is needed")
	}
	k := &Keyring{}
	seen := map[string]bool{}
	for i, id := range ids {
		// Errors name keys by position only: an entry written the wrong way round would put
		// key material where the id belongs.
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("keyring: key %d: its id must be 1-32 letters, digits, _ or -", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("keyring: key %d: its id appears twice", i+1)
		}
		seen[id] = true
		if len(keys[i]) != 32 {
			return nil, fmt.Errorf("keyring: key %d is %d bytes, want 32 (AES-256)", i+1, len(keys[i]))
		}
		block, err := aes.NewCipher(keys[i])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, sealKey{id: id, aead: aead})
	}
	return k, nil
}

// ParseKeys reads RECOVERYDESK_KEYS: a comma list of id:base64(32 bytes). Errors name the
// entry by position and id, never its key material.
func ParseKeys(s string) (*Keyring, error) {
	var ids []string
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" || b64 == "" {
			return nil, fmt.Errorf("keys: entry %d is not id:base64", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if key, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("keys: entry %d is not valid base64", i+1)
			}
		}
		ids, keys = append(ids, id), append(keys, key)
	}
	return NewKeyring(ids, keys)
}

// FormatKey writes one key as id:base64, the form ParseKeys reads.
func FormatKey(id string, key []byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

// NewKey returns 32 random bytes.
func NewKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// SealingKeyID is the id of the key that seals.
func (k *Keyring) SealingKeyID() string { return k.keys[0].id }

func sealAAD(accountID, purpose string) []byte {
	return []byte("recoverydesk/seal/v1\x00" + accountID + "\x00" + purpose)
}

// Seal encrypts plaintext with AES-256-GCM under the first key, with a random 96-bit nonce and
// AAD binding it to accountID and purpose. The result is "<key id>:<base64(nonce‖ciphertext)>".
func (k *Keyring) Seal(plaintext []byte, accountID, purpose string) (string, error) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(plaintext)+key.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := key.aead.Seal(nonce, nonce, plaintext, sealAAD(accountID, purpose))
	return key.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed by Seal under any key of the ring.
func (k *Keyring) Open(sealed, accountID, purpose string) ([]byte, error) {
	id, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return nil, ErrUnseal
	}
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		// Strict, and no line breaks (which the decoder would skip): one sealed value has one
		// spelling.
		raw, err := base64.RawStdEncoding.Strict().DecodeString(b64)
		if err != nil || strings.ContainsAny(b64, "\r\n") || len(raw) < key.aead.NonceSize()+key.aead.Overhead() {
			return nil, ErrUnseal
		}
		n := key.aead.NonceSize()
		pt, err := key.aead.Open(nil, raw[:n], raw[n:], sealAAD(accountID, purpose))
		if err != nil {
			return nil, ErrUnseal
		}
		return pt, nil
	}
	return nil, ErrUnseal
}

// Has reports whether the ring holds a key with this id.
func (k *Keyring) Has(id string) bool {
	for _, key := range k.keys {
		if key.id == id {
			return true
		}
	}
	return false
}

// NeedsReseal reports whether sealed is under a key other than the sealing key.
func (k *Keyring) NeedsReseal(sealed string) bool {
	id, _, _ := strings.Cut(sealed, ":")
	return sealed != "" && id != k.keys[0].id
}
