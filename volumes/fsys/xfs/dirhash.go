package xfs

import (
	"fmt"
	"math/bits"
	"sort"
)

// Directory hash-index blocks (above dirLeafOffset): LEAF1 for single-leaf directories, LEAFN under a
// da-btree of node blocks for larger ones.
const (
	dirLeaf1MagicV4 = 0xd2f1
	dirLeaf1MagicV5 = 0x3df1
	dirLeafNMagicV4 = 0xd2ff
	dirLeafNMagicV5 = 0x3dff
	dirLeafHdrV4    = 16
	dirLeafHdrV5    = 64
	// Directories whose data exceeds this are looked up through the hash index instead of being read
	// whole into a name map.
	hashLookupMinSize = 64 << 10
	maxHashLeaves     = 1 << 16
)

// daHash is the XFS directory and attribute name hash: 7-bit rotations, four bytes at a time.
func daHash(name string) uint32 {
	var h uint32
	for ; len(name) >= 4; name = name[4:] {
		h = uint32(name[0])<<21 ^ uint32(name[1])<<14 ^ uint32(name[2])<<7 ^ uint32(name[3]) ^ bits.RotateLeft32(h, 7*4)
	}
	switch len(name) {
	case 3:
		return uint32(name[0])<<14 ^ uint32(name[1])<<7 ^ uint32(name[2]) ^ bits.RotateLeft32(h, 7*3)
	case 2:
		return uint32(name[0])<<7 ^ uint32(name[1]) ^ bits.RotateLeft32(h, 7*2)
	case 1:
		return uint32(name[0]) ^ bits.RotateLeft32(h, 7)
	}
	return h
}

// leafEntry is one {hash, data address} pair of a directory hash index; address counts 8-byte units
// of the directory's data space, 0 marks a stale entry.
type leafEntry struct{ hash, addr uint32 }

func parseLeafEntries(b []byte, off, count int) ([]leafEntry, error) {
	if count < 0 || off < 0 || off+count*8 > len(b) {
		return nil, corruptf("hash index of %d entries overruns its block", count)
	}
	out := make([]leafEntry, count)
	for i := range out {
		out[i] = leafEntry{be.Uint32(b[off+i*8:]), be.Uint32(b[off+i*8+4:])}
	}
	return out, nil
}

// hashLookup finds name in an extent- or btree-format directory through its hash index.
func (f *FS) hashLookup(ip *inode, name string) (dirent, bool, error) {
	ex, err := f.forkExtents(ip, false)
	if err != nil {
		return dirent{}, false, err
	}
	sb := f.sb
	if len(ex) == 0 {
		return dirent{}, false, corruptf("directory without blocks")
	}
	h := daHash(name)
	leafBlk := uint64(dirLeafOffset) >> sb.blockLog
	dbs := int(sb.dirBlkSize)
	buf := make([]byte, dbs)
	last := ex[len(ex)-1]
	if last.off < leafBlk { // block form: the index sits at the end of the only block
		if err := f.readMapped(ex, buf, 0); err != nil {
			return dirent{}, false, err
		}
		count := int(be.Uint32(buf[dbs-blockTailSize:]))
		ents, err := parseLeafEntries(buf, dbs-blockTailSize-count*8, count)
		if err != nil {
			return dirent{}, false, err
		}
		return f.matchLeaf(ip, ex, ents, h, name)
	}
	blk := leafBlk
	v4Node, v5Node := uint16(daNodeMagicV4), uint16(daNodeMagicV5)
	for depth := 0; ; depth++ {
		if depth > maxDaDepth {
			return dirent{}, false, corruptf("directory hash btree deeper than %d", maxDaDepth)
		}
		if err := f.readMapped(ex, buf, int64(blk<<sb.blockLog)); err != nil {
			return dirent{}, false, err
		}
		if magic := be.Uint16(buf[8:]); magic != v4Node && magic != v5Node {
			break
		}
		child, ok, err := daNodeChild(buf, sb, ip.ino, h)
		if err != nil || !ok {
			return dirent{}, false, err
		}
		blk = uint64(child) // da block numbers count filesystem blocks of the directory

	}
	// Walk leaves from here while the hash can continue into the next one (collisions span leaves).
	var all []leafEntry
	for n := 0; ; n++ {
		if n > maxHashLeaves {
			return dirent{}, false, corruptf("directory hash leaves loop")
		}
		ents, forw, err := parseDirLeaf(buf, sb, ip.ino)
		if err != nil {
			return dirent{}, false, fmt.Errorf("hash leaf at block %d: %w", blk, err)
		}
		all = append(all, ents...)
		if len(ents) == 0 || ents[len(ents)-1].hash > h || forw == 0 || uint64(forw) <= blk {
			break
		}
		blk = uint64(forw)
		if err := f.readMapped(ex, buf, int64(blk<<sb.blockLog)); err != nil {
			return dirent{}, false, err
		}
	}
	return f.matchLeaf(ip, ex, all, h, name)
}

// daNodeChild picks the child of a da-btree node whose hash range covers h.
func daNodeChild(b []byte, sb *superblock, owner uint64, h uint32) (uint32, bool, error) {
	if err := checkDaBlock(b, sb, owner, daNodeMagicV4, daNodeMagicV5); err != nil {
		return 0, false, err
	}
	hdr, count := daNodeHdrV4, int(be.Uint16(b[12:]))
	if sb.crc {
		hdr, count = daNodeHdrV5, int(be.Uint16(b[56:]))
	}
	ents, err := parseLeafEntries(b, hdr, count) // {hashval, before} has the same shape
	if err != nil {
		return 0, false, err
	}
	i := sort.Search(len(ents), func(i int) bool { return ents[i].hash >= h })
	if i == len(ents) {
		return 0, false, nil
	}
	return ents[i].addr, true, nil
}

// parseDirLeaf returns the entries and forward sibling of a LEAF1 or LEAFN block.
func parseDirLeaf(b []byte, sb *superblock, owner uint64) ([]leafEntry, uint32, error) {
	magic := be.Uint16(b[8:])
	v1, vn := uint16(dirLeaf1MagicV4), uint16(dirLeafNMagicV4)
	if sb.crc {
		v1, vn = dirLeaf1MagicV5, dirLeafNMagicV5
	}
	if magic != v1 && magic != vn {
		return nil, 0, corruptf("hash leaf magic %#x", magic)
	}
	if err := checkDaBlock(b, sb, owner, magic, magic); err != nil {
		return nil, 0, err
	}
	hdr, count := dirLeafHdrV4, int(be.Uint16(b[12:]))
	if sb.crc {
		hdr, count = dirLeafHdrV5, int(be.Uint16(b[56:]))
	}
	ents, err := parseLeafEntries(b, hdr, count)
	return ents, be.Uint32(b), err
}

// matchLeaf reads the data entries the index points at for hash h and compares their names.
func (f *FS) matchLeaf(ip *inode, ex []extent, ents []leafEntry, h uint32, name string) (dirent, bool, error) {
	i := sort.Search(len(ents), func(i int) bool { return ents[i].hash >= h })
	dbs := int64(f.sb.dirBlkSize)
	var buf []byte
	bufAt := int64(-1)
	for ; i < len(ents) && ents[i].hash == h; i++ {
		if ents[i].addr == 0 {
			continue // stale
		}
		off := int64(ents[i].addr) * 8
		blockAt := off / dbs * dbs
		if blockAt != bufAt {
			buf = make([]byte, dbs)
			if err := f.readMapped(ex, buf, blockAt); err != nil {
				return dirent{}, false, err
			}
			if _, err := parseDataBlock(buf, f.sb, ip.ino, nil); err != nil {
				return dirent{}, false, fmt.Errorf("data block at %d: %w", blockAt, err)
			}
			bufAt = blockAt
		}
		e, err := entryAt(buf, int(off-blockAt), f.sb.hasFType)
		if err != nil {
			return dirent{}, false, err
		}
		if e.name == name {
			return e, true, nil
		}
	}
	return dirent{}, false, nil
}

// entryAt decodes the data entry at pos of a checked data block.
func entryAt(b []byte, pos int, ftype bool) (dirent, error) {
	if pos+9 > len(b) || be.Uint16(b[pos:]) == freeTag {
		return dirent{}, corruptf("hash index points at %d, not at an entry", pos)
	}
	n := int(b[pos+8])
	if n == 0 || pos+9+n+1 > len(b) {
		return dirent{}, corruptf("entry at %d overruns", pos)
	}
	e := dirent{ino: be.Uint64(b[pos:]), name: string(b[pos+9 : pos+9+n])}
	if ftype {
		e.ftype = b[pos+9+n]
	}
	return e, nil
}
