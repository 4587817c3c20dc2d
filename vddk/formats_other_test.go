package vddk

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// otherFormatSamples are the VHD, VHDX and VDI samples of the hostile suite.
func otherFormatSamples(t testing.TB, dir string) []foreignSample {
	return vhdSamples(t, dir)
}

// vhdSamples: a dynamic VHD, a fixed one, and a differencing one over a dynamic parent.
func vhdSamples(t testing.TB, dir string) []foreignSample {
	dyn := sampleImage(t, dir, "vhd-dynamic", "vpc", []string{"-o", "subformat=dynamic"}, "6M", "write -P 0x61 0 8k", "write -P 0x62 2100k 2k")
	fixed := sampleImage(t, dir, "vhd-fixed", "vpc", []string{"-o", "subformat=fixed"}, "64k", "write -P 0x61 0 8k")
	if err := os.WriteFile(filepath.Join(dir, "vhd-parent.vhd"), dyn, 0o644); err != nil {
		t.Fatal(err)
	}
	diff := diffVHD(dyn, "vhd-parent.vhd", 1<<20, []vhdWrite{{0, 8, 0x71}, {2048 + 5, 3, 0x72}, {4096, 2048, 0x73}})
	return []foreignSample{vhdSample("vhd-dynamic", dyn), vhdSample("vhd-fixed", fixed), vhdSample("vhd-diff", diff)}
}

func vhdSample(name string, img []byte) foreignSample {
	be := binary.BigEndian
	n := len(img)
	s := foreignSample{name: name, img: img, edges: []int{n - 512}, flips: [][2]int{{n - 512, n - 512 + 88}}}
	if be.Uint32(img[n-512+60:]) == 2 {
		return s
	}
	dh := int(be.Uint64(img[n-512+16:]))
	bat := int(be.Uint64(img[dh+16:]))
	s.edges = append(s.edges, 512, dh, dh+1024, bat, bat+4*int(be.Uint32(img[dh+28:])))
	s.flips = append(s.flips, [2]int{0, 88}, [2]int{dh, dh + 64})
	s.entries = []tableEntry{{n - 512 + 16, 8, true, "footer.dataOffset"}, {dh + 16, 8, true, "header.batOffset"},
		{dh + 28, 4, true, "header.maxEntries"}, {dh + 32, 4, true, "header.blockSize"}}
	for i := range 3 {
		s.entries = append(s.entries, tableEntry{bat + 4*i, 4, true, "BAT[" + string(rune('0'+i)) + "]"})
	}
	for i := range 2 {
		s.entries = append(s.entries, tableEntry{dh + 576 + 24*i + 8, 4, true, "locator.length"}, tableEntry{dh + 576 + 24*i + 16, 8, true, "locator.offset"})
	}
	// Checksums are recomputed, so that the damage reaches the fields' readers.
	s.fix = func(b []byte) {
		if len(b) < n || len(b) < dh+1024 {
			return
		}
		vhdChecksum(b[n-512:n], 64)
		copy(b[:512], b[n-512:n])
		vhdChecksum(b[dh:dh+1024], 36)
	}
	return s
}

func vhdChecksum(b []byte, field int) {
	binary.BigEndian.PutUint32(b[field:], 0)
	var sum uint32
	for _, c := range b {
		sum += uint32(c)
	}
	binary.BigEndian.PutUint32(b[field:], ^sum)
}

// vhdWrite is a run of sectors a crafted child holds, filled with one byte.
type vhdWrite struct {
	sector, count int64
	fill          byte
}

func utf16Bytes(s string, big bool) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		if big {
			b = binary.BigEndian.AppendUint16(b, c)
		} else {
			b = binary.LittleEndian.AppendUint16(b, c)
		}
	}
	return b
}

// diffVHD builds a differencing VHD over parent (a dynamic or fixed VHD's bytes, found as parentName
// beside it) from the format's facts, as Hyper-V lays one out: footer copy, dynamic header naming the
// parent by UUID, unicode name and W2ru/W2ku locators, BAT, locator data, blocks (sector bitmap then
// data), footer. Only the sectors of writes are marked present.
func diffVHD(parent []byte, parentName string, blockSize int64, writes []vhdWrite) []byte {
	be := binary.BigEndian
	pf := parent[len(parent)-512:]
	size := int64(be.Uint64(pf[48:]))
	entries := (size + blockSize - 1) / blockSize
	bitmap := (blockSize/512/8 + 511) &^ 511
	batOff := int64(1536)
	batBytes := (entries*4 + 511) &^ 511
	rel := utf16Bytes(`.\`+parentName, false)
	abs := utf16Bytes(`C:\VMs\`+parentName, false)
	locOff := batOff + batBytes
	dataOff := locOff + 2*512
	// Blocks in the order writes first touch them.
	bat := make([]uint32, entries)
	for i := range bat {
		bat[i] = 0xffffffff
	}
	var blocks []int64
	for _, w := range writes {
		for s := w.sector; s < w.sector+w.count; s++ {
			b := s * 512 / blockSize
			if bat[b] == 0xffffffff {
				bat[b] = uint32((dataOff + int64(len(blocks))*(bitmap+blockSize)) / 512)
				blocks = append(blocks, b)
			}
		}
	}
	total := dataOff + int64(len(blocks))*(bitmap+blockSize) + 512
	img := make([]byte, total)
	footer := make([]byte, 512)
	copy(footer, pf)
	be.PutUint64(footer[16:], 512)
	be.PutUint32(footer[60:], 4)
	r := rand.New(rand.NewPCG(uint64(len(parent)), uint64(blockSize)))
	for i := 68; i < 84; i++ {
		footer[i] = byte(r.Uint32())
	}
	footer[84] = 0
	vhdChecksum(footer, 64)
	copy(img, footer)
	copy(img[total-512:], footer)
	dh := img[512:1536]
	copy(dh, "cxsparse")
	be.PutUint64(dh[8:], ^uint64(0))
	be.PutUint64(dh[16:], uint64(batOff))
	be.PutUint32(dh[24:], 0x00010000)
	be.PutUint32(dh[28:], uint32(entries))
	be.PutUint32(dh[32:], uint32(blockSize))
	copy(dh[40:56], pf[68:84]) // the parent's UUID
	be.PutUint32(dh[56:], uint32(time.Now().Unix()-946684800))
	copy(dh[64:576], utf16Bytes(`C:\VMs\`+parentName, true))
	for i, l := range []struct {
		code uint32
		data []byte
	}{{0x57327275, rel}, {0x57326b75, abs}} {
		e := dh[576+24*i:]
		be.PutUint32(e, l.code)
		be.PutUint32(e[4:], 512)
		be.PutUint32(e[8:], uint32(len(l.data)))
		be.PutUint64(e[16:], uint64(locOff+int64(i)*512))
		copy(img[locOff+int64(i)*512:], l.data)
	}
	vhdChecksum(dh, 36)
	for i, v := range bat {
		be.PutUint32(img[batOff+int64(i)*4:], v)
	}
	for _, w := range writes {
		for s := w.sector; s < w.sector+w.count; s++ {
			b := s * 512 / blockSize
			start := int64(bat[b]) * 512
			in := s - b*blockSize/512
			img[start+in/8] |= 0x80 >> (in % 8)
			d := start + bitmap + in*512
			for k := range int64(512) {
				img[d+k] = w.fill
			}
		}
	}
	return img
}

// vhdimountRead mounts a VHD with libvhdi's vhdimount and returns the virtual disk's bytes: the last
// vhdiN file (vhdimount shows every layer of a chain, the base first).
func vhdimountRead(t *testing.T, path string) []byte {
	t.Helper()
	needTool(t, "vhdimount")
	mnt := t.TempDir()
	cmd := exec.Command("vhdimount", path, mnt)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vhdimount: %v\n%s", err, b)
	}
	defer exec.Command("fusermount", "-u", mnt).Run()
	var b []byte
	var err error
	for range 50 {
		names, _ := filepath.Glob(filepath.Join(mnt, "vhdi*"))
		if len(names) > 0 {
			slices.Sort(names)
			if b, err = os.ReadFile(names[len(names)-1]); err == nil {
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("reading vhdimount's files: %v", err)
	return nil
}

// A differencing VHD built from the format's facts reads as libvhdi's vhdimount reads it, and as the
// model says: the child's sectors where it holds them, the parent's elsewhere.
func TestVHDDifferencing(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 8<<20)
	parent := filepath.Join(dir, "parent.vhd")
	run(t, "qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic", src, parent)
	pb, err := os.ReadFile(parent)
	if err != nil {
		t.Fatal(err)
	}
	writes := []vhdWrite{{0, 8, 0x71}, {1000, 1, 0x72}, {4095, 2, 0x73}, {8192, 3000, 0x74}, {16383, 1, 0x75}}
	child := filepath.Join(dir, "child.vhd")
	if err := os.WriteFile(child, diffVHD(pb, "parent.vhd", 512<<10, writes), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(qemuRaw(t, parent))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		copy(want[w.sector*512:], bytes.Repeat([]byte{w.fill}, int(w.count*512)))
	}
	d, err := Open(child, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := len(d.Info().Chain); n != 2 {
		t.Fatalf("chain of %d links", n)
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[:len(got)]) || int64(len(want)) != d.Size() {
		t.Fatalf("differencing VHD differs from the model (size %d, want %d)", d.Size(), len(want))
	}
	if judge := vhdimountRead(t, child); !bytes.Equal(judge, got) {
		i := 0
		for i < min(len(got), len(judge)) && got[i] == judge[i] {
			i++
		}
		t.Fatalf("differencing VHD differs from vhdimount's reading (%d and %d bytes) from byte %d", len(got), len(judge), i)
	}
	// Concurrent random reads agree too.
	ref := filepath.Join(dir, "want.raw")
	if err := os.WriteFile(ref, want, 0o644); err != nil {
		t.Fatal(err)
	}
	rf, _ := os.Open(ref)
	defer rf.Close()
	compareReads(t, d, rf, int64(len(want)), 400, []int64{1000 * 512, 4096 * 512, 8192 * 512})

	// A parent that is another disk (its UUID differs) is refused; so is one that changed identity.
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	run(t, "qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic", src, filepath.Join(other, "parent.vhd"))
	b, _ := os.ReadFile(child)
	os.WriteFile(filepath.Join(other, "child.vhd"), b, 0o644)
	if _, err := Open(filepath.Join(other, "child.vhd"), Options{}); CodeOf(err) != ErrDiskCIDMismatch {
		t.Errorf("a parent with another UUID: %v", err)
	} else if !strings.Contains(err.Error(), "expects its parent") {
		t.Errorf("unclear: %v", err)
	}
}
