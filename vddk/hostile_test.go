package vddk

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// The hostile-image suite: every single-file image kind, truncated at every sector boundary of its
// metadata and at each structure's start and end, and with every bit of its header flipped. Each case
// must give a clear error (with a VixDiskLib code) or a bounded result, never a panic, within a time
// limit, and without allocating more than a fixed budget.
func TestHostileImages(t *testing.T) {
	dir := fuzzWorkDir(t)
	writeCOWD(t, filepath.Join(dir, "cowd"), 4096, 1, []esxGrainWrite{{grain: 0, data: make([]byte, 512)}, {grain: 4000, data: make([]byte, 512)}})
	writeSESparse(t, filepath.Join(dir, "se"), 4096, []esxGrainWrite{{grain: 1, data: make([]byte, 4096)}, {grain: 2, kind: 2}})
	images := map[string][]byte{}
	for _, v := range []string{"plain", "zeroed", "v3", "stream", "stream-nofooter"} {
		images["kdmv-"+v] = tinySparse(v)
	}
	for _, n := range []string{"cowd", "se"} {
		images[n], _ = os.ReadFile(filepath.Join(dir, n))
	}
	for _, n := range []string{"mono-sparse.vmdk", "stream.vmdk"} {
		images[n], _ = os.ReadFile(fixture(t, n))
	}
	p := filepath.Join(dir, "hostile.vmdk")
	cases, opened := 0, 0
	try := func(name string, b []byte) {
		cases++
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic: %v", name, r)
				}
			}()
			d, err := Open(p, Options{})
			if err != nil {
				if CodeOf(err) == ErrFail {
					t.Errorf("%s: error without a code: %v", name, err)
				}
				return
			}
			opened++
			defer d.Close()
			buf := make([]byte, 1<<20)
			for _, off := range []int64{0, d.Size() / 3, d.Size() - int64(len(buf))} {
				d.ReadAt(buf, max(0, off))
			}
			d.AllocatedBlocks(0, uint64(min(d.Size(), 256<<20)/SectorSize), 128)
		}()
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > 96<<20 {
			t.Errorf("%s: allocated %d MiB", name, a>>20)
		}
	}
	for name, img := range images {
		// Truncations: every sector of the first 64 KiB, and around each table the header names.
		cuts := map[int]bool{}
		for c := 0; c < min(len(img), 64<<10); c += SectorSize {
			cuts[c] = true
		}
		if len(img) >= 64 && binary.LittleEndian.Uint32(img) == sparseMagic {
			h, _ := parseSparseHeader(img)
			for _, s := range []uint64{h.DescOffset, h.RGDOffset, h.GDOffset, h.OverHead} {
				for _, d := range []int{-1, 0, 1, 4} {
					if c := int(s)*SectorSize + d*SectorSize; c > 0 && c < len(img) {
						cuts[c] = true
					}
				}
			}
		}
		cuts[len(img)-1] = true
		for c := range cuts {
			try(fmt.Sprintf("%s cut at %d", name, c), img[:c])
		}
		// Bit flips over the header fields (the first 128 bytes hold every field of every kind; the rest of
		// a header is padding). The large fixtures only get truncated.
		if len(img) > 256<<10 {
			continue
		}
		for bit := 0; bit < min(len(img), 128)*8; bit++ {
			b := append([]byte{}, img...)
			b[bit/8] ^= 1 << (bit % 8)
			try(fmt.Sprintf("%s bit %d flipped", name, bit), b)
		}
		// Hostile values in the fields that size things.
		if binary.LittleEndian.Uint32(img) == sparseMagic {
			for _, f := range []struct {
				off  int
				size int
			}{{12, 8}, {20, 8}, {28, 8}, {36, 8}, {44, 4}, {48, 8}, {56, 8}, {64, 8}} {
				for _, v := range []uint64{0, 1, 0x7fffffff, 0xffffffff, 1 << 40, 1<<63 - 1, ^uint64(0)} {
					b := append([]byte{}, img...)
					if f.size == 8 {
						binary.LittleEndian.PutUint64(b[f.off:], v)
					} else {
						binary.LittleEndian.PutUint32(b[f.off:], uint32(v))
					}
					try(fmt.Sprintf("%s field %d = %#x", name, f.off, v), b)
				}
			}
		}
	}
	t.Logf("%d hostile images tried, %d opened (and were read), none panicked", cases, opened)
	if cases < 5000 || opened == 0 {
		t.Errorf("the suite tried %d cases and opened %d", cases, opened)
	}
}
