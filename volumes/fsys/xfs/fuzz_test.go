package xfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vmdkmount/vmdkmount/internal/treecmp"
)

// fixtureSB returns the parsed superblock of a fixture, for parsers that need the geometry.
func fixtureSB(f *testing.F, name string) (*superblock, []byte) {
	img := sharedFixture(f, name)
	sb, err := parseSuperblock(img[:512])
	if err != nil {
		f.Fatal(err)
	}
	return sb, img
}

// fixtureInodes returns the raw inodes of every entry of a fixture, for seeding.
func fixtureInodes(f *testing.F, name string) (*FS, [][]byte, []uint64) {
	img := sharedFixture(f, name)
	x, err := open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	var raws [][]byte
	var inos []uint64
	for _, p := range []string{".", "short", "block", "leaf", "node", "btree", "fragmented", "fragmented_more", "link_local",
		"link_remote", "chardev", "xattr_short", "xattr_leaf", "xattr_node", "xattr_remote", "prealloc", "tiny"} {
		ip, err := x.walk(p)
		if err != nil {
			continue
		}
		off, _ := x.sb.inodeByte(ip.ino)
		raws = append(raws, img[off:off+int64(x.sb.inodeSize)])
		inos = append(inos, ip.ino)
	}
	return x, raws, inos
}

func FuzzSuperblock(f *testing.F) {
	for _, n := range []string{"v5.img.gz", "v4.img.gz"} {
		_, img := fixtureSB(f, n)
		f.Add(img[:512])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := parseSuperblock(b)
		if len(b) >= 512 { // again with the checksum made valid, to reach the geometry checks
			c := append([]byte(nil), b[:512]...)
			setCRC(c, sbCRCOffset)
			sb, err = parseSuperblock(c)
		}
		if err != nil {
			return
		}
		// Geometry that passed the checks must decode inode and block numbers without overflow panics.
		_, _ = sb.inodeByte(sb.rootIno)
		_, _ = sb.fsbToByte(sb.dblocks - 1)
		_ = sb.checkRun(sb.dblocks-1, 1)
	})
}

// FuzzInode decodes a mutated inode (checksum and self-number fixed up) and every parser its forks feed.
func FuzzInode(f *testing.F) {
	x, raws, inos := fixtureInodes(f, "v5.img.gz")
	for i, r := range raws {
		f.Add(r, inos[i])
	}
	v4, raws4, inos4 := fixtureInodes(f, "v4.img.gz")
	for i, r := range raws4 {
		f.Add(r, inos4[i]|1<<63)
	}
	f.Fuzz(func(t *testing.T, b []byte, ino uint64) {
		fsys := x
		if ino>>63 != 0 {
			fsys, ino = v4, ino&^(1<<63)
		}
		sb := fsys.sb
		if len(b) < int(sb.inodeSize) {
			return
		}
		b = append([]byte(nil), b[:sb.inodeSize]...)
		if sb.crc {
			binary.BigEndian.PutUint64(b[152:], ino)
			b[4] = 3
			setCRC(b, inodeCRCOff)
		}
		ip, err := parseInode(sb, ino, b)
		if err != nil {
			return
		}
		_ = ip.stat(sb)
		if ip.isDir() && ip.format == fmtLocal {
			_, _ = parseShortformDir(ip.dfork[:ip.size], sb.hasFType)
		}
		if ip.afork != nil && ip.aformat == fmtLocal {
			_, _ = parseShortformAttrs(ip.afork)
		}
		if ip.format == fmtExtents {
			if ex, err := parseExtentList(ip.dfork, ip.nextents, nil); err == nil {
				_ = fsys.checkExtents(ex)
			}
		}
	})
}

// zeroReader is a volume of zeros, so extent maps can be read without a real image.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

func FuzzExtents(f *testing.F) {
	x, raws, _ := fixtureInodes(f, "v5.img.gz")
	for _, r := range raws {
		f.Add(r[inodeCoreV3:], int64(0), uint16(4096))
	}
	z := &FS{r: zeroReader{}, size: int64(x.sb.dblocks << x.sb.blockLog), sb: x.sb}
	f.Fuzz(func(t *testing.T, b []byte, off int64, n uint16) {
		ex, err := parseExtentList(b, uint64(len(b)/bmbtRecSize), nil)
		if err != nil {
			t.Fatalf("whole records rejected: %v", err)
		}
		if z.checkExtents(ex) != nil || off < 0 {
			return
		}
		buf := make([]byte, n)
		if err := z.readMapped(ex, buf, off); err == nil && bytes.Count(buf, []byte{0}) != len(buf) {
			t.Fatal("zero volume read back non-zero bytes")
		}
	})
}

// dirBlocks collects real directory data blocks of the fixture for seeding.
func dirBlocks(f *testing.F, x *FS) [][]byte {
	var out [][]byte
	for _, p := range []string{"block", "leaf", "node"} {
		ip, err := x.walk(p)
		if err != nil {
			f.Fatal(err)
		}
		ex, err := x.forkExtents(ip, false)
		if err != nil {
			f.Fatal(err)
		}
		b := make([]byte, x.sb.dirBlkSize)
		if err := x.readMapped(ex, b, 0); err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzDirDataBlock(f *testing.F) {
	x, _, _ := fixtureInodes(f, "v5.img.gz")
	v4, _, _ := fixtureInodes(f, "v4.img.gz")
	for _, b := range dirBlocks(f, x) {
		f.Add(b, false)
	}
	for _, b := range dirBlocks(f, v4) {
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, old bool) {
		fsys := x
		if old {
			fsys = v4
		}
		sb := fsys.sb
		if len(b) > int(sb.dirBlkSize) {
			b = b[:sb.dirBlkSize]
		}
		b = append([]byte(nil), b...)
		if sb.crc && len(b) >= dataHdrV5 {
			binary.BigEndian.PutUint64(b[dataOwnerOff:], 7)
			setCRC(b, dataCRCOff)
		}
		ents, err := parseDataBlock(b, sb, 7, nil)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.name == "" || len(e.name) > 255 || checkName(e.name) != nil {
				t.Fatalf("accepted bad name %q", e.name)
			}
		}
	})
}

func FuzzShortformDir(f *testing.F) {
	x, _, _ := fixtureInodes(f, "v5.img.gz")
	ip, err := x.walk("short")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ip.dfork[:ip.size], true)
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0x60, 'x', 0, 0, 0, 0, 0, 0, 1, 2}, false)
	f.Fuzz(func(t *testing.T, b []byte, ftype bool) {
		ents, err := parseShortformDir(b, ftype)
		if err == nil && len(ents) > len(b) {
			t.Fatalf("%d entries from %d bytes", len(ents), len(b))
		}
	})
}

func attrBlocks(f *testing.F, x *FS) [][]byte {
	var out [][]byte
	for _, p := range []string{"xattr_leaf", "xattr_node", "xattr_remote"} {
		ip, err := x.walk(p)
		if err != nil {
			f.Fatal(err)
		}
		ex, err := x.forkExtents(ip, true)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range ex {
			for i := uint64(0); i < e.count && i < 4; i++ {
				b, err := x.attrBlock(ip, ex, e.off+i)
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, b)
			}
		}
	}
	return out
}

func FuzzAttrLeaf(f *testing.F) {
	x, _, _ := fixtureInodes(f, "v5.img.gz")
	for _, b := range attrBlocks(f, x) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < attrLeafHdrV5 || len(b) > int(x.sb.blockSize) {
			return
		}
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint64(b[daOwnerOff:], 9)
		setCRC(b, daCRCOff)
		attrs, _, err := parseAttrLeaf(b, x.sb, 9, nil)
		if err == nil {
			for _, a := range attrs {
				if !a.remote && len(a.value) > len(b) {
					t.Fatal("value longer than its block")
				}
				if a.name == "system.posix_acl_access" {
					_, _ = aclToXattr(a.value)
				}
			}
		}
		_, _ = parseDaNodeFirst(b, x.sb, 9)
	})
}

func FuzzShortformAttr(f *testing.F) {
	x, _, _ := fixtureInodes(f, "v5.img.gz")
	ip, err := x.walk("xattr_short")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ip.afork)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseShortformAttrs(b)
		_, _ = aclToXattr(b)
	})
}

// patchedReader overlays fuzzer-chosen bytes on a shared image.
type patchedReader struct {
	base    []byte
	patches map[int64]byte
}

func (p *patchedReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= int64(len(p.base)) {
		return 0, io.EOF
	}
	n := copy(b, p.base[off:])
	for o, v := range p.patches {
		if o >= off && o < off+int64(n) {
			b[o-off] = v
		}
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// recordingReader remembers which blocks a clean walk reads: the metadata worth mutating.
type recordingReader struct {
	r    io.ReaderAt
	mu   sync.Mutex
	offs map[int64]bool
}

func (r *recordingReader) ReadAt(b []byte, off int64) (int, error) {
	r.mu.Lock()
	if len(b) <= 64<<10 {
		for o := off &^ 511; o < off+int64(len(b)); o += 512 {
			r.offs[o] = true
		}
	}
	r.mu.Unlock()
	return r.r.ReadAt(b, off)
}

// walkAll lists, stats, reads links, xattrs and a little of every file; errors are fine, panics and
// hangs are not. A corrupt entry can make a directory its own descendant, so depth and count are capped.
func walkAll(x *FS) {
	visited := 0
	_ = fs.WalkDir(x, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if visited++; visited > 5000 {
			return fs.SkipAll
		}
		if d.IsDir() && strings.Count(p, "/") > 8 {
			return fs.SkipDir
		}
		if d.IsDir() {
			_, _ = treecmp.StreamNames(x, p, 64) // the streamed listing too
		}
		if _, err := d.Info(); err != nil {
			return nil
		}
		_, _ = x.ReadLink(p)
		if names, err := x.ListXattr(p); err == nil {
			for _, n := range names[:min(len(names), 8)] {
				_, _ = x.GetXattr(p, n)
			}
		}
		if d.Type().IsRegular() {
			if fl, err := x.Open(p); err == nil {
				buf := make([]byte, 8192)
				_, _ = fl.(io.ReaderAt).ReadAt(buf, 0)
				fl.Close()
			}
		}
		return nil
	})
}

// FuzzImage mutates metadata sectors of the v4 fixture (no checksums to stop the mutations early) and
// walks the whole tree.
func FuzzImage(f *testing.F) {
	img := sharedFixture(f, "v4.img.gz")
	rec := &recordingReader{r: bytes.NewReader(img), offs: map[int64]bool{}}
	x, err := open(rec, int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	walkAll(x)
	var sectors []int64
	for o := range rec.offs {
		sectors = append(sectors, o)
	}
	sort.Slice(sectors, func(i, j int) bool { return sectors[i] < sectors[j] })
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 10, 0, 0xff, 5, 0, 0, 1, 0x7f})
	f.Fuzz(func(t *testing.T, patch []byte) {
		p := &patchedReader{base: img, patches: map[int64]byte{}}
		for len(patch) >= 5 && len(p.patches) < 64 { // (sector index u16, offset in sector u16, value)
			sec := sectors[int(binary.LittleEndian.Uint16(patch))%len(sectors)]
			p.patches[sec+int64(binary.LittleEndian.Uint16(patch[2:])%512)] = patch[4]
			patch = patch[5:]
		}
		y, err := open(p, int64(len(img)))
		if err != nil {
			return
		}
		walkAll(y)
	})
}

// FuzzDirLeaf feeds mutated hash-index blocks (LEAF1, LEAFN and da nodes, checksums fixed up) to the
// parsers that hash lookups use.
func FuzzDirLeaf(f *testing.F) {
	x, _, _ := fixtureInodes(f, "v5.img.gz")
	leafBlk := uint64(dirLeafOffset) >> x.sb.blockLog
	for _, p := range []string{"leaf", "node"} {
		ip, err := x.walk(p)
		if err != nil {
			f.Fatal(err)
		}
		ex, err := x.forkExtents(ip, false)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range ex {
			if e.off >= leafBlk {
				b := make([]byte, x.sb.dirBlkSize)
				if err := x.readMapped(ex, b, int64(e.off<<x.sb.blockLog)); err != nil {
					f.Fatal(err)
				}
				f.Add(b, uint32(0x12345678), uint16(100))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, h uint32, pos uint16) {
		if len(b) < dirLeafHdrV5 || len(b) > int(x.sb.dirBlkSize) {
			return
		}
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint64(b[daOwnerOff:], 5)
		setCRC(b, daCRCOff)
		if ents, _, err := parseDirLeaf(b, x.sb, 5); err == nil && len(ents)*8 > len(b) {
			t.Fatalf("%d entries from %d bytes", len(ents), len(b))
		}
		_, _, _ = daNodeChild(b, x.sb, 5, h)
		_, _ = entryAt(b, int(pos), true)
	})
}
