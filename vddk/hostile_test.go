package vddk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/internal/memlimit"
)

// Bounds of one hostile case: wall time, and bytes allocated (TotalAlloc) by Open and the reads.
const (
	hostileCaseTimeout = 10 * time.Second
	hostileCaseAlloc   = 32 << 20 // the largest case takes 4 MiB
)

// The hostile-image suite: every single-file image kind, truncated at every sector boundary of its
// metadata and at each structure's start and end, and with every bit of its header flipped. Each case
// must give a clear error (with a VixDiskLib code) or a bounded result, never a panic, within a time
// limit, and without allocating more than a fixed budget.
func TestHostileImages(t *testing.T) {
	defer memlimit.ReportChildPeak()
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
	var maxAlloc uint64
	var maxAllocCase string
	host, _ := os.ReadFile("/etc/passwd")
	hostMark := host[:min(len(host), 48)]
	hung := false
	try := func(name string, b []byte) {
		cases++
		if hung {
			return
		}
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("panic: %v\n%s", r, debug.Stack())
					}
				}()
				d, err := Open(p, Options{})
				if err != nil {
					if CodeOf(err) == ErrFail {
						t.Errorf("error without a code: %v", err)
					}
					t.Log(err)
					return
				}
				opened++
				defer d.Close()
				buf := make([]byte, 64<<10)
				for _, off := range []int64{0, d.Size() / 3, d.Size() - int64(len(buf))} {
					n, _ := d.ReadAt(buf, max(0, off))
					if len(hostMark) >= 16 && bytes.Contains(buf[:n], hostMark) {
						t.Errorf("read the host's /etc/passwd at %d", off)
					}
				}
				d.AllocatedBlocks(0, uint64(min(d.Size(), 256<<20)/SectorSize), 128)
			}()
			select {
			case <-done:
			case <-time.After(hostileCaseTimeout):
				hung = true
				t.Fatalf("no result after %v (a hang or a loop)", hostileCaseTimeout)
			}
			runtime.ReadMemStats(&after)
			a := after.TotalAlloc - before.TotalAlloc
			if a > hostileCaseAlloc {
				t.Errorf("allocated %d MiB (bound %d MiB)", a>>20, hostileCaseAlloc>>20)
			}
			if a > maxAlloc {
				maxAlloc, maxAllocCase = a, name
			}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(images)) {
		img := images[name]
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
		for _, c := range slices.Sorted(maps.Keys(cuts)) {
			try(fmt.Sprintf("%s/truncate@%d", name, c), img[:c])
		}
		// Bit flips over the header fields (the first 128 bytes hold every field of every kind; the rest of
		// a header is padding). The large fixtures only get truncated.
		if len(img) > 256<<10 {
			continue
		}
		for bit := 0; bit < min(len(img), 128)*8; bit++ {
			b := append([]byte{}, img...)
			b[bit/8] ^= 1 << (bit % 8)
			try(fmt.Sprintf("%s/flip-byte%d-bit%d", name, bit/8, bit%8), b)
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
					try(fmt.Sprintf("%s/field%d=%#x", name, f.off, v), b)
				}
			}
		}
	}
	// Grain directories and tables of the monolithic sparse images (not streams: their tables are
	// rebuilt from markers) pointing past the end, into the header and descriptor, at each other, and
	// at the same grain; the primary and the redundant copy alike, so neither saves the case.
	for _, name := range []string{"kdmv-plain", "kdmv-zeroed", "kdmv-v3", "mono-sparse.vmdk"} {
		img := images[name]
		h, err := parseSparseHeader(img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		le := binary.LittleEndian
		fileSectors := uint64(len(img) / SectorSize)
		gds := []uint64{h.GDOffset, h.RGDOffset}
		gt0 := uint64(le.Uint32(img[h.GDOffset*SectorSize:]))
		gt1 := uint64(le.Uint32(img[h.GDOffset*SectorSize+4:]))
		targets := map[string]uint64{"zero": 0, "sector1": 1, "descriptor": h.DescOffset,
			"gd": h.GDOffset, "rgd": h.RGDOffset, "past-end": fileSectors + 8, "last-sector": fileSectors - 1,
			"max": 0xffffffff, "gt1": gt1}
		for _, what := range slices.Sorted(maps.Keys(targets)) {
			v := targets[what]
			for _, gte := range []int{0, 1} {
				// A grain directory entry.
				b := append([]byte{}, img...)
				for _, gd := range gds {
					le.PutUint32(b[gd*SectorSize+uint64(4*gte):], uint32(v))
				}
				try(fmt.Sprintf("%s/gd-entry%d=%s", name, gte, what), b)
				// A grain table entry of the first table (and of its redundant copy).
				b = append([]byte{}, img...)
				for i, gd := range gds {
					gt := uint64(le.Uint32(img[gd*SectorSize:]))
					if gt == 0 || (gt+1)*SectorSize > uint64(len(b)) {
						if i == 0 {
							t.Fatalf("%s: the first grain table is at sector %d", name, gt)
						}
						continue
					}
					le.PutUint32(b[gt*SectorSize+uint64(4*gte):], uint32(v))
				}
				try(fmt.Sprintf("%s/gt0-entry%d=%s", name, gte, what), b)
			}
		}
		// Overlaps: both directory entries naming one table, and every entry of a table naming one grain.
		b := append([]byte{}, img...)
		for _, gd := range gds {
			le.PutUint32(b[gd*SectorSize+4:], uint32(gt0))
		}
		try(name+"/gd-entries-share-a-table", b)
		b = append([]byte{}, img...)
		first := le.Uint32(img[gt0*SectorSize:])
		for i := uint64(0); i < uint64(h.NumGTEsPerGT); i++ {
			le.PutUint32(b[gt0*SectorSize+4*i:], first+1)
		}
		try(name+"/gt0-all-entries-one-grain", b)
	}
	// Embedded descriptors naming host files, a device, a folder above, the image itself as its own
	// extent or parent, and sizes past 2^63: the sparse header stays valid, so the descriptor parser and
	// the path confinement are what must refuse them.
	mono := images["mono-sparse.vmdk"]
	h, _ := parseSparseHeader(mono)
	head := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n"
	for _, d := range []struct{ name, text string }{
		{"extent-etc-passwd", head + `RW 8 FLAT "/etc/passwd" 0`},
		{"extent-dev-sda", head + `RW 8 FLAT "/dev/sda" 0`},
		{"extent-dotdot", head + `RW 8 FLAT "../../../../etc/passwd" 0`},
		{"extent-proc-self-mem", head + `RW 8 FLAT "/proc/self/mem" 0`},
		{"extent-itself", head + `RW 256 SPARSE "hostile.vmdk"`},
		{"extent-itself-flat", head + `RW 256 FLAT "hostile.vmdk" 0`},
		{"size-2^64", head + `RW 18446744073709551616 SPARSE "hostile.vmdk"`},
		{"size-2^63-1-zero", head + `RW 9223372036854775807 ZERO`},
		{"offset-2^63", head + `RW 8 FLAT "hostile.vmdk" 9223372036854775807`},
		{"many-extents", head + strings.Repeat("RW 1 ZERO\n", 100000)},
		{"parent-itself", strings.Replace(head, "parentCID=ffffffff", "parentCID=fffffffe\nparentFileNameHint=\"hostile.vmdk\"", 1) + `RW 256 SPARSE "hostile.vmdk"`},
		{"parent-etc-passwd", strings.Replace(head, "parentCID=ffffffff", "parentCID=00000001\nparentFileNameHint=\"/etc/passwd\"", 1) + `RW 256 SPARSE "hostile.vmdk"`},
		{"line-1MiB", head + strings.Repeat("x", 1<<20)},
	} {
		b := append([]byte{}, mono...)
		lo, hi := int(h.DescOffset)*SectorSize, int(h.DescOffset+h.DescSize)*SectorSize
		if hi <= lo || hi > len(b) {
			t.Fatalf("mono-sparse.vmdk has no embedded descriptor area (%d-%d)", lo, hi)
		}
		clear(b[lo:hi])
		text := d.text + "\n"
		if len(text) > hi-lo { // a descriptor larger than its area: the header says so too
			b = append(b[:lo], append([]byte(text), b[hi:]...)...)
			binary.LittleEndian.PutUint64(b[36:], uint64((len(text)+SectorSize-1)/SectorSize))
		} else {
			copy(b[lo:], text)
		}
		try("mono-sparse.vmdk/descriptor-"+d.name, b)
		// The same text as a descriptor file, where the extent names are followed.
		try("descriptor-file/"+d.name, []byte(strings.Replace(d.text, "monolithicSparse", "custom", 1)+"\n"))
	}
	if hung {
		t.Fatal("stopped after a hang: the cases after it were not tried")
	}
	t.Logf("%d hostile images tried, %d opened (and were read); most allocated by one case: %d MiB (%s)",
		cases, opened, maxAlloc>>20, maxAllocCase)
	if cases < 5000 || opened == 0 {
		t.Errorf("the suite tried %d cases and opened %d", cases, opened)
	}
}

// hostileMemoryLimit bounds the process running the whole suite (the race detector's shadow memory
// included).
const hostileMemoryLimit = 512 << 20

// TestHostileImagesUnderMemoryLimit runs TestHostileImages again in a child process held to
// hostileMemoryLimit (see memlimit.RunUnderMemoryLimit).
func TestHostileImagesUnderMemoryLimit(t *testing.T) {
	memlimit.RunUnderMemoryLimit(t, "TestHostileImages", hostileMemoryLimit, 5*time.Minute)
}
