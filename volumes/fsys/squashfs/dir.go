package squashfs

import (
	"fmt"
	"sync"
)

// dirEntry is one name in a directory listing.
type dirEntry struct {
	name   string
	typ    uint16 // basic inode type
	ref    uint64 // inode reference
	number uint32 // inode number
}

// dirListing is a parsed directory with a name index.
type dirListing struct {
	entries []dirEntry
	byName  map[string]int
}

// dirCache keeps parsed listings, keyed by the directory's inode reference, bounded by entry count.
type dirCache struct {
	mu      sync.Mutex
	max     int
	total   int
	byRef   map[uint64]*dirListing
	arrival []uint64 // FIFO eviction order
}

func (c *dirCache) get(ref uint64) *dirListing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byRef[ref]
}

func (c *dirCache) put(ref uint64, l *dirListing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byRef[ref]; ok || len(l.entries) > c.max {
		return
	}
	// Each listing costs one more than its entries, so empty directories also count against the bound.
	c.byRef[ref] = l
	c.arrival = append(c.arrival, ref)
	c.total += len(l.entries) + 1
	for c.total > c.max {
		old := c.arrival[0]
		c.arrival = c.arrival[1:]
		c.total -= len(c.byRef[old].entries) + 1
		delete(c.byRef, old)
	}
}

// listing returns the entries of the directory inode in (whose reference is ref).
func (f *FS) listing(ref uint64, in *inode) (*dirListing, error) {
	if l := f.dirs.get(ref); l != nil {
		return l, nil
	}
	entries, err := f.parseDir(in)
	if err != nil {
		return nil, fmt.Errorf("directory inode %d: %w", in.number, err)
	}
	l := &dirListing{entries: entries, byName: make(map[string]int, len(entries))}
	subdirs := map[uint64]string{} // a directory has one name: a second makes 2^depth paths of a chain
	for i, e := range entries {
		if _, dup := l.byName[e.name]; dup {
			return nil, fmt.Errorf("%w: directory inode %d lists %q twice", ErrCorrupt, in.number, e.name)
		}
		if e.typ == typeDir {
			if other, dup := subdirs[e.ref]; dup {
				return nil, fmt.Errorf("%w: directory inode %d lists one directory as both %q and %q", ErrCorrupt, in.number, other, e.name)
			}
			subdirs[e.ref] = e.name
		}
		l.byName[e.name] = i
	}
	f.dirs.put(ref, l)
	return l, nil
}

// parseDir decodes a directory listing: runs of entries, each run led by a header naming the inode
// metadata block its entries live in. The stored size counts 3 bytes for "." and "..".
func (f *FS) parseDir(in *inode) ([]dirEntry, error) {
	if in.size <= 3 {
		return nil, nil
	}
	remain := int64(in.size) - 3
	m := &metaReader{f: f, pos: metaPos{block: int64(f.sb.dirTableStart) + int64(in.dirBlk), offset: int(in.dirOff)}}
	if m.pos.block >= f.end || m.pos.offset >= metaBlockSize {
		return nil, fmt.Errorf("%w: listing at %d+%d outside image", ErrCorrupt, in.dirBlk, in.dirOff)
	}
	var out []dirEntry
	for remain > 0 {
		if remain < 12 {
			return nil, fmt.Errorf("%w: %d stray bytes at end of listing", ErrCorrupt, remain)
		}
		count, start, base := m.u32()+1, m.u32(), m.u32()
		remain -= 12
		if m.err != nil {
			return nil, m.err
		}
		if count > 256 || len(out)+int(count) > maxDirEntries {
			return nil, fmt.Errorf("%w: directory header claims %d entries", ErrCorrupt, count)
		}
		for range count {
			if remain < 8 {
				return nil, fmt.Errorf("%w: listing ends inside an entry", ErrCorrupt)
			}
			off, delta, typ, nameLen := m.u16(), int16(m.u16()), m.u16(), int(m.u16())+1
			remain -= 8 + int64(nameLen)
			if m.err != nil {
				return nil, m.err
			}
			if remain < 0 || nameLen > 256 {
				return nil, fmt.Errorf("%w: entry name of %d bytes overruns the listing", ErrCorrupt, nameLen)
			}
			name := string(m.bytes(nameLen))
			if m.err != nil {
				return nil, m.err
			}
			if typ < typeDir || typ > typeSocket || !validName(name) {
				return nil, fmt.Errorf("%w: entry %q with type %d", ErrCorrupt, name, typ)
			}
			out = append(out, dirEntry{name: name, typ: typ,
				ref: uint64(start)<<16 | uint64(off), number: uint32(int64(base) + int64(delta))})
		}
	}
	return out, nil
}

// maxDirEntries bounds one listing, so a hostile directory size cannot exhaust memory.
const maxDirEntries = 1 << 22

func validName(n string) bool {
	if n == "" || n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] == '/' || n[i] == 0 {
			return false
		}
	}
	return true
}
