//go:build rdtest

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// This file is compiled only with `-tags rdtest`: the acceptance, crash and scale-out tests build
// the binary that way to move its clock past a cooling-off or a link's expiry. A production build
// has no clock control at all (clock_real.go).

// testClockOffsetEnv starts the test clock this many seconds ahead of the real one (an integer
// ≥ 0), so that a restarted process goes on from where its predecessor's clock was.
const testClockOffsetEnv = "RECOVERYDESK_TEST_CLOCK_OFFSET"

// testClock is the real clock plus an offset that only grows: time never runs backwards for the
// domain, as it does not on a real machine whose clock is kept by NTP.
type testClock struct{ offset atomic.Int64 } // nanoseconds

func newClock(getenv func(string) string) (func() time.Time, http.Handler, error) {
	c := &testClock{}
	if v := getenv(testClockOffsetEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, nil, fmt.Errorf("%s: want a whole number of seconds ≥ 0", testClockOffsetEnv)
		}
		c.offset.Store(n * int64(time.Second))
	}
	return c.now, c, nil
}

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// clockState is the body of every answer of /test/clock.
type clockState struct {
	Now           time.Time `json:"now"`
	OffsetSeconds float64   `json:"offset_seconds"`
}

// ServeHTTP serves /test/clock to loopback clients only: GET reads the clock, POST with
// {"advance_seconds": n} (n > 0) moves it forward and answers the new time.
func (c *testClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackClient(r) {
		http.Error(w, "test clock: loopback clients only", http.StatusForbidden)
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var body struct {
			AdvanceSeconds float64 `json:"advance_seconds"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body); err != nil || body.AdvanceSeconds <= 0 {
			http.Error(w, `test clock: want {"advance_seconds": n} with n > 0`, http.StatusBadRequest)
			return
		}
		c.offset.Add(int64(body.AdvanceSeconds * float64(time.Second)))
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "test clock: GET or POST", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(clockState{Now: c.now().UTC(), OffsetSeconds: time.Duration(c.offset.Load()).Seconds()})
}
