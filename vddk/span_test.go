package vddk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Every range FileSpan maps reads, from that file at that offset, the same bytes as ReadAt.
func TestFileSpan(t *testing.T) {
	for _, name := range []string{"mono-sparse.vmdk", "mono-flat.vmdk", "chain-child2.vmdk", "split-sparse.vmdk", "custom.vmdk", "stream.vmdk"} {
		d, err := Open(fixture(t, name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 3))
		mapped := 0
		for i := range 3000 {
			n := int64(1 + r.IntN(300000))
			off := r.Int64N(max(1, d.Size()-n))
			if i%2 == 0 && name == "split-sparse.vmdk" {
				off, n = 1<<30+r.Int64N(50000), 1+r.Int64N(40000) // its data: 100 KiB at 1 GiB
			}
			f, fo, ok := d.FileSpan(off, n)
			if !ok {
				continue
			}
			mapped++
			want := make([]byte, n)
			got := make([]byte, n)
			d.ReadAt(want, off)
			if _, err := f.ReadAt(got, fo); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: span of %d bytes at %d maps to %s at %d, which reads differently (%v)", name, n, off, f.Name(), fo, err)
			}
		}
		if name == "stream.vmdk" && mapped != 0 {
			t.Errorf("compressed grains were mapped to the file")
		}
		if name != "stream.vmdk" && mapped == 0 {
			t.Errorf("%s: no range was mapped", name)
		}
		d.Close()
	}
}
