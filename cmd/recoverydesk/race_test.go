//go:build race

package main

// raceEnabled says the tests were built with -race, so a binary they build should be too.
const raceEnabled = true
