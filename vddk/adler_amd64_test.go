package vddk

import (
	"bytes"
	"hash/adler32"
	"math/rand/v2"
	"testing"
)

// The assembly continues from any checksum: starting where the standard library left off, after a
// random prefix or one that leaves both halves at their largest, it reaches the standard library's
// checksum of the whole, over all-0xff data through several chunks (the largest sums).
func TestAdler32AVX2Continues(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 on this machine")
	}
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	ff := bytes.Repeat([]byte{0xff}, 3*65536+64)
	// 0xfff0fff0 is s1 = s2 = 65520; the generic code (checked against the standard library above)
	// gives the expected result, since no prefix is at hand that produces that state.
	for _, adler := range []uint32{1, 0, 0xfff0fff0, 0xfff00001, 0x0001fff0} {
		for _, n := range []int{64, 65536, 65536 + 64, len(ff)} {
			if got, want := adler32AVX2Blocks(adler, ff[:n]), adler32Update(adler, ff[:n]); got != want {
				t.Errorf("from %#x over %d bytes of 0xff: %#x, want %#x", adler, n, got, want)
			}
		}
	}
	for range 100 {
		k := r.IntN(len(data) / 2)
		n := r.IntN(len(data)-k) &^ 63
		if got, want := adler32AVX2Blocks(adler32.Checksum(data[:k]), data[k:k+n]), adler32.Checksum(data[:k+n]); got != want {
			t.Fatalf("%d bytes after a %d-byte prefix: %#x, want %#x", n, k, got, want)
		}
	}
}
