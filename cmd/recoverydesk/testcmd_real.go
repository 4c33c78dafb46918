//go:build !rdtest

package main

import "context"

// testCommand runs a command that exists only in a binary built with the rdtest tag (the crash
// test's workload, crashwork_rdtest.go). A production build has none: it reports false, and
// the name is an unknown command like any other.
func (a *app) testCommand(ctx context.Context, cmd string, args []string) (bool, error) {
	return false, nil
}
