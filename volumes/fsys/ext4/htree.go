package ext4

import (
	"encoding/binary"
	"fmt"
	"slices"
)

const (
	compatDirIndex = 0x20
	flagEncrypt    = 0x800
	flagCasefold   = 0x40000000
	// Directories up to this many blocks are simply read whole; larger indexed ones are searched
	// through their hash index until something lists them.
	htreeMinBlocks = 16
	// Bound on leaf blocks visited for one name (hash collisions spill into following leaves).
	htreeMaxLeaves = 64
)

// htreeLevel is one index node on the way down: its entries and which one was followed.
type htreeLevel struct {
	entries []byte // count*8 bytes: entry 0 is {limit,count,block}, entry i>0 is {hash,block}
	count   int
	at      int
}

func (l *htreeLevel) hash(i int) uint32 { return binary.LittleEndian.Uint32(l.entries[8*i:]) }
func (l *htreeLevel) block(i int) uint32 {
	return binary.LittleEndian.Uint32(l.entries[8*i+4:]) & 0x0fffffff
}

// htreeLookup finds name through the directory's hash index, reading a handful of blocks instead of
// the whole directory. usable is false when the index cannot be trusted or used; the caller then
// scans the directory. With usable true, found=false means the name is absent.
func (f *FS) htreeLookup(in *inode, name string) (ent dirent, found, usable bool) {
	if f.sb.compat&compatDirIndex == 0 || in.flags&flagIndex == 0 || in.flags&(flagInlineData|flagEncrypt|flagCasefold) != 0 {
		return dirent{}, false, false
	}
	d, err := f.dataOf(in)
	if err != nil {
		return dirent{}, false, false
	}
	bs := int(f.sb.blockSize)
	read := func(lblk uint32) []byte {
		if int64(lblk+1)*int64(bs) > in.st.Size {
			return nil
		}
		b := make([]byte, bs)
		if _, err := d.ReadAt(b, int64(lblk)*int64(bs)); err != nil {
			return nil
		}
		return b
	}
	root := read(0)
	if root == nil {
		return dirent{}, false, false
	}
	le := binary.LittleEndian
	infoLen := int(root[29])
	levels := int(root[30])
	maxLevels := 2
	if f.sb.has(incompatLargeDir) {
		maxLevels = 3
	}
	if le.Uint32(root[24:]) != 0 || infoLen != 8 || levels >= maxLevels || root[6] != 1 || root[18] != 2 {
		return dirent{}, false, false
	}
	version := root[28]
	if version <= hashTea && f.hashUnsigned {
		version += hashLegacyUnsigned
	}
	hash, ok := dirHash([]byte(name), version, f.hashSeed)
	if !ok {
		return dirent{}, false, false
	}
	node, ok := indexNode(root, 24+infoLen)
	if !ok {
		return dirent{}, false, false
	}
	path := []htreeLevel{node}
	for len(path) <= levels {
		lv := &path[len(path)-1]
		lv.at = probe(lv, hash)
		b := read(lv.block(lv.at))
		if b == nil {
			return dirent{}, false, false
		}
		// An interior node is one empty directory entry spanning the block, then the entries.
		if le.Uint32(b[0:]) != 0 || decodeRecLen(le.Uint16(b[4:]), f.sb.blockSize) != bs {
			return dirent{}, false, false
		}
		n, ok := indexNode(b, 8)
		if !ok {
			return dirent{}, false, false
		}
		path = append(path, n)
	}
	leafLevel := &path[len(path)-1]
	leafLevel.at = probe(leafLevel, hash)
	for range htreeMaxLeaves {
		leaf := read(leafLevel.block(leafLevel.at))
		if leaf == nil {
			return dirent{}, false, false
		}
		var parent uint32
		ents := parseDirBlock(leaf, f.sb.has(incompatFiletype), f.sb.blockSize, f.sb.inodesCount, nil, &parent, logDamage(in.ino, int64(leafLevel.block(leafLevel.at))))
		if i := slices.IndexFunc(ents, func(e dirent) bool { return e.name == name }); i >= 0 {
			return ents[i], true, true
		}
		// Names with the same hash may continue in the next leaf, whose index hash then has the
		// collision bit set; any other next hash means the name is not here.
		next, ok := advance(path)
		if !ok {
			return dirent{}, false, true
		}
		if next&^1 != hash {
			return dirent{}, false, true
		}
		// Follow the leftmost entries down from the level that moved.
		if !f.descendLeftmost(path, read) {
			return dirent{}, false, false
		}
	}
	return dirent{}, false, false
}

// indexNode reads a {limit, count} header and the entries after it at off.
func indexNode(b []byte, off int) (htreeLevel, bool) {
	if off+8 > len(b) {
		return htreeLevel{}, false
	}
	le := binary.LittleEndian
	limit, count := int(le.Uint16(b[off:])), int(le.Uint16(b[off+2:]))
	if count == 0 || count > limit || off+8*limit > len(b) {
		return htreeLevel{}, false
	}
	return htreeLevel{entries: b[off : off+8*count], count: count}, true
}

// probe returns the last entry whose hash is not above hash (entry 0 covers everything below entry 1).
func probe(l *htreeLevel, hash uint32) int {
	lo, hi := 1, l.count-1
	for lo <= hi {
		m := lo + (hi-lo)/2
		if l.hash(m) > hash {
			hi = m - 1
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// advance moves the deepest level to its next entry, carrying into parent levels, and returns that
// entry's hash. Levels below the one that moved are marked for descendLeftmost with at = -1.
func advance(path []htreeLevel) (uint32, bool) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].at+1 < path[i].count {
			path[i].at++
			for j := i + 1; j < len(path); j++ {
				path[j].at = -1
			}
			return path[i].hash(path[i].at), true
		}
	}
	return 0, false
}

// descendLeftmost reloads the levels marked by advance, following each parent's chosen entry and
// starting at entry 0.
func (f *FS) descendLeftmost(path []htreeLevel, read func(uint32) []byte) bool {
	for i := 1; i < len(path); i++ {
		if path[i].at != -1 {
			continue
		}
		b := read(path[i-1].block(path[i-1].at))
		if b == nil {
			return false
		}
		n, ok := indexNode(b, 8)
		if !ok {
			return false
		}
		path[i] = n
	}
	return true
}

// parentOf returns the inode named by a directory's ".." entry, reading only its first block when
// the directory is large and not cached.
func (f *FS) parentOf(in *inode) (uint32, error) {
	if d, ok := f.dirs.get(in.ino); ok {
		return d.parent, nil
	}
	if p, ok := f.parents.get(in.ino); ok {
		return p, nil
	}
	bs := int64(f.sb.blockSize)
	if in.flags&flagInlineData != 0 || in.st.Size <= htreeMinBlocks*bs {
		d, err := f.directory(in)
		if err != nil {
			return 0, err
		}
		return d.parent, nil
	}
	d, err := f.dataOf(in)
	if err != nil {
		return 0, fmt.Errorf("directory inode %d: %w", in.ino, err)
	}
	b := make([]byte, bs)
	if _, err := d.ReadAt(b, 0); err != nil {
		return 0, fmt.Errorf("directory inode %d: %w", in.ino, err)
	}
	var parent uint32
	parseDirBlock(b, f.sb.has(incompatFiletype), f.sb.blockSize, f.sb.inodesCount, nil, &parent, logDamage(in.ino, 0))
	f.parents.put(in.ino, parent, 1)
	return parent, nil
}
