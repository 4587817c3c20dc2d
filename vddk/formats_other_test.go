package vddk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
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
	return slices.Concat(vhdSamples(t, dir), vhdxSamples(t, dir), vdiSamples(t, dir))
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

// vhdxFix recomputes the CRC-32C of a VHDX structure (header or region table) in place.
func vhdxFix(b []byte) {
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// vhdxSamples: a dynamic VHDX, and one with a dirty log.
func vhdxSamples(t testing.TB, dir string) []foreignSample {
	dyn := sampleImage(t, dir, "vhdx-dynamic", "vhdx", []string{"-o", "block_size=1M"}, "4M", "write -P 0x61 0 8k", "write -P 0x62 2100k 2k")
	dirty, _ := dirtyVHDX(t, dyn)
	if err := os.WriteFile(filepath.Join(dir, "vhdx-parent.vhdx"), dyn, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := sampleImage(t, dir, "vhdx-empty", "vhdx", []string{"-o", "block_size=1M"}, "4M")
	diff := diffVHDX(t, empty, dyn, "vhdx-parent.vhdx", []vhdWrite{{0, 8, 0x71}, {2047, 2, 0x73}}, 1)
	return []foreignSample{vhdxSample("vhdx-dynamic", dyn), vhdxSample("vhdx-dirty", dirty), vhdxSample("vhdx-diff", diff)}
}

func vhdxSample(name string, img []byte) foreignSample {
	le := binary.LittleEndian
	s := foreignSample{name: name, img: img}
	if name == "vhdx-dynamic" { // the headers are the same in every sample; flipping one set is enough
		s.flips = [][2]int{{64 << 10, 64<<10 + 80}, {192 << 10, 192<<10 + 80}}
	}
	s.edges = []int{64 << 10, 128 << 10, 192 << 10, 256 << 10, 320 << 10, 1 << 20}
	rt := img[192<<10:]
	for i := range int(le.Uint32(rt[8:])) {
		e := 192<<10 + 16 + 32*i
		off := int(le.Uint64(img[e+16:]))
		s.edges = append(s.edges, off, off+int(le.Uint32(img[e+24:])))
		s.entries = append(s.entries, tableEntry{e + 16, 8, false, fmt.Sprintf("region%d.offset", i)}, tableEntry{e + 24, 4, false, fmt.Sprintf("region%d.length", i)})
		if [16]byte(img[e:e+16]) == [16]byte{0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42} {
			for j := range 3 {
				s.entries = append(s.entries, tableEntry{off + 8*j, 8, false, fmt.Sprintf("BAT[%d]", j)})
			}
		} else {
			for j := range 5 { // metadata item offsets and lengths
				s.entries = append(s.entries, tableEntry{off + 32 + 32*j + 16, 4, false, fmt.Sprintf("item%d.offset", j)}, tableEntry{off + 32 + 32*j + 20, 4, false, fmt.Sprintf("item%d.length", j)})
			}
		}
	}
	for _, h := range []int{64 << 10, 128 << 10} {
		s.entries = append(s.entries, tableEntry{h + 68, 4, false, "header.logLength"}, tableEntry{h + 72, 8, false, "header.logOffset"})
	}
	s.fix = func(b []byte) {
		for _, o := range []int{64 << 10, 128 << 10} {
			if len(b) >= o+4096 {
				vhdxFix(b[o : o+4096])
			}
		}
		for _, o := range []int{192 << 10, 256 << 10} {
			if len(b) >= o+65536 {
				vhdxFix(b[o : o+65536])
			}
		}
	}
	return s
}

// dirtyVHDX adds to a clean VHDX a log holding one entry, as Hyper-V leaves one when it stops before
// applying it: a 4 KiB data write over the first allocated block and a zero descriptor over 8 KiB
// of it, and the header naming the log. want says where the writes land in the file.
func dirtyVHDX(t testing.TB, clean []byte) (img []byte, writes map[int64][]byte) {
	le := binary.LittleEndian
	img = append([]byte{}, clean...)
	// The current header (higher sequence number) names the log region qemu reserved.
	h := 64 << 10
	if le.Uint64(img[128<<10+8:]) > le.Uint64(img[h+8:]) {
		h = 128 << 10
	}
	logOff := int64(le.Uint64(img[h+72:]))
	// The BAT's first payload entry: its block's file offset.
	var batOff int64
	for i := range int(le.Uint32(img[192<<10+8:])) {
		e := 192<<10 + 16 + 32*i
		if img[e] == 0x66 && img[e+1] == 0x77 {
			batOff = int64(le.Uint64(img[e+16:]))
		}
	}
	block := int64(le.Uint64(img[batOff:])>>20) << 20
	if block == 0 {
		t.Fatal("the sample's first block is not allocated")
	}
	data := bytes.Repeat([]byte("replayed!"), 4096/9+1)[:4096]
	guid := []byte("log-guid-16bytes")
	entry := make([]byte, 8192) // a descriptor sector and one data sector
	copy(entry, "loge")
	le.PutUint32(entry[8:], 8192)
	le.PutUint32(entry[12:], 0) // tail: this entry
	le.PutUint64(entry[16:], 7) // sequence number
	le.PutUint32(entry[24:], 2) // descriptors
	copy(entry[32:], guid)
	le.PutUint64(entry[48:], uint64(len(img)))
	le.PutUint64(entry[56:], uint64(len(img)))
	d := entry[64:]
	copy(d, "desc")
	copy(d[4:8], data[4092:])
	copy(d[8:16], data[:8])
	le.PutUint64(d[16:], uint64(block+4096))
	le.PutUint64(d[24:], 7)
	z := entry[96:]
	copy(z, "zero")
	le.PutUint64(z[8:], 8192)
	le.PutUint64(z[16:], uint64(block+16384))
	le.PutUint64(z[24:], 7)
	s := entry[4096:]
	copy(s, "data")
	le.PutUint32(s[4:], 0)
	copy(s[8:4092], data[8:4092])
	le.PutUint32(s[4092:], 7)
	le.PutUint32(entry[4:], crc32.Checksum(entry, crc32.MakeTable(crc32.Castagnoli)))
	copy(img[logOff:], entry)
	copy(img[h+48:h+64], guid)
	vhdxFix(img[h : h+4096])
	return img, map[int64][]byte{block + 4096: data, block + 16384: make([]byte, 8192)}
}

// A VHDX left with a dirty log reads as it will once the log is applied (qemu-img check -r all
// replays it into a copy, the judge), and the file itself is left as it was.
func TestVHDXDirtyLog(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 4<<20)
	clean := filepath.Join(dir, "clean.vhdx")
	run(t, "qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", src, clean)
	cb, _ := os.ReadFile(clean)
	img, _ := dirtyVHDX(t, cb)
	p := filepath.Join(dir, "dirty.vhdx")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	judge := filepath.Join(dir, "judge.vhdx")
	if err := os.WriteFile(judge, img, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "qemu-img", "check", "-r", "all", judge)
	ref, err := os.ReadFile(qemuRaw(t, judge))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ref, mustRead(t, src)) {
		t.Fatal("the judge's replay changed nothing: the crafted log is not one qemu applies")
	}
	d, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ref) {
		t.Fatal("the replayed VHDX differs from qemu's replay")
	}
	checkFileSpans(t, d, 4096, 4096)
	// CopyRaw into a file (which copies file ranges by sendfile where it can) sees the replay too.
	out := filepath.Join(dir, "copy.raw")
	of, _ := os.Create(out)
	if err := d.CopyRaw(of); err != nil {
		t.Fatal(err)
	}
	of.Close()
	if !bytes.Equal(mustRead(t, out), ref) {
		t.Fatal("CopyRaw of the replayed VHDX differs from qemu's replay")
	}
	if !strings.Contains(d.Info().Chain[0].Extents[0].Format, "log replayed") {
		t.Errorf("info does not say the log was replayed: %q", d.Info().Chain[0].Extents[0].Format)
	}
	if now, _ := os.ReadFile(p); !bytes.Equal(now, img) {
		t.Error("the dirty VHDX was written to")
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diffVDI builds a differencing VDI over parent (a VDI's bytes) from the format's facts: the parent's
// header with type 4, a new UUID, the parent's UUID as linkage, and a block map holding only blocks,
// each filled with one byte (0xfe entries: zero blocks).
func diffVDI(parent []byte, blocks map[int]byte, zero []int) []byte {
	le := binary.LittleEndian
	h := append([]byte{}, parent[:0x200]...)
	mapOff, dataOff := int(le.Uint32(h[0x154:])), int(le.Uint32(h[0x158:]))
	bs, n := int(le.Uint32(h[0x178:])), int(le.Uint32(h[0x180:]))
	le.PutUint32(h[0x4c:], 4)
	copy(h[0x1a8:0x1b8], parent[0x188:0x198])
	copy(h[0x188:0x198], "child-uuid-16byt")
	img := make([]byte, dataOff+len(blocks)*bs)
	copy(img, h)
	for i := range n {
		le.PutUint32(img[mapOff+4*i:], 0xffffffff)
	}
	for _, z := range zero {
		le.PutUint32(img[mapOff+4*z:], 0xfffffffe)
	}
	k := 0
	for _, b := range slices.Sorted(maps.Keys(blocks)) {
		le.PutUint32(img[mapOff+4*b:], uint32(k))
		copy(img[dataOff+k*bs:], bytes.Repeat([]byte{blocks[b]}, bs))
		k++
	}
	le.PutUint32(img[0x184:], uint32(k))
	return img
}

// A differencing VDI finds its parent among the folder's VDI files by UUID, whatever its name.
func TestVDIDifferencing(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 8<<20)
	parent := filepath.Join(dir, "some-name.vdi")
	run(t, "qemu-img", "convert", "-O", "vdi", src, parent)
	run(t, "qemu-img", "convert", "-O", "vdi", src, filepath.Join(dir, "decoy.vdi")) // another UUID
	pb := mustRead(t, parent)
	child := filepath.Join(dir, "child.vdi")
	if err := os.WriteFile(child, diffVDI(pb, map[int]byte{1: 0x41, 5: 0x42}, []int{3}), 0o644); err != nil {
		t.Fatal(err)
	}
	want := mustRead(t, qemuRaw(t, parent))
	copy(want[1<<20:], bytes.Repeat([]byte{0x41}, 1<<20))
	copy(want[5<<20:], bytes.Repeat([]byte{0x42}, 1<<20))
	clear(want[3<<20 : 4<<20])
	d, err := Open(child, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if inf := d.Info(); len(inf.Chain) != 2 || inf.Chain[1].Path != parent {
		t.Fatalf("chain %+v", inf.Chain)
	}
	ref := filepath.Join(dir, "want.raw")
	os.WriteFile(ref, want, 0o644)
	rf, _ := os.Open(ref)
	defer rf.Close()
	compareReads(t, d, rf, int64(len(want)), 300, []int64{1 << 20, 3 << 20, 5 << 20})
	os.Remove(parent)
	if _, err := Open(child, Options{}); CodeOf(err) != ErrDiskOpenParent {
		t.Errorf("without its parent: %v", err)
	}
}

// vdiSamples: a dynamic VDI and a differencing one over it.
func vdiSamples(t testing.TB, dir string) []foreignSample {
	dyn := sampleImage(t, dir, "vdi-dynamic", "vdi", nil, "4M", "write -P 0x61 0 8k", "write -P 0x62 2100k 2k")
	if err := os.WriteFile(filepath.Join(dir, "vdi-parent.vdi"), dyn, 0o644); err != nil {
		t.Fatal(err)
	}
	diff := diffVDI(dyn, map[int]byte{1: 0x41}, []int{2})
	var out []foreignSample
	for name, img := range map[string][]byte{"vdi-dynamic": dyn, "vdi-diff": diff} {
		le := binary.LittleEndian
		m := int(le.Uint32(img[0x154:]))
		s := foreignSample{name: name, img: img, edges: []int{0x180, 0x200, m, m + 16, int(le.Uint32(img[0x158:]))},
			flips: [][2]int{{0x40, 0x60}, {0x150, 0x1c0}}}
		for _, f := range []int{0x154, 0x158, 0x170, 0x174, 0x178, 0x17c, 0x180} {
			s.entries = append(s.entries, tableEntry{f, 4, false, fmt.Sprintf("header@%#x", f)})
		}
		for i := range 3 {
			s.entries = append(s.entries, tableEntry{m + 4*i, 4, false, fmt.Sprintf("map[%d]", i)})
		}
		out = append(out, s)
	}
	return out
}

// diffVHDX turns empty, a dynamic VHDX qemu made with 1 MiB blocks, into a differencing child of
// parent (another, named parentName beside it) from the format's facts: the has-parent flag, a parent
// locator item (parent_linkage: the parent's data write GUID; relative and absolute Win32 paths), the
// BAT laid out with the chunk's sector bitmap entry, one sector bitmap block, and blocks holding the
// writes (partially present, or fully when full is set).
func diffVHDX(t testing.TB, empty, parent []byte, parentName string, writes []vhdWrite, full int64) []byte {
	le := binary.LittleEndian
	img := append([]byte{}, empty...)
	var batOff, metaOff int64
	for i := range int(le.Uint32(img[192<<10+8:])) {
		e := 192<<10 + 16 + 32*i
		if img[e] == 0x66 && img[e+1] == 0x77 {
			batOff = int64(le.Uint64(img[e+16:]))
		} else {
			metaOff = int64(le.Uint64(img[e+16:]))
		}
	}
	cur := func(b []byte) []byte { // the current header
		if le.Uint64(b[128<<10+8:]) > le.Uint64(b[64<<10+8:]) {
			return b[128<<10:]
		}
		return b[64<<10:]
	}
	pg := cur(parent)[32:48]
	linkage := fmt.Sprintf("{%08x-%04x-%04x-%x-%x}", le.Uint32(pg), le.Uint16(pg[4:]), le.Uint16(pg[6:]), pg[8:10], pg[10:16])
	// Metadata: the has-parent flag and the locator item.
	m := img[metaOff:]
	n := int(le.Uint16(m[10:]))
	for i := range n {
		e := m[32+32*i:]
		if bytes.Equal(e[:4], []byte{0x37, 0x67, 0xa1, 0xca}) { // file parameters
			o := le.Uint32(e[16:])
			le.PutUint32(m[o+4:], le.Uint32(m[o+4:])|2)
			if bs := le.Uint32(m[o:]); bs != 1<<20 {
				t.Fatalf("the template has %d-byte blocks", bs)
			}
		}
	}
	kv := [][2]string{{"parent_linkage", linkage}, {"relative_path", `.\` + parentName}, {"absolute_win32_path", `C:\VMs\` + parentName}}
	loc := []byte{0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13, 0, 0, byte(len(kv)), 0}
	strs := 20 + 12*len(kv)
	var data []byte
	for _, p := range kv {
		k, v := utf16Bytes(p[0], false), utf16Bytes(p[1], false)
		loc = le.AppendUint32(loc, uint32(strs+len(data)))
		loc = le.AppendUint32(loc, uint32(strs+len(data)+len(k)))
		loc = le.AppendUint16(loc, uint16(len(k)))
		loc = le.AppendUint16(loc, uint16(len(v)))
		data = append(append(data, k...), v...)
	}
	loc = append(loc, data...)
	const locAt = 512 << 10
	copy(m[locAt:], loc)
	e := m[32+32*n:]
	copy(e, []byte{0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c})
	le.PutUint32(e[16:], locAt)
	le.PutUint32(e[20:], uint32(len(loc)))
	le.PutUint32(e[24:], 4) // required
	le.PutUint16(m[10:], uint16(n+1))
	// BAT: 4096 payload entries then the chunk's sector bitmap entry; blocks appended at the end.
	sector := int64(vhdxItem(img, metaOff, []byte{0x1d, 0xbf, 0x41, 0x81}, 4))
	chunkRatio := (1 << 23) * sector >> 20
	end := (int64(len(img)) + 1<<20 - 1) &^ (1<<20 - 1)
	sb := end
	end += 1 << 20
	blocks := map[int64]int64{}
	img = append(img, make([]byte, end-int64(len(img)))...)
	// qemu marks a new disk's blocks ZERO; a child's blocks it does not hold are NOT_PRESENT.
	clear(img[batOff : batOff+8*chunkRatio])
	le.PutUint64(img[batOff+8*chunkRatio:], uint64(sb)|6)
	for _, w := range writes {
		for s := w.sector; s < w.sector+w.count; s++ {
			b := s * 512 >> 20
			if _, ok := blocks[b]; !ok {
				blocks[b] = end
				img = append(img, make([]byte, 1<<20)...)
				state := uint64(7)
				if b == full {
					state = 6
				}
				le.PutUint64(img[batOff+8*b:], uint64(end)|state)
				end += 1 << 20
			}
			bit := s * 512 / sector
			img[sb+bit/8] |= 1 << (bit % 8)
			copy(img[blocks[b]+(s*512)%(1<<20):], bytes.Repeat([]byte{w.fill}, 512))
		}
	}
	return img
}

// A differencing VHDX built from the format's facts reads as libvhdi's vhdimount reads it and as the
// model says.
func TestVHDXDifferencing(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 4<<20)
	parent := filepath.Join(dir, "parent.vhdx")
	run(t, "qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", src, parent)
	writes := []vhdWrite{{0, 8, 0x71}, {1000, 1, 0x72}, {2047, 2, 0x73}, {4096, 100, 0x74}, {6144, 2048, 0x75}}
	child := checkVHDXChild(t, dir, nil, mustRead(t, qemuRaw(t, parent)), writes)
	// The parent changed identity (rewritten by qemu: a new data write GUID): refused.
	run(t, "qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", src, parent)
	if _, err := Open(child, Options{}); CodeOf(err) != ErrDiskCIDMismatch {
		t.Errorf("a parent with another data write GUID: %v", err)
	}
}

// vhdxItem returns the little-endian word of width bytes at the start of the metadata item whose
// GUID starts with id, and setVHDXItem sets it.
func vhdxItem(img []byte, metaOff int64, id []byte, width int) uint64 {
	o := vhdxItemOffset(img, metaOff, id)
	if width == 4 {
		return uint64(binary.LittleEndian.Uint32(img[o:]))
	}
	return binary.LittleEndian.Uint64(img[o:])
}

func vhdxItemOffset(img []byte, metaOff int64, id []byte) int64 {
	le := binary.LittleEndian
	m := img[metaOff:]
	for i := range int(le.Uint16(m[10:])) {
		e := m[32+32*i:]
		if bytes.Equal(e[:len(id)], id) {
			return metaOff + int64(le.Uint32(e[16:]))
		}
	}
	panic("no such metadata item")
}

// vhdxMetaOffset returns the metadata region's file offset.
func vhdxMetaOffset(img []byte) int64 {
	le := binary.LittleEndian
	for i := range int(le.Uint32(img[192<<10+8:])) {
		e := 192<<10 + 16 + 32*i
		if img[e] == 0x06 && img[e+1] == 0xa2 {
			return int64(le.Uint64(img[e+16:]))
		}
	}
	panic("no metadata region")
}

// to4K makes a 512-byte-sector VHDX of fewer blocks than one chunk a 4096-byte-sector one: with a
// single chunk the BAT's layout does not depend on the sector size, so only the metadata changes.
func to4K(img []byte) []byte {
	img = append([]byte{}, img...)
	m := vhdxMetaOffset(img)
	for _, id := range [][]byte{{0x1d, 0xbf, 0x41, 0x81}, {0xc7, 0x48, 0xa3, 0xcd}} { // logical, physical
		binary.LittleEndian.PutUint32(img[vhdxItemOffset(img, m, id):], 4096)
	}
	return img
}

// VHDX disks of 4096-byte logical sectors: a dynamic one reads as qemu reads the same disk with
// 512-byte sectors (and as vhdimount reads it), and a differencing one, whose sector bitmap has a bit
// per 4 KiB, reads as its model and as vhdimount.
func TestVHDXLogical4096(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	src := sourceRaw(t, dir, 4<<20)
	p512 := filepath.Join(dir, "p512.vhdx")
	run(t, "qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", src, p512)
	parent := filepath.Join(dir, "parent.vhdx")
	if err := os.WriteFile(parent, to4K(mustRead(t, p512)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := mustRead(t, qemuRaw(t, p512))
	d := readsAs(t, parent, want, 1)
	if !strings.Contains(d.Info().Chain[0].Extents[0].Format, "4096-byte sectors") {
		t.Errorf("info: %q", d.Info().Chain[0].Extents[0].Format)
	}
	writes := []vhdWrite{{0, 8, 0x71}, {1000, 8, 0x72}, {2040, 16, 0x73}, {6144, 2048, 0x75}}
	checkVHDXChild(t, dir, to4K, want, writes)
}

// checkVHDXChild writes child.vhdx in dir: a differencing VHDX of dir's parent.vhdx holding writes,
// its structures taken from an empty 4 MiB disk made by qemu-img and passed through shape (when not
// nil). It checks the child reads as want with the writes applied (want is updated), by us and by
// vhdimount, and returns its path.
func checkVHDXChild(t *testing.T, dir string, shape func([]byte) []byte, want []byte, writes []vhdWrite) string {
	t.Helper()
	empty := filepath.Join(dir, "empty.vhdx")
	run(t, "qemu-img", "create", "-f", "vhdx", "-o", "block_size=1M", empty, "4M")
	img := mustRead(t, empty)
	if shape != nil {
		img = shape(img)
	}
	child := filepath.Join(dir, "child.vhdx")
	parent := mustRead(t, filepath.Join(dir, "parent.vhdx"))
	if err := os.WriteFile(child, diffVHDX(t, img, parent, "parent.vhdx", writes, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		copy(want[w.sector*512:], bytes.Repeat([]byte{w.fill}, int(w.count*512)))
	}
	readsAs(t, child, want, 2)
	return child
}

// readsAs opens path, checks its chain has links links and reads as want, and that libvhdi's
// vhdimount (the judge) reads the same; the disk is closed when the test ends.
func readsAs(t *testing.T, path string, want []byte, links int) *Disk {
	t.Helper()
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if n := len(d.Info().Chain); n != links {
		t.Fatalf("%s: chain of %d links, want %d", path, n, links)
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s differs from the model (%d bytes, want %d) from byte %d", path, len(got), len(want), i)
	}
	if judge := vhdimountRead(t, path); !bytes.Equal(judge, got) {
		t.Fatalf("%s differs from vhdimount's reading (%d and %d bytes)", path, len(got), len(judge))
	}
	return d
}
