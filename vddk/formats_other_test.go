package vddk

import "testing"

// otherFormatSamples are the VHD, VHDX and VDI samples of the hostile suite.
func otherFormatSamples(t testing.TB, dir string) []foreignSample {
	return nil
}
