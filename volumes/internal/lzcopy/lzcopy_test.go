package lzcopy

import (
	"bytes"
	"testing"
)

// TestWindowMatch compares every offset and length up to 40 bytes, at the window's start and at its
// end, with a byte-by-byte copy, and checks that it writes at most 7 bytes past the match.
func TestWindowMatch(t *testing.T) {
	var w Window
	fill := func(from, to int) {
		for i := from; i < to; i++ {
			w[i] = byte(i*7 + 1)
		}
	}
	fill(0, len(w))
	for _, base := range []int{0, WindowSize - 80} {
		for out := base + 1; out < base+80; out++ {
			for offset := 1; offset <= min(out, 40); offset++ {
				for length := 1; length <= 40 && out+length <= WindowSize; length++ {
					want := make([]byte, length)
					for i := range want {
						if i < offset {
							want[i] = w[out-offset+i]
						} else {
							want[i] = want[i-offset]
						}
					}
					w.Match(out, offset, length)
					if !bytes.Equal(w[out:out+length], want) {
						t.Fatalf("out %d offset %d length %d: %v, want %v", out, offset, length, w[out:out+length], want)
					}
					for i := out + length + 7; i < len(w) && i < out+length+16; i++ {
						if w[i] != byte(i*7+1) {
							t.Fatalf("out %d offset %d length %d: wrote byte %d", out, offset, length, i)
						}
					}
					fill(out, min(out+length+8, len(w)))
				}
			}
		}
	}
}
