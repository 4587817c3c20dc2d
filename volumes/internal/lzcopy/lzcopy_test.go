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
