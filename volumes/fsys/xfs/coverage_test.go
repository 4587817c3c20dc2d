package xfs

import (
	"testing"
)

// TestFixtureShapes pins down that the fixtures still exercise every on-disk format the reader handles:
// if mkfs or the kernel ever lays them out differently, the kernel comparison would silently test less.
func TestFixtureShapes(t *testing.T) {
	f := fixtureFS(t, "v5")
	if !f.sb.crc || !f.sb.hasFType || f.sb.agCount < 2 {
		t.Fatalf("v5 fixture geometry: crc %v ftype %v agcount %d", f.sb.crc, f.sb.hasFType, f.sb.agCount)
	}
	lookup := func(p string) *inode {
		t.Helper()
		ip, err := f.walk(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return ip
	}
	// dirBlockMagic returns the 4-byte magic of a data block, or the 2-byte da-btree magic (at offset 8)
	// of a leaf or node block.
	dirBlockMagic := func(p string, blk uint64) string {
		t.Helper()
		ip := lookup(p)
		ex, err := f.forkExtents(ip, false)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, f.sb.dirBlkSize)
		if err := f.readMapped(ex, b, int64(blk<<f.sb.blockLog)); err != nil {
			t.Fatal(err)
		}
		if blk >= uint64(dirLeafOffset)>>f.sb.blockLog {
			return string(b[8:10])
		}
		return string(b[:4])
	}
	leafBlk := uint64(dirLeafOffset) >> f.sb.blockLog
	if ip := lookup("short"); ip.format != fmtLocal || ip.aformat != fmtLocal {
		t.Errorf("short: format %d/%d, want shortform dir with shortform attrs", ip.format, ip.aformat)
	}
	if m := dirBlockMagic("block", 0); m != "XDB3" {
		t.Errorf("block: first block %q, want a block-form directory", m)
	}
	if m := dirBlockMagic("leaf", leafBlk); m != "\x3d\xf1" {
		t.Errorf("leaf: leaf block %x, want a single LEAF1 block", m)
	}
	if m := dirBlockMagic("node", leafBlk); m != "\x3e\xbe" {
		t.Errorf("node: block at the leaf offset %x, want a da-btree node", m)
	}
	if !dirHasHole(t, f, lookup("node")) {
		t.Error("node: no freed data block (hole) in the directory's data space")
	}
	if ip := lookup("btree"); ip.format != fmtBtree {
		t.Errorf("btree: directory data fork format %d, want btree", ip.format)
	}
	if ip := lookup("fragmented_more"); ip.format != fmtBtree || be.Uint16(ip.dfork) < 2 {
		t.Errorf("fragmented_more: format %d level %d, want a bmbt of depth >= 2", ip.format, be.Uint16(ip.dfork))
	}
	if ip := lookup("link_remote"); ip.format != fmtExtents {
		t.Errorf("link_remote: format %d, want a remote symlink", ip.format)
	}
	ex, err := f.forkExtents(lookup("prealloc"), false)
	if err != nil {
		t.Fatal(err)
	}
	unwritten := 0
	for _, e := range ex {
		if e.unwritten {
			unwritten++
		}
	}
	if unwritten == 0 {
		t.Error("prealloc: no unwritten extents")
	}
	attrs := map[string]func(ip *inode) bool{
		"xattr_short":  func(ip *inode) bool { return ip.aformat == fmtLocal },
		"xattr_leaf":   func(ip *inode) bool { return ip.aformat == fmtExtents && attrRootMagic(t, f, ip) == attrLeafMagicV5 },
		"xattr_node":   func(ip *inode) bool { return attrRootMagic(t, f, ip) == daNodeMagicV5 },
		"xattr_remote": func(ip *inode) bool { return hasRemoteAttr(t, f, ip) },
	}
	for p, ok := range attrs {
		if !ok(lookup(p)) {
			t.Errorf("%s: attribute fork not in the intended format", p)
		}
	}
}

func attrRootMagic(t *testing.T, f *FS, ip *inode) uint16 {
	ex, err := f.forkExtents(ip, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.attrBlock(ip, ex, 0)
	if err != nil {
		t.Fatal(err)
	}
	return be.Uint16(b[8:])
}

func hasRemoteAttr(t *testing.T, f *FS, ip *inode) bool {
	attrs, err := f.listAttrs(ip)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		if a.remote {
			return true
		}
	}
	return false
}

// dirHasHole reports a gap between the data blocks of a directory (below the hash index).
func dirHasHole(t *testing.T, f *FS, ip *inode) bool {
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(0)
	for _, e := range ex {
		if e.off >= uint64(dirLeafOffset)>>f.sb.blockLog {
			break
		}
		if e.off > next {
			return true
		}
		next = e.off + e.count
	}
	return false
}
