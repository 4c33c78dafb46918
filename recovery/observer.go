package recovery

import (
	"context"
	"encoding/json"
	"errors"
)

// Observer hears what the service did, for metrics. It is told only after the transaction that
// did it has committed (a rolled-back or retried transaction tells nothing), from the goroutine
// of the call that did it: its methods must be quick, must not block and must be safe for
// concurrent use. Every value it is given is one of the constants below or a fixed domain
// name (a purpose, a notice channel): never an account, a code, a token or an address, so a
// metrics adapter can use them as labels without unbounded cardinality or leaks.
//
// What it hears is derived from the audit events each transaction appended (the chain is the
// record; the observer is a tally of it), plus the refusals that are answered before a code is
// evaluated and so leave no event (a backoff or IP block in force, a suspended factor, no
// factor to check).
type Observer interface {
	// CodeChecked is one code attempt's outcome: factor is FactorTOTP or FactorRecoveryCode;
	// purpose is what the code was for (verify, step_up, confirm, move_confirm, sign_in,
	// regenerate, disable, move; PurposeOther for anything else); result is one of the Result
	// constants.
	CodeChecked(factor, purpose, result string)
	// ThrottleStarted is a failure that started (or lengthened) a backoff or block: scope is
	// ScopeTOTP or ScopeRecoveryCode (one account's counter) or ScopeIP (the per-address limiter).
	ThrottleStarted(scope string)
	// Suspended is a factor suspended by its counter (FactorTOTP or FactorRecoveryCode).
	Suspended(factor string)
	// DeliveryFailed is one failed delivery try of an outbox notice on channel (NoticeEmail,
	// NoticeTelegram, NoticeWebhook); outcome is DeliveryRetry, DeliveryDeferred or
	// DeliveryGivenUp.
	DeliveryFailed(channel, outcome string)
}

// Factors, results, throttle scopes and delivery outcomes an Observer is told.
const (
	FactorTOTP         = "totp"
	FactorRecoveryCode = "recovery_code"

	ResultOK          = "ok"
	ResultWrong       = "wrong"        // evaluated and wrong (counted)
	ResultReplayed    = "replayed"     // a valid code whose time step was already used (counted)
	ResultThrottled   = "throttled"    // refused unevaluated: a backoff or IP block holds (429)
	ResultSuspended   = "suspended"    // refused unevaluated: the factor is suspended (423)
	ResultNotEnrolled = "not_enrolled" // refused unevaluated: nothing to check the code against (409)

	ScopeTOTP         = "totp"
	ScopeRecoveryCode = "recovery_code"
	ScopeIP           = "ip"

	DeliveryRetry    = "retry"    // will be tried again after a backoff
	DeliveryDeferred = "deferred" // the receiver asked to wait (429 Retry-After); not counted as a try
	DeliveryGivenUp  = "given_up" // permanent refusal, or the last try

	PurposeOther = "other"
)

// codePurposes are the purposes the domain's code checks name; anything else is reported as
// PurposeOther, so the set stays fixed.
var codePurposes = map[string]bool{"verify": true, "step_up": true, "confirm": true, "move_confirm": true,
	"sign_in": true, "regenerate": true, "disable": true, "move": true}

func codePurpose(p string) string {
	if codePurposes[p] {
		return p
	}
	return PurposeOther
}

// observedStore is the store as a Service with an Observer sees it: each Update records the
// observations of the audit events it appends and hands them to the observer once the
// transaction has committed. Everything else passes through.
type observedStore struct {
	Store
	obs Observer
}

// observeStore wraps store when obs is set.
func observeStore(store Store, obs Observer) Store {
	if obs == nil {
		return store
	}
	return observedStore{Store: store, obs: obs}
}

func (s observedStore) Update(ctx context.Context, fn func(tx Tx) error) error {
	var appended []Event
	err := s.Store.Update(ctx, func(tx Tx) error {
		appended = appended[:0] // the adapter may run fn again after a serialization failure
		return fn(observingTx{Tx: tx, appended: &appended})
	})
	if err != nil {
		return err
	}
	// Decoded after the commit: with SQLite, fn runs in the one writer goroutine, whose time
	// every other write waits for.
	for _, e := range appended {
		for _, o := range observeEvent(e) {
			o(s.obs)
		}
	}
	return nil
}

// observation is one thing to tell the observer after the commit.
type observation func(Observer)

// observingTx notes the events appended through it.
type observingTx struct {
	Tx
	appended *[]Event
}

func (t observingTx) AppendAudit(e Event) error {
	if err := t.Tx.AppendAudit(e); err != nil {
		return err
	}
	*t.appended = append(*t.appended, e)
	return nil
}

// observeEvent translates an audit event into what it tells an observer (nothing for most).
func observeEvent(e Event) []observation {
	var d struct {
		Purpose      string `json:"purpose"`
		Reason       string `json:"reason"`
		BlockedUntil string `json:"blocked_until"`
		Channel      string `json:"channel"`
		Retry        bool   `json:"retry"`
		Deferred     bool   `json:"deferred"`
	}
	switch e.Action {
	case "totp.verified", "totp.failed", "recovery_code.used", "recovery_code.failed", "notice.failed":
		if json.Unmarshal(e.Details, &d) != nil {
			return nil
		}
	}
	checked := func(factor, purpose, result string) []observation {
		return []observation{func(o Observer) { o.CodeChecked(factor, codePurpose(purpose), result) }}
	}
	switch e.Action {
	case "totp.verified":
		return checked(FactorTOTP, d.Purpose, ResultOK)
	case "factor.enrolled": // a confirmation's success appends no totp.verified
		return checked(FactorTOTP, "confirm", ResultOK)
	case "factor.moved":
		return checked(FactorTOTP, "move_confirm", ResultOK)
	case "totp.failed":
		result := ResultWrong
		if d.Reason == "replayed" {
			result = ResultReplayed
		}
		out := checked(FactorTOTP, d.Purpose, result)
		if d.BlockedUntil != "" {
			out = append(out, func(o Observer) { o.ThrottleStarted(ScopeTOTP) })
		}
		return out
	case "recovery_code.used":
		return checked(FactorRecoveryCode, d.Purpose, ResultOK)
	case "recovery_code.failed":
		out := checked(FactorRecoveryCode, d.Purpose, ResultWrong)
		if d.BlockedUntil != "" {
			out = append(out, func(o Observer) { o.ThrottleStarted(ScopeRecoveryCode) })
		}
		return out
	case "factor.suspended":
		return []observation{func(o Observer) { o.Suspended(FactorTOTP) }}
	case "recovery_codes.suspended":
		return []observation{func(o Observer) { o.Suspended(FactorRecoveryCode) }}
	case "ip.blocked":
		return []observation{func(o Observer) { o.ThrottleStarted(ScopeIP) }}
	case "notice.failed":
		if !validChannel(d.Channel) {
			return nil
		}
		outcome := DeliveryGivenUp
		switch {
		case d.Deferred:
			outcome = DeliveryDeferred
		case d.Retry:
			outcome = DeliveryRetry
		}
		return []observation{func(o Observer) { o.DeliveryFailed(d.Channel, outcome) }}
	}
	return nil
}

// refused tells the observer about a code attempt that was refused before its code was
// evaluated, and returns err unchanged. Call it with the final error of an operation that
// checks a code, after its transaction: evaluated outcomes (ok, wrong, replayed) come from the
// audit events and are not reported here.
func (s *Service) refused(factor, purpose string, err error) error {
	if s.observer == nil || err == nil {
		return err
	}
	var result string
	switch {
	case errors.Is(err, ErrTooManyAttempts):
		result = ResultThrottled
	case errors.Is(err, ErrSuspended):
		result = ResultSuspended
	case errors.Is(err, ErrNotEnrolled):
		result = ResultNotEnrolled
	default:
		return err
	}
	s.observer.CodeChecked(factor, codePurpose(purpose), result)
	return err
}
