//go:build race

package vddk

// raceOn: the race detector slows each hostile case several times over; the suites of other formats
// then try a fixed sample of their cases (all of them run without it).
const raceOn = true
