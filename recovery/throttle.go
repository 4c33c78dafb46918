package recovery

import (
	"errors"
	"net/netip"
	"time"
)

// Throttling numbers (security.md).
const (
	backoffAfter    = 5 // the 5th consecutive failure starts the backoff
	backoffBase     = 30 * time.Second
	backoffCap      = time.Hour
	suspendAfter    = 20
	ipWindow        = time.Minute
	ipMaxFailures   = 30
	ipBlockDuration = 5 * time.Minute
)

// backoff is the wait after the n-th consecutive failure: none below 5, then 30 s doubling per
// further failure, at most an hour.
func backoff(n int) time.Duration {
	if n < backoffAfter {
		return 0
	}
	d := backoffBase
	for i := backoffAfter; i < n && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}

func throttled(until, now time.Time) error {
	return &ThrottledError{RetryAfter: until.Sub(now)}
}

// ipKey is what the per-IP limiter counts: an IPv4 address, or the /64 of an IPv6 address (one
// client usually holds a whole /64, so counting single IPv6 addresses would not limit it).
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// ipBlocked refuses an address that is in its five-minute block. ip "" is never limited.
func ipBlocked(tx ReadTx, ip string, now time.Time) (error, error) {
	if ip == "" {
		return nil, nil
	}
	t, err := tx.IPThrottle(ipKey(ip))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if now.Before(t.BlockedUntil) {
		return throttled(t.BlockedUntil, now), nil
	}
	return nil, nil
}

// countIPFailure adds a failed code to ip's one-minute window and blocks the address at 30.
func countIPFailure(tx Tx, al *auditLog, ip string, now time.Time) error {
	if ip == "" {
		return nil
	}
	ip = ipKey(ip)
	t, err := tx.IPThrottle(ip)
	if errors.Is(err, ErrNotFound) {
		t, err = IPThrottle{IP: ip}, nil
	}
	if err != nil {
		return err
	}
	// A sliding minute, estimated from aligned minute windows: the previous window's count
	// weighted by how much of it still lies within the last minute, plus the current count.
	// A fixed window alone would let 29 failures at the end of one minute and 29 more at the
	// start of the next through.
	start := now.Truncate(ipWindow)
	switch {
	case t.WindowStart.Equal(start):
	case t.WindowStart.Add(ipWindow).Equal(start):
		t.PrevFailures, t.Failures, t.WindowStart = t.Failures, 0, start
	default: // first failure, an idle gap of a minute or more, or a clock that went back
		t.PrevFailures, t.Failures, t.WindowStart = 0, 0, start
	}
	t.Failures++
	weight := 1 - float64(now.Sub(start))/float64(ipWindow)
	if float64(t.PrevFailures)*weight+float64(t.Failures) >= ipMaxFailures {
		t.BlockedUntil = now.Add(ipBlockDuration)
		t.PrevFailures, t.Failures = 0, 0
		if err := al.add("ip.blocked", "ip", ip, map[string]any{
			"failures_per_minute": ipMaxFailures, "blocked_until": t.BlockedUntil.UTC().Format(time.RFC3339),
		}); err != nil {
			return err
		}
	}
	return tx.PutIPThrottle(t)
}
