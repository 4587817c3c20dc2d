package iso9660

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"path"
	"testing"
)

// exercise walks a whole image the way a FUSE layer would, bounded so a hostile tree cannot run long.
func exercise(f *FS) {
	budget := 5000
	var walk func(name string, depth int)
	walk = func(name string, depth int) {
		if depth > 40 || budget <= 0 {
			return
		}
		ents, err := f.ReadDir(name)
		if err != nil {
			return
		}
		for _, e := range ents {
			if budget--; budget <= 0 {
				return
			}
			p := path.Join(name, e.Name())
			switch {
			case e.IsDir():
				walk(p, depth+1)
			case e.Type()&fs.ModeSymlink != 0:
				_, _ = f.ReadLink(p)
				_, _ = f.Stat(p)
			case e.Type().IsRegular():
				if fl, err := f.Open(p); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(fl, 1<<16))
					fl.Close()
				}
			}
		}
	}
	walk(".", 0)
}

// rootBlock is the first block of the primary descriptor's root directory.
func rootBlock(img []byte) int {
	return int(binary.LittleEndian.Uint32(img[firstDescriptor*sectorSize+156+2:]))
}

// trimmed drops an image's trailing zero padding so fuzz inputs stay small.
func trimmed(img []byte) []byte {
	return bytes.TrimRight(img, "\x00")
}

// FuzzImage mutates whole small images: descriptors, directories, SUSP areas and data together.
func FuzzImage(f *testing.F) {
	for _, name := range []string{"small-rr", "small-joliet", "small-plain", "small-zisofs"} {
		f.Add(trimmed(fixture(f, name)))
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		fsys, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		exercise(fsys.(*FS))
	})
}

func FuzzDescriptor(f *testing.F) {
	img := fixture(f, "small-joliet")
	for i := int64(firstDescriptor); i < firstDescriptor+3; i++ {
		f.Add(img[i*sectorSize : (i+1)*sectorSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _, err := parseDescriptor(b)
		if err == nil && d != nil && len(d.root) != 34 {
			t.Fatalf("root record of %d bytes", len(d.root))
		}
	})
}

func FuzzRecord(f *testing.F) {
	img := fixture(f, "small-rr")
	root := rootBlock(img)
	f.Add(img[firstDescriptor*sectorSize+156 : firstDescriptor*sectorSize+190])
	f.Add(img[root*sectorSize : root*sectorSize+300])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if int(r.length) > len(b) || len(r.system) > int(r.length) {
			t.Fatalf("record of %d bytes with %d system bytes from %d", r.length, len(r.system), len(b))
		}
	})
}

// FuzzSUSP feeds System Use areas, with a continuation area reachable at block 1 of a tiny image.
func FuzzSUSP(f *testing.F) {
	le := binary.LittleEndian
	entry := func(sig string, data []byte) []byte {
		return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
	}
	both32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(le.AppendUint32(nil, v), v) }
	px := append(append(append(append(both32(0o100644), both32(2)...), both32(1000)...), both32(100)...), both32(77)...)
	sl := entry("SL", []byte{0, 8, 0, 2, 0, 1, 'a', 0, 2, 'b', 'c'})
	ce := entry("CE", append(append(both32(1), both32(0)...), both32(64)...))
	seed := append(append(append(entry("PX", px), entry("NM", []byte{0, 'n', 'a', 'm', 'e'})...), sl...), ce...)
	tf := entry("TF", append([]byte{0x0e}, bytes.Repeat([]byte{121, 6, 15, 12, 0, 0, 0}, 3)...))
	f.Add(seed, append(entry("NM", []byte{1, 'l', 'o', 'n', 'g'}), append(entry("NM", []byte{0, '-', 'x'}), tf...)...))
	// The System Use areas of the root directory records that genisoimage and xorriso wrote.
	for _, name := range []string{"small-rr", "tree-rrip112"} {
		img := fixture(f, name)
		blk := img[rootBlock(img)*sectorSize : (rootBlock(img)+1)*sectorSize]
		for len(blk) > 0 && blk[0] != 0 {
			r, err := parseRecord(blk)
			if err != nil {
				f.Fatalf("%s: root record: %v", name, err)
			}
			if len(r.system) > 0 {
				f.Add(bytes.Clone(r.system), []byte(nil))
			}
			blk = blk[r.length:]
		}
	}
	f.Fuzz(func(t *testing.T, area, cont []byte) {
		img := make([]byte, 2*sectorSize)
		copy(img[sectorSize:], cont)
		fs := &FS{r: bytes.NewReader(img), size: int64(len(img))}
		rr, err := fs.parseSUSP(area, 0)
		if err != nil {
			return
		}
		_ = fs.baseStat(&record{}, rr, 0)
	})
}

// FuzzDirectory feeds one directory listing (at block 1) to the record walker with Rock Ridge on.
func FuzzDirectory(f *testing.F) {
	img := fixture(f, "small-rr")
	root := rootBlock(img)
	f.Add(img[root*sectorSize:(root+1)*sectorSize], uint32(sectorSize), true)
	f.Add(img[(root+1)*sectorSize:(root+2)*sectorSize], uint32(sectorSize), false)
	f.Fuzz(func(t *testing.T, raw []byte, size uint32, rock bool) {
		data := make([]byte, sectorSize+len(raw))
		copy(data[sectorSize:], raw)
		fs := &FS{r: bytes.NewReader(data), size: int64(len(data)), rock: rock,
			dirs: &dirCache{max: dirCacheNames, byBlock: map[uint32]*listing{}}}
		nodes, err := fs.parseDir(extent{block: 1, size: size})
		if err != nil {
			return
		}
		for _, n := range nodes {
			if !validName(n.name) {
				t.Fatalf("invalid name %q accepted", n.name)
			}
		}
	})
}
