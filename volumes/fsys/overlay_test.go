package fsys

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestOverlayReads checks the overlay against a copy of the base with the patches applied, for reads
// of every alignment, including reads that start inside a patch and end past the volume.
func TestOverlayReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := make([]byte, 64<<10)
	src := make([]byte, 32<<10)
	for i := range base {
		base[i] = byte(rng.IntN(256))
	}
	for i := range src {
		src[i] = byte(rng.IntN(256))
	}
	want := append([]byte(nil), base...)
	var ps []Patch
	for off := int64(100); off+700 < int64(len(base)); off += 1000 + int64(rng.IntN(3000)) {
		n := int64(1 + rng.IntN(700))
		so := int64(rng.IntN(len(src) - 700))
		ps = append(ps, Patch{Off: off, Len: n, Src: bytes.NewReader(src), SrcOff: so})
		copy(want[off:off+n], src[so:so+n])
	}
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	o, err := NewOverlay(bytes.NewReader(base), int64(len(base)), ps)
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		off := rng.Int64N(int64(len(base)) + 10)
		buf := make([]byte, rng.IntN(9000))
		n, err := o.ReadAt(buf, off)
		end := min(off+int64(len(buf)), int64(len(base)))
		if off >= int64(len(base)) {
			if n != 0 || err != io.EOF {
				t.Fatalf("read at %d past the end: %d, %v", off, n, err)
			}
			continue
		}
		if int64(n) != end-off || (end < off+int64(len(buf))) != (err == io.EOF) || err != nil && err != io.EOF {
			t.Fatalf("read of %d at %d: %d, %v", len(buf), off, n, err)
		}
		if !bytes.Equal(buf[:n], want[off:end]) {
			t.Fatalf("read of %d at %d differs from the patched copy", len(buf), off)
		}
	}
}

// TestOverlayRefusesBadPatches: overlapping patches or patches past the volume are refused.
func TestOverlayRefusesBadPatches(t *testing.T) {
	r := bytes.NewReader(make([]byte, 100))
	for _, ps := range [][]Patch{
		{{Off: 0, Len: 10, Src: r}, {Off: 5, Len: 10, Src: r}},
		{{Off: 95, Len: 10, Src: r}},
		{{Off: -1, Len: 2, Src: r}},
		{{Off: 0, Len: 0, Src: r}},
	} {
		if _, err := NewOverlay(r, 100, ps); err == nil {
			t.Errorf("patches %v accepted", ps)
		}
	}
}
