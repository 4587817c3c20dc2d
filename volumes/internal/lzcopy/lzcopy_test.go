package lzcopy

import (
	"bytes"
	"testing"
)

// TestMatch compares every offset and length on a small buffer with a byte-by-byte copy, and
// checks that nothing past the buffer is touched.
func TestMatch(t *testing.T) {
	for size := 1; size < 40; size++ {
		for out := 1; out < size; out++ {
			for offset := 1; offset <= out; offset++ {
				for length := 1; out+length <= size; length++ {
					want := make([]byte, size+8)
					for i := range out {
						want[i] = byte(i*7 + 1)
					}
					got := bytes.Clone(want)
					for i := range length {
						want[out+i] = want[out+i-offset]
					}
					Match(got[:size], out, offset, length)
					if !bytes.Equal(got[:out+length], want[:out+length]) || !bytes.Equal(got[size:], want[size:]) {
						t.Fatalf("size %d out %d offset %d length %d: %v, want %v", size, out, offset, length, got, want)
					}
				}
			}
		}
	}
}

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
