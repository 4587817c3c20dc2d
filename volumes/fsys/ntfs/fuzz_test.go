package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"io"
	"io/fs"
	"os"
	"testing"
)

// fixtureBytes loads a fixture image into memory.
func fixtureBytes(t testing.TB, name string) []byte {
	data, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// seedRecords adds the first MFT records and index blocks of the fixture as fuzz seeds.
func seedRecords(f *testing.F, magic string, size int) {
	img := fixtureBytes(f, "basic")
	n := 0
	for off := 0; off+size <= len(img) && n < 40; off += 512 {
		if string(img[off:off+4]) == magic {
			f.Add(append([]byte(nil), img[off:off+size]...))
			n++
			off += size - 512
		}
	}
}

// fixtureRunLists returns the mapping-pairs arrays of the non-resident attributes in the first MFT
// records of a fixture (written by mkntfs and ntfs-3g), as seeds for the run decoder.
func fixtureRunLists(f *testing.F, name string) [][]byte {
	img := fixtureBytes(f, name)
	bs, err := parseBoot(img)
	if err != nil {
		f.Fatal(err)
	}
	var lists [][]byte
	mft := int(bs.mftCluster) * int(bs.clusterSize)
	for i := 0; i < 40; i++ {
		off := mft + i*int(bs.recordSize)
		if off+int(bs.recordSize) > len(img) {
			break
		}
		rec := append([]byte(nil), img[off:off+int(bs.recordSize)]...)
		if applyFixups(rec, "FILE") != nil {
			continue
		}
		le := binary.LittleEndian
		for at := int(le.Uint16(rec[0x14:])); at+0x40 <= len(rec) && le.Uint32(rec[at:]) != attrEnd; {
			length := int(le.Uint32(rec[at+4:]))
			if length < 0x18 || at+length > len(rec) {
				break
			}
			if rec[at+8] != 0 { // non-resident: the mapping pairs run to the end of the attribute
				if runOff := int(le.Uint16(rec[at+0x20:])); runOff < length {
					lists = append(lists, rec[at+runOff:at+length])
				}
			}
			at += length
		}
	}
	if len(lists) == 0 {
		f.Fatalf("%s: no run lists found in the first MFT records", name)
	}
	return lists
}

func FuzzBootSector(f *testing.F) {
	f.Add(fixtureBytes(f, "basic")[:512])
	f.Add(fixtureBytes(f, "c4k")[:512])
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := parseBoot(b)
		if err == nil && (bs.clusterSize == 0 || bs.recordSize < 512 || bs.indexRecordSize < 512) {
			t.Fatalf("accepted a boot sector with zero sizes: %+v", bs)
		}
	})
}

func FuzzMFTRecord(f *testing.F) {
	seedRecords(f, "FILE", 1024)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append([]byte(nil), b...)
		if len(b) >= 1024 {
			b = b[:1024]
			sealFixups(b)
		}
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if _, err := mergeExtents(r.attrs); err != nil {
			return
		}
		for _, a := range r.attrs {
			if a.typ == attrAttributeList && a.resident {
				extensionRecords(a.value, 0)
			}
		}
	})
}

func FuzzDataRuns(f *testing.F) {
	f.Add([]byte{0x21, 0x18, 0x34, 0x56, 0x00})
	f.Add([]byte{0x11, 0x30, 0x60, 0x21, 0x10, 0x00, 0x01, 0x01, 0x05, 0x00})
	f.Add([]byte{0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00})
	for _, name := range []string{"basic", "c4k"} {
		for _, runs := range fixtureRunLists(f, name) {
			f.Add(runs)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		runs, err := decodeRuns(b, 0)
		if err != nil {
			return
		}
		next := int64(0)
		for _, r := range runs {
			if r.vcn != next || r.length <= 0 || r.lcn < -1 {
				t.Fatalf("bad run %+v after VCN %d", r, next)
			}
			next += r.length
		}
	})
}

func FuzzLZNT1(f *testing.F) {
	f.Add([]byte{0x05, 0xb0, 0x00, 'a', 'b', 'c', 0x00, 0x00})
	f.Add([]byte{0x0a, 0xb0, 0x02, 'a', 'b', 0x01, 0x30, 'x', 'y', 'z', 'w', 0x00})
	img := fixtureBytes(f, "basic")
	if i := bytes.Index(img, []byte("comp line 1")); i > 3 {
		f.Add(img[i-3 : i+4093])
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := make([]byte, 16384)
		n, _ := decompressLZNT1(dst, src)
		if n < 0 || n > len(dst) {
			t.Fatalf("produced %d bytes", n)
		}
	})
}

func FuzzIndexRecord(f *testing.F) {
	seedRecords(f, "INDX", 4096)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 0x18 || len(b)%512 != 0 {
			return
		}
		b = append([]byte(nil), b...)
		sealFixups(b)
		if applyFixups(b, "INDX") != nil {
			return
		}
		parseIndexNode(b[0x18:], func(e dirEntry) {
			if e.rec > 1<<48 {
				t.Fatalf("record number %d", e.rec)
			}
		})
	})
}

// FuzzImage damages the MFT area of a small image and walks and reads the whole tree: every
// failure must be an error, never a panic or a hang (the guard is off, so panics surface).
func FuzzImage(f *testing.F) {
	// Bit 29 of at picks the image: the small 4 KiB-cluster one, or the one with attribute lists,
	// long run lists and multi-block indexes (slower to copy, so less often).
	var imgs [2][]byte
	var mftOffs [2]int
	for i, name := range []string{"c4k", "basic"} {
		imgs[i] = fixtureBytes(f, name)
		bs, err := parseBoot(imgs[i])
		if err != nil {
			f.Fatal(err)
		}
		mftOffs[i] = int(bs.mftCluster) * int(bs.clusterSize)
	}
	f.Add(uint32(0), []byte{0})
	f.Add(uint32(5*1024+0x40), []byte{0xff, 0xff})
	f.Add(uint32(0x30), []byte{0x7f})
	f.Add(uint32(1<<30|0x100000), []byte{0xff, 0, 0, 0})
	f.Add(uint32(1<<29|709*1024+0x100), []byte{0x41, 0x42})
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		recoverPanics = false
		defer func() { recoverPanics = true }()
		which := int(at>>29) & 1
		b := append([]byte(nil), imgs[which]...)
		off := mftOffs[which] + int(at%(1024*1024)) // the used MFT records
		switch {
		case at&(1<<31) != 0:
			off = int(at % 8192) // boot sector and around
		case at&(1<<30) != 0:
			off = int(at % uint32(len(b))) // anywhere: index blocks, compressed data, $Bitmap
		}
		if off < len(b) {
			copy(b[off:], patch)
		}
		walkAll(b)
	})
}

// walkAll opens an in-memory image and reads every entry it can reach.
func walkAll(b []byte) {
	v, err := open(bytes.NewReader(b), int64(len(b)), Options{ShowSystemFiles: true})
	if err != nil {
		return
	}
	v.Usage()
	fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		v.ListXattr(p)
		if d.Type()&fs.ModeSymlink != 0 {
			v.ReadLink(p)
			return nil
		}
		if d.Type().IsRegular() {
			if h, err := v.Open(p); err == nil {
				io.Copy(io.Discard, h.(io.Reader))
				h.Close()
			}
		}
		return nil
	})
}

// TestDamagedImages truncates and corrupts the fixtures in ways that must give errors: a short
// volume, torn MFT records and garbage in the root index.
func TestDamagedImages(t *testing.T) {
	recoverPanics = false
	defer func() { recoverPanics = true }()
	img := fixtureBytes(t, "basic")
	if _, err := open(bytes.NewReader(img[:len(img)/2]), int64(len(img)/2), Options{}); err == nil {
		t.Error("a volume cut in half opened")
	}
	if _, err := open(bytes.NewReader(img[:100]), 100, Options{}); err == nil {
		t.Error("a 100-byte volume opened")
	}
	bs, _ := parseBoot(img)
	mft := int(bs.mftCluster) * int(bs.clusterSize)
	torn := append([]byte(nil), img...)
	torn[mft+5*1024+510] ^= 0xff // breaks the root record's update sequence
	if _, err := open(bytes.NewReader(torn), int64(len(torn)), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a torn root record: %v", err)
	}
	// A torn $MFT record 0 is replaced by its copy in $MFTMirr; with both torn, Open fails.
	torn = append([]byte(nil), img...)
	torn[mft+510] ^= 0xff
	if v, err := open(bytes.NewReader(torn), int64(len(torn)), Options{}); err != nil {
		t.Errorf("torn $MFT record 0 with a good mirror: %v", err)
	} else if data, err := fs.ReadFile(v, "small.txt"); err != nil || string(data) != "hello, ntfs\n" {
		t.Errorf("through the mirror: %q, %v", data, err)
	}
	torn[int(bs.mftMirrCluster)*int(bs.clusterSize)+510] ^= 0xff
	if _, err := open(bytes.NewReader(torn), int64(len(torn)), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("torn $MFT and $MFTMirr: %v", err)
	}
	// A pseudo-random sweep of single-byte damage over the first MFT records of the small fixture.
	small := fixtureBytes(t, "c4k")
	sbs, _ := parseBoot(small)
	smft := int(sbs.mftCluster) * int(sbs.clusterSize)
	b := make([]byte, len(small))
	for i := 0; i < 60; i++ {
		copy(b, small)
		off := smft + (i*7919)%(100*1024)
		b[off] ^= byte(i*31 + 1)
		walkAll(b)
	}
	// A run list pointing far beyond the volume must fail when read, not allocate.
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], 1<<40)
	if _, err := decodeRuns(append([]byte{0x81, 0x01}, le[:]...), 0); err == nil {
		// Decoding accepts it; newStream must refuse it.
		a := &attribute{typ: attrData, runs: []dataRun{{0, 1 << 40, 1}}, allocSize: 4096, dataSize: 4096, initSize: 4096}
		v, err := open(bytes.NewReader(img), int64(len(img)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.newStream(99, a); err == nil {
			t.Error("a run beyond the volume was accepted")
		}
	}
}

// sealFixups rewrites a record's update sequence so that it checks out, letting the fuzzer reach
// the parsers behind the fixup check with most of its mutations.
func sealFixups(b []byte) {
	if len(b) < 48 {
		return
	}
	off := int(binary.LittleEndian.Uint16(b[4:]))
	count := len(b)/fixupStride + 1
	if off < 8 || off+2*count > len(b) {
		return
	}
	binary.LittleEndian.PutUint16(b[6:], uint16(count))
	for i := 1; i < count; i++ {
		end := i*fixupStride - 2
		copy(b[off+2*i:off+2*i+2], b[end:end+2])
		copy(b[end:end+2], b[off:off+2])
	}
}

// patchEntryOfC rewrites the reference of the index entry "c" in deep/a/b (resident index root) of
// the basic fixture with what newRef computes from the inodes of deep/a and deep/a/b/c.
func patchEntryOfC(t *testing.T, newRef func(a, c *inode) uint64) fsys.FS {
	img := fixtureBytes(t, "basic")
	v, err := open(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.walk("test", "deep/a/b")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := v.walk("test", "deep/a")
	c, _ := v.walk("test", "deep/a/b/c")
	rs := int(v.boot.recordSize)
	at := int(v.boot.mftCluster)*int(v.boot.clusterSize) + int(b.ino.num)*rs
	rec := append([]byte(nil), img[at:at+rs]...)
	if err := applyFixups(rec, "FILE"); err != nil {
		t.Fatal(err)
	}
	var old [8]byte
	binary.LittleEndian.PutUint64(old[:], c.ino.num|uint64(c.ino.seq)<<48)
	i := bytes.Index(rec, old[:])
	if i < 0 {
		t.Fatal("entry for c not found in b's index root")
	}
	binary.LittleEndian.PutUint64(rec[i:], newRef(a.ino, c.ino))
	sealFixups(rec)
	damaged := append([]byte(nil), img...)
	copy(damaged[at:], rec)
	d, err := Open(bytes.NewReader(damaged), int64(len(damaged)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDamagedEntries points deep/a/b's entry "c" at its own grandparent (a loop) and, separately,
// at a stale sequence number: walking must end, the entry must be left out of the listing and
// looking it up must fail with ErrCorrupt.
func TestDamagedEntries(t *testing.T) {
	for name, ref := range map[string]func(a, c *inode) uint64{
		"loop":  func(a, c *inode) uint64 { return a.num | uint64(a.seq)<<48 },
		"stale": func(a, c *inode) uint64 { return c.num | uint64(c.seq+1)<<48 },
	} {
		t.Run(name, func(t *testing.T) {
			d := patchEntryOfC(t, ref)
			entries, err := d.ReadDir("deep/a/b")
			if err != nil || len(entries) != 0 {
				t.Errorf("deep/a/b lists %v, %v; want nothing", entries, err)
			}
			if _, err := d.Stat("deep/a/b/c"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("lookup of the damaged entry: %v", err)
			}
			n := 0
			fs.WalkDir(d, ".", func(string, fs.DirEntry, error) error {
				if n++; n > 100000 {
					t.Fatal("walk does not end")
				}
				return nil
			})
		})
	}
}
