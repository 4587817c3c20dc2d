//go:build !race

package vddk

const raceOn = false
