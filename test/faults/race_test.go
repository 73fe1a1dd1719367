//go:build race

package faults

// raceEnabled: the worker binary is built with -race too.
const raceEnabled = true
