package xfs

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// v5Image returns the v5 fixture in memory and a reader over it for locating structures.
func v5Image(t *testing.T) ([]byte, *FS) {
	img := gunzipFixture(t, "v5.img.gz")
	f, err := open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return img, f
}

func reopen(t *testing.T, img []byte) *FS {
	f, err := open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func inodeOffset(t *testing.T, f *FS, p string) (int64, *inode) {
	ip, err := f.walk(p)
	if err != nil {
		t.Fatal(err)
	}
	off, err := f.sb.inodeByte(ip.ino)
	if err != nil {
		t.Fatal(err)
	}
	return off, ip
}

// withTimeout fails the test instead of hanging when a loop in on-disk structures is not caught.
func withTimeout(t *testing.T, fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("reader hung")
	}
}

func TestCorruptInodeIsLocal(t *testing.T) {
	img, f := v5Image(t)
	off, _ := inodeOffset(t, f, "short/f1")
	img[off+2] ^= 0xff // mode, without fixing the CRC
	g := reopen(t, img)
	if _, err := g.Lstat("short/f1"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt inode: got %v, want ErrCorrupt", err)
	}
	if _, err := g.Lstat("short/f2"); err != nil {
		t.Fatalf("neighbour of a corrupt inode: %v", err)
	}
	ents, err := g.ReadDir("short")
	if err != nil || len(ents) != 4 {
		t.Fatalf("directory holding a corrupt inode: %d entries, %v", len(ents), err)
	}
	for _, e := range ents {
		_, err := e.Info()
		if (e.Name() == "f1") != (err != nil) {
			t.Errorf("%s: Info error %v", e.Name(), err)
		}
	}
	// With the checksum fixed, the bad mode itself must be caught.
	img[off+2], img[off+3] = 0xf0, 0
	setCRC(img[off:off+int64(f.sb.inodeSize)], inodeCRCOff)
	if _, err := reopen(t, img).Lstat("short/f1"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("inode with an invalid file type: got %v", err)
	}
}

func TestCorruptDirBlockIsLocal(t *testing.T) {
	img, f := v5Image(t)
	_, ip := inodeOffset(t, f, "leaf")
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		t.Fatal(err)
	}
	boff, err := f.sb.fsbToByte(ex[0].block)
	if err != nil {
		t.Fatal(err)
	}
	blk := img[boff : boff+int64(f.sb.dirBlkSize)]
	blk[dataHdrV5+8] = 0xff // first entry's name length runs past the block
	setCRC(blk, dataCRCOff)
	g := reopen(t, img)
	if _, err := g.ReadDir("leaf"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt directory block: got %v, want ErrCorrupt", err)
	}
	if _, err := g.ReadDir("block"); err != nil {
		t.Fatalf("other directory: %v", err)
	}
	if _, err := g.Stat("leaf"); err != nil {
		t.Fatalf("the corrupt directory's own inode: %v", err)
	}
}

func TestBmbtLoop(t *testing.T) {
	img, f := v5Image(t)
	_, ip := inodeOffset(t, f, "fragmented_more")
	level, numrecs := be.Uint16(ip.dfork), be.Uint16(ip.dfork[2:])
	if level < 2 || numrecs == 0 {
		t.Fatalf("fixture bmbt root level %d with %d records", level, numrecs)
	}
	maxrecs := (len(ip.dfork) - 4) / 16
	child := be.Uint64(ip.dfork[4+maxrecs*8:])
	off, err := f.sb.fsbToByte(child)
	if err != nil {
		t.Fatal(err)
	}
	// Point the child's first pointer back at itself, and make it claim the level it expects there.
	blk := img[off : off+int64(f.sb.blockSize)]
	maxNode := (len(blk) - lblockHdrV5) / 16
	be.PutUint64(blk[lblockHdrV5+maxNode*8:], child)
	be.PutUint16(blk[4:], level-1)
	setCRC(blk, lblockCRCOff)
	withTimeout(t, func() {
		_, err := reopen(t, img).Open("fragmented_more")
		t.Log(err)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("bmbt loop: got %v, want ErrCorrupt", err)
		}
	})
}

func TestAttrLeafLoop(t *testing.T) {
	img, f := v5Image(t)
	_, ip := inodeOffset(t, f, "xattr_node")
	ex, err := f.forkExtents(ip, true)
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.attrBlock(ip, ex, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := uint64(be.Uint32(root[daNodeHdrV5+4:]))
	i := findExtent(ex, first)
	off, err := f.sb.fsbToByte(ex[i].block + first - ex[i].off)
	if err != nil {
		t.Fatal(err)
	}
	leaf := img[off : off+int64(f.sb.blockSize)]
	be.PutUint32(leaf, uint32(first)) // forw points at itself
	setCRC(leaf, daCRCOff)
	withTimeout(t, func() {
		_, err := reopen(t, img).ListXattr("xattr_node")
		t.Log(err)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("attribute leaf loop: got %v, want ErrCorrupt", err)
		}
	})
}

func TestTruncatedVolume(t *testing.T) {
	img := gunzipFixture(t, "v5.img.gz")
	if _, err := Open(bytes.NewReader(img[:len(img)/2]), int64(len(img)/2)); err == nil {
		t.Fatal("half a volume opened without error")
	}
	if _, err := Open(bytes.NewReader(img[:100]), 100); err == nil {
		t.Fatal("100-byte volume opened without error")
	}
	bad := append([]byte(nil), img[:1<<20]...)
	bad[0] = 'Y'
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Fatal("volume without XFSB magic opened")
	}
}

func TestPathErrors(t *testing.T) {
	_, f := v5Image(t)
	cases := []struct {
		name string
		want error
	}{
		{"nonexistent", fs.ErrNotExist},
		{"tiny/below_a_file", nil},
		{"/absolute", fs.ErrInvalid},
		{"link_dangling", fs.ErrNotExist},
	}
	for _, c := range cases {
		_, err := f.Stat(c.name)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Stat(%q): %v, want %v", c.name, err, c.want)
		}
	}
	if got, err := f.ReadLink("link_abs"); err != nil || got != "/short/f1" {
		t.Errorf("ReadLink(link_abs) = %q, %v", got, err)
	}
	if fi, err := f.Stat("link_abs"); err != nil || fi.Size() != 100 {
		t.Errorf("Stat through an absolute link: %v, %v", fi, err)
	}
	if _, err := f.GetXattr("tiny", "user.absent"); !errors.Is(err, fsys.ErrNoXattr) {
		t.Errorf("absent xattr: %v", err)
	}
}
