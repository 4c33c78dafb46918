package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options configure a Service. Keys is required; Now defaults to time.Now.
type Options struct {
	Now    func() time.Time
	Keys   *Keyring
	Issuer string // shown in authenticator apps; default "RecoveryDesk"
	// StaticAPIKeys are keys from configuration (name → key, each ≥ 32 characters) accepted
	// besides the ones stored in the database.
	StaticAPIKeys map[string]string
	// BaseURL is the public URL that links in notices start with (veto, re-enrollment, agent
	// setup), without a trailing slash.
	BaseURL string
	// HostWebhook says the host platform's webhook is configured: only then are its events
	// (reset.executed, hold.set, factor.suspended, factor.enrolled) queued in the outbox.
	HostWebhook bool
	// Policy is the recovery policy; nil means DefaultPolicy().
	Policy *Policy
	// Observer, when set, hears outcomes (code checks, throttles, suspensions, failed
	// deliveries) after their transactions commit; see Observer. nil observes nothing.
	Observer Observer
}

// Service is the domain's entry point. Adapters call it; it decides and the store persists.
type Service struct {
	store      Store
	now        func() time.Time
	keys       *Keyring
	issuer     string
	staticKeys []staticKey
	keyCache   keyCache
	baseURL    string
	webhook    bool
	policy     *Policy
	observer   Observer
}

// New builds a Service over store.
func New(store Store, opts Options) (*Service, error) {
	if store == nil {
		return nil, errors.New("recovery: nil store")
	}
	if opts.Keys == nil {
		return nil, errors.New("recovery: a keyring is required to seal secrets")
	}
	s := &Service{store: observeStore(store, opts.Observer), now: opts.Now, keys: opts.Keys, issuer: opts.Issuer,
		baseURL: strings.TrimRight(opts.BaseURL, "/"), webhook: opts.HostWebhook, observer: opts.Observer}
	if s.now == nil {
		s.now = time.Now
	}
	if s.policy = opts.Policy; s.policy == nil {
		p, err := LoadDefaultPolicy()
		if err != nil {
			return nil, fmt.Errorf("recovery: the embedded policy: %w", err)
		}
		s.policy = p
	}
	if s.issuer == "" {
		s.issuer = "RecoveryDesk"
	}
	for name, key := range opts.StaticAPIKeys {
		if err := checkStaticKey(name, key); err != nil {
			return nil, fmt.Errorf("recovery: a configured API key: %w", err)
		}
		s.staticKeys = append(s.staticKeys, newStaticKey(name, key))
	}
	return s, nil
}

// Ready reports whether the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// update runs fn in a write transaction and returns refusal — an answer decided and recorded
// inside the transaction — only after the commit, so that the record and the counters it changed
// survive (security.md rule 9).
func (s *Service) update(ctx context.Context, fn func(tx Tx) (refusal error, err error)) error {
	var refusal error
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		refusal, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	return refusal
}
