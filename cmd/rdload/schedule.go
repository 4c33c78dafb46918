package main

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/recoverydesk/recoverydesk/recovery"
)

// The pure parts of the method: which step a valid request may use, what a wrong code may be,
// how many accounts a run needs and how percentiles are read. They take the time and the code
// function as arguments so that the tests can drive them.

const (
	stepSeconds = 30

	// pastStepGuard: the code of step cur−1 is only used while the step boundary is further away
	// than this. A request sent just before the boundary reaches a server whose current step is
	// already cur+1, whose window no longer holds cur−1 (the server reads the same clock later).
	pastStepGuard = 3 * time.Second

	// assumedPerClientRPS sizes the default account count: the highest request rate one client
	// connection is expected to reach against a server on this kind of machine. A run that goes
	// faster runs out of usable codes, which the report shows as starved_pct (raise --accounts).
	assumedPerClientRPS = 200
)

// stepStart returns the time at which step begins.
func stepStart(step int64) time.Time { return time.Unix(step*stepSeconds, 0) }

// chooseStep returns the step whose code a valid request sent at now should carry, for an account
// whose highest possibly consumed step is last: the smallest step of the window cur−1..cur+1 that
// is greater than last (the server accepts only step > last_step), leaving out cur−1 when the step
// boundary is closer than pastStepGuard, and leaving out any step whose code equals the code of
// another step the server might try (cur−1..cur+2: its current step is cur or, after a boundary,
// cur+1), because the server would match that other step first and might consume it or refuse.
// ok is false when no step qualifies; the account then waits for the next step.
func chooseStep(now time.Time, last int64, code func(int64) string) (step int64, ok bool) {
	cur := recovery.Step(now)
	lo := cur - 1
	if stepStart(cur+1).Sub(now) < pastStepGuard {
		lo = cur
	}
	for st := max(lo, last+1); st <= cur+1; st++ {
		c := code(st)
		if c == "" {
			continue
		}
		if !codeElsewhere(c, st, cur, code) {
			return st, true
		}
	}
	return 0, false
}

// codeElsewhere reports whether c is also the code of a step other than except in cur−1..cur+2.
func codeElsewhere(c string, except, cur int64, code func(int64) string) bool {
	for x := cur - 1; x <= cur+2; x++ {
		if x != except && code(x) == c {
			return true
		}
	}
	return false
}

// availableFrom returns the first step at which an account whose last possibly consumed step is
// last can be given a valid code again, for an account that chooseStep refused at step cur.
// chooseStep can use cur+1 whenever last ≤ cur, so the account is usable again once the current
// step reaches last; if it was refused although last ≤ cur (colliding codes), the next step.
func availableFrom(last, cur int64) int64 { return max(last, cur+1) }

// wrongCode returns a 6-digit code that is none of the codes of steps cur−1..cur+2, so that it is
// wrong whether the server's current step is cur or cur+1 when it evaluates it. intn is a source
// of random numbers in [0, n).
func wrongCode(cur int64, code func(int64) string, intn func(int) int) string {
	var valid [4]string
	for i := range valid {
		valid[i] = code(cur - 1 + int64(i))
	}
	for {
		c := sixDigits(intn(1_000_000))
		if !slices.Contains(valid[:], c) {
			return c
		}
	}
}

// sixDigits formats n (0 ≤ n < 10⁶) with leading zeros.
func sixDigits(n int) string {
	s := strconv.Itoa(n)
	return "000000"[len(s):] + s
}

// codesPerAccount is how many valid codes one account is counted on to deliver during a verify
// phase of length d: two in the first step (the phase starts in a step after the account's
// confirmation step, so cur and cur+1 are unused), then one more at each step boundary crossed.
func codesPerAccount(d time.Duration) float64 {
	return 2 + math.Floor(d.Seconds()/stepSeconds)
}

// defaultAccounts is the account count used when --accounts is not given: enough accounts that,
// if every client reached assumedPerClientRPS, each account would be asked for no more valid
// codes than codesPerAccount (about two per 30 s window), and at least four accounts per client so
// that a client never waits for an account handed to another. Wrong codes need no extra
// accounts: each is followed on its account by a valid one.
func defaultAccounts(clients int, d time.Duration, validRatio float64) int {
	demand := float64(clients) * assumedPerClientRPS * d.Seconds() * validRatio
	n := int(math.Ceil(demand / codesPerAccount(d)))
	return max(n, 4*clients, 1)
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank method: the
// smallest value such that at least p % of the values are less than or equal to it. It returns 0
// for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// move is what the verify loop does next with an account.
type move int

const (
	moveWrong move = iota // send a wrong code
	moveValid             // send the valid code of the returned step
	movePark              // no usable step yet: park the account until there is one
)

// nextMove decides the next request for account a at now. A worker earns wrongShare of a wrong
// code per request in *credit and spends it only on an account whose last request succeeded,
// so no account ever has two failures in a row (the server's backoff starts at the 5th).
func nextMove(now time.Time, a *account, credit *float64, wrongShare float64) (move, int64) {
	c := *credit + wrongShare
	if c >= 1-1e-9 && a.fails == 0 {
		*credit = c - 1
		return moveWrong, 0
	}
	if st, ok := chooseStep(now, a.last, a.code); ok {
		*credit = min(c, creditCap)
		return moveValid, st
	}
	return movePark, 0
}
