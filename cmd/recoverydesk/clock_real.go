//go:build !rdtest

package main

import (
	"net/http"
	"time"
)

// newClock returns the clock every part of serve reads: the real one. A binary built with the
// rdtest tag has a clock the acceptance tests can move instead (clock_rdtest.go); this build has
// no such control and mounts nothing.
func newClock(getenv func(string) string) (now func() time.Time, control http.Handler, err error) {
	return time.Now, nil, nil
}
