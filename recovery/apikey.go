package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// API keys look like rdk_<16 hex id>_<43 base64url secret>: the id finds the row, the secret is
// compared by hash in constant time.
const apiKeyPrefix = "rdk_"

var apiKeyNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseStaticAPIKeys reads RECOVERYDESK_API_KEYS: a comma list of name=key. Errors name an entry
// by its position only, never by its name or key: an entry written the wrong way round
// (key=name) puts the key where the name belongs.
func ParseStaticAPIKeys(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	seen := map[string]int{} // name → entry number
	for i, part := range strings.Split(s, ",") {
		name, key, ok := strings.Cut(strings.TrimSpace(part), "=")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		if !ok || name == "" || key == "" {
			return nil, fmt.Errorf("entry %d is not name=key", i+1)
		}
		if err := checkStaticKey(name, key); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("entry %d has the same name as entry %d", i+1, j)
		}
		seen[name] = i + 1
		out[name] = key
	}
	return out, nil
}

// checkStaticKey is the rule for a configured key; its message quotes neither name nor key.
func checkStaticKey(name, key string) error {
	switch {
	case !apiKeyNamePattern.MatchString(name):
		return errors.New("name must be 1-64 letters, digits or . _ -")
	case len(key) < 32:
		return fmt.Errorf("key is %d characters, at least 32 are needed (the form is name=key)", len(key))
	case strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("key contains spaces or control characters")
	}
	return nil
}

type staticKey struct {
	name string
	sum  [32]byte
}

func newStaticKey(name, key string) staticKey {
	return staticKey{name: name, sum: sha256.Sum256([]byte(key))}
}

// CreateAPIKey stores a new key and returns it with its plaintext, which is shown once.
func (s *Service) CreateAPIKey(ctx context.Context, actor Actor, name string) (APIKey, string, error) {
	if !apiKeyNamePattern.MatchString(name) {
		return APIKey{}, "", invalidf("name must be 1-64 letters, digits or . _ -")
	}
	idRaw, secretRaw := make([]byte, 8), make([]byte, 32)
	if _, err := rand.Read(idRaw); err != nil {
		return APIKey{}, "", err
	}
	if _, err := rand.Read(secretRaw); err != nil {
		return APIKey{}, "", err
	}
	id, secret := hex.EncodeToString(idRaw), base64.RawURLEncoding.EncodeToString(secretRaw)
	now := s.now()
	k := APIKey{ID: id, Name: name, Hash: hashToken("apikey", secret), CreatedAt: now}
	err := s.update(ctx, func(tx Tx) (error, error) {
		if err := tx.PutAPIKey(k); err != nil {
			return nil, err
		}
		return nil, newAuditLog(tx, now, actor).add("apikey.created", "api_key", id, map[string]any{"name": name})
	})
	if err != nil {
		return APIKey{}, "", err
	}
	return k, apiKeyPrefix + id + "_" + secret, nil
}

// APIKeys lists the stored keys (hashes only).
func (s *Service) APIKeys(ctx context.Context) ([]APIKey, error) {
	var ks []APIKey
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		ks, err = tx.APIKeys()
		return err
	})
	return ks, err
}

// ErrAlreadyRevoked is returned (wrapping ErrConflict) for a key revoked before.
var ErrAlreadyRevoked = fmt.Errorf("%w: the API key was already revoked", ErrConflict)

// RevokeAPIKey ends a stored key by id and returns it. A key revoked before is left as it was
// and returned with ErrAlreadyRevoked.
func (s *Service) RevokeAPIKey(ctx context.Context, actor Actor, id string) (APIKey, error) {
	now := s.now()
	var out APIKey
	err := s.update(ctx, func(tx Tx) (error, error) {
		k, err := tx.APIKey(id)
		if err != nil {
			return nil, err
		}
		out = k
		if !k.RevokedAt.IsZero() {
			return ErrAlreadyRevoked, nil
		}
		k.RevokedAt = now
		if err := tx.PutAPIKey(k); err != nil {
			return nil, err
		}
		s.keyCache.forget()
		out = k
		return nil, newAuditLog(tx, now, actor).add("apikey.revoked", "api_key", id, map[string]any{"name": k.Name})
	})
	return out, err
}

// AuthenticateAPIKey returns the name of the key presented, or ErrUnauthorized.
func (s *Service) AuthenticateAPIKey(ctx context.Context, presented string) (string, error) {
	if presented == "" || len(presented) > 512 {
		return "", ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(presented))
	name := ""
	for _, k := range s.staticKeys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
			name = k.name
		}
	}
	if name != "" {
		return name, nil
	}
	rest, ok := strings.CutPrefix(presented, apiKeyPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 {
		return "", ErrUnauthorized
	}
	now := s.now()
	if name, ok := s.keyCache.get(sum, now); ok {
		return name, nil
	}
	var k APIKey
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		k, err = tx.APIKey(id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hashToken("apikey", secret))) != 1 || !k.RevokedAt.IsZero() {
		return "", ErrUnauthorized
	}
	s.keyCache.put(sum, k.Name, now)
	return k.Name, nil
}

// apiKeyCacheTTL is how long a stored key, once checked, is accepted without reading the
// database again: the host sends thousands of requests a second with one key, and a revocation
// (possibly by another process) takes effect within this time.
const apiKeyCacheTTL = 2 * time.Second

// keyCache remembers recently authenticated stored keys by the SHA-256 of the presented key.
type keyCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedKey
}

type cachedKey struct {
	name  string
	until time.Time
}

func (c *keyCache) get(sum [32]byte, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sum]
	if !ok || !now.Before(e.until) || now.Before(e.until.Add(-apiKeyCacheTTL)) {
		return "", false
	}
	return e.name, true
}

func (c *keyCache) put(sum [32]byte, name string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 1024 {
		c.m = make(map[[32]byte]cachedKey) // bounded: start over rather than grow
	}
	c.m[sum] = cachedKey{name: name, until: now.Add(apiKeyCacheTTL)}
}

// forget drops every cached key (after a revocation through this Service).
func (c *keyCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// CheckKeys fails when a sealed value in the store is under a key id the ring lacks: start-up
// must stop there rather than answer every verify of those accounts with an error.
func (s *Service) CheckKeys(ctx context.Context) error {
	var ids []string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		ids, err = tx.SealKeyIDs()
		return err
	})
	if err != nil {
		return err
	}
	var missing []string
	for _, id := range ids {
		if !s.keys.Has(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the database holds values sealed under key id(s) %s, which the configured keys lack", ErrMissingKey, strings.Join(missing, ", "))
	}
	return nil
}

// Reseal re-encrypts every sealed value that is not under the sealing key (after a key was added
// in front of RECOVERYDESK_KEYS) in one transaction, and reports how many it re-sealed.
func (s *Service) Reseal(ctx context.Context, actor Actor) (int, error) {
	now := s.now()
	n := 0
	err := s.update(ctx, func(tx Tx) (error, error) {
		n = 0
		reseal := func(v *string, accountID, purpose string) error {
			if !s.keys.NeedsReseal(*v) {
				return nil
			}
			pt, err := s.keys.Open(*v, accountID, purpose)
			if err != nil {
				return err
			}
			if *v, err = s.keys.Seal(pt, accountID, purpose); err != nil {
				return err
			}
			n++
			return nil
		}
		fs, err := tx.Factors()
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			before := n
			if err := reseal(&f.SecretSealed, f.AccountID, PurposeTOTPSecret); err != nil {
				return nil, err
			}
			if err := reseal(&f.PendingSealed, f.AccountID, PurposeTOTPSecret); err != nil {
				return nil, err
			}
			if n > before {
				if err := tx.PutFactor(f); err != nil {
					return nil, err
				}
			}
		}
		as, err := tx.Accounts()
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			before := n
			if err := reseal(&a.FactsSealed, a.ID, PurposeFacts); err != nil {
				return nil, err
			}
			if n > before {
				if err := tx.PutAccount(a); err != nil {
					return nil, err
				}
			}
		}
		// Queued notices still hold their sealed bodies (sent and failed ones are never opened
		// again).
		for before := int64(0); ; {
			ns, err := tx.Notices(NoticeFilter{State: NoticeQueued, BeforeID: before, Limit: 500})
			if err != nil {
				return nil, err
			}
			for _, nt := range ns {
				before = nt.ID
				was := n
				if err := reseal(&nt.Body, noticeAAD(nt.AccountID), noticePurpose(nt.Channel, nt.To)); err != nil {
					return nil, err
				}
				if n > was {
					if err := tx.ResealNotice(nt.ID, nt.Body); err != nil {
						return nil, err
					}
				}
			}
			if len(ns) < 500 {
				break
			}
		}
		return nil, newAuditLog(tx, now, actor).add("keys.resealed", "keyring", s.keys.SealingKeyID(), map[string]any{"resealed": n})
	})
	return n, err
}

// IssueReenrollToken is used by the recovery workflow (and tests) to create a re-enrollment link
// token for an account in the reset state; it returns the plaintext once.
func issueReenrollToken(tx Tx, accountID, ticketID string, now time.Time, ttl time.Duration) (string, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	return tok, tx.PutReenrollToken(ReenrollToken{Hash: hashToken("reenroll", tok), AccountID: accountID, TicketID: ticketID,
		CreatedAt: now, ExpiresAt: now.Add(ttl)})
}
