//go:build !race

package vddk

import (
	"bytes"
	"compress/zlib"
	"math/rand/v2"
	"testing"
)

// Inflating a grain allocates nothing once the pool holds a decoder (the race detector makes
// sync.Pool drop items at random, hence the build tag).
func TestInflateIntoDoesNotAllocate(t *testing.T) {
	data := mixed(rand.New(rand.NewPCG(13, 14)), 64<<10)
	var b bytes.Buffer
	w, _ := zlib.NewWriterLevel(&b, 6)
	w.Write(data)
	w.Close()
	out := make([]byte, len(data))
	if n, err := inflateInto(out, b.Bytes()); err != nil || n != len(out) {
		t.Fatal(n, err)
	}
	if a := testing.AllocsPerRun(50, func() { inflateInto(out, b.Bytes()) }); a != 0 {
		t.Errorf("%.1f allocations per grain", a)
	}
}
