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
	ipBucket        = 10 * time.Second
	ipBuckets       = 7 // the current bucket and six whole ones: at least the last 60 s
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
	// A sliding minute in 10-second buckets (the current one and six whole ones): it counts
	// the failures of the last 60 to 70 seconds, never fewer than the last minute's (a fixed minute window would let 29 failures
	// at the end of one minute and 29 more at the start of the next through).
	start := now.Truncate(ipBucket)
	shift := int(start.Sub(t.BucketStart) / ipBucket)
	switch {
	case t.BucketStart.IsZero() || shift >= ipBuckets || shift < 0: // idle a minute, or the clock went back
		t.Buckets = nil
	case shift > 0:
		t.Buckets = append(make([]int, shift), t.Buckets...)
	}
	t.BucketStart = start
	if len(t.Buckets) == 0 {
		t.Buckets = []int{0}
	}
	if len(t.Buckets) > ipBuckets {
		t.Buckets = t.Buckets[:ipBuckets]
	}
	t.Buckets[0]++
	total := 0
	for _, n := range t.Buckets {
		total += n
	}
	if total >= ipMaxFailures {
		t.BlockedUntil = now.Add(ipBlockDuration)
		t.Buckets = nil
		if err := al.add("ip.blocked", "ip", ip, map[string]any{
			"failures_per_minute": ipMaxFailures, "blocked_until": t.BlockedUntil.UTC().Format(time.RFC3339),
		}); err != nil {
			return err
		}
	}
	return tx.PutIPThrottle(t)
}
