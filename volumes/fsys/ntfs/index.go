package ntfs

import (
	"encoding/binary"
	"log/slog"
	"math/bits"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Filename namespaces of $FILE_NAME.
const (
	nsPOSIX    = 0
	nsWin32    = 1
	nsDOS      = 2
	nsWin32DOS = 3
)

// dirEntry is one name in a directory's $I30 index.
type dirEntry struct {
	name      string
	rec       uint64
	seq       uint16 // sequence number the entry expects the record to carry (0: unchecked)
	namespace uint8
	// second marks a name of a directory that an earlier name (in sorted order) of this index already
	// lists: a directory has one name, so this one is left out of listings and refused by lookups.
	second bool
}

// listDir returns the names of a directory from every in-use node of its $I30 B+tree, sorted.
// Reading the nodes in file order (root, then each allocated index block) needs no tree descent,
// so a corrupt child pointer can neither loop nor be followed out of the index.
func (f *FS) listDir(n *inode) ([]dirEntry, error) {
	if d, ok := f.dirs.Get(n.num); ok {
		return d, nil
	}
	root := n.find(attrIndexRoot, "$I30")
	if root == nil || !root.resident {
		return nil, corrupt("MFT record %d: directory has no $I30 index root", n.num)
	}
	v := root.value
	if len(v) < 0x20 {
		return nil, corrupt("MFT record %d: $I30 index root truncated", n.num)
	}
	if t := binary.LittleEndian.Uint32(v); t != attrFileName {
		return nil, corrupt("MFT record %d: $I30 indexes attribute %#x, not file names", n.num, t)
	}
	blockSize := binary.LittleEndian.Uint32(v[8:])
	var out []dirEntry
	add := func(e dirEntry) {
		if e.namespace == nsDOS {
			return // the 8.3 alias of a name listed under its long form
		}
		if e.rec == n.num && e.name == "." {
			return
		}
		if e.name == "" || strings.ContainsAny(e.name, "/\x00") || e.name == ".." || e.name == "." {
			return
		}
		if !f.opt.ShowSystemFiles && e.rec < recFirstUser {
			return
		}
		out = append(out, e)
	}
	if err := parseIndexNode(v[0x10:], add); err != nil {
		return nil, wrapAt(err, n.num)
	}
	if alloc := n.find(attrIndexAlloc, "$I30"); alloc != nil {
		if blockSize < 512 || blockSize > 1<<16 || bits.OnesCount32(blockSize) != 1 {
			return nil, corrupt("MFT record %d: bad index block size %d", n.num, blockSize)
		}
		s, err := f.newStream(n.num, alloc)
		if err != nil {
			return nil, err
		}
		if s.size > f.size {
			// Index blocks are never sparse: more of them than the volume holds is damage, and
			// bounding the count keeps the scan below from running away.
			return nil, corrupt("MFT record %d: $I30 allocation of %d bytes exceeds the volume", n.num, s.size)
		}
		nblocks := s.size / int64(blockSize)
		var bitmap []byte
		if bm := n.find(attrBitmap, "$I30"); bm != nil {
			if bitmap, err = f.attrValue(n.num, bm, nblocks/8+8); err != nil {
				return nil, err
			}
		}
		buf := make([]byte, blockSize)
		for i := int64(0); i < nblocks; i++ {
			if bitmap != nil && (i/8 >= int64(len(bitmap)) || bitmap[i/8]&(1<<(i%8)) == 0) {
				continue
			}
			if _, err := s.ReadAt(buf, i*int64(blockSize)); err != nil {
				return nil, err
			}
			if string(buf[:4]) != "INDX" {
				continue // never written (Windows leaves unused blocks zero even when marked)
			}
			if err := applyFixups(buf, "INDX"); err != nil {
				return nil, wrapAt(err, n.num)
			}
			if err := parseIndexNode(buf[0x18:], add); err != nil {
				return nil, wrapAt(err, n.num)
			}
		}
	}
	slices.SortFunc(out, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	out = slices.CompactFunc(out, func(a, b dirEntry) bool { return a.name == b.name })
	f.markSecondLinks(out)
	cost := 1
	for _, e := range out {
		cost += len(e.name) + 32
	}
	f.dirs.Put(n.num, out, cost)
	return out, nil
}

// markSecondLinks marks every entry naming a directory record that an earlier entry already names (a
// re-pointed entry would list the directory twice and double a walk at every level). Files may have
// several names; only a record named twice is loaded to tell, so a normal listing costs one map pass.
func (f *FS) markSecondLinks(ents []dirEntry) {
	isDir := func(e dirEntry) bool {
		n, err := f.inode(e.rec)
		return err == nil && n.isDir()
	}
	for i := range fsys.SecondDirNames(ents, func(e dirEntry) uint64 { return e.rec }, isDir) {
		ents[i].second = true
		slog.Debug("ntfs: second name of a directory left out", "name", ents[i].name, "record", ents[i].rec)
	}
}

// parseIndexNode walks the entries of one index node (its header first) and hands each name to add.
func parseIndexNode(b []byte, add func(dirEntry)) error {
	if len(b) < 16 {
		return corrupt("index node header truncated")
	}
	start := int(binary.LittleEndian.Uint32(b))
	end := int(binary.LittleEndian.Uint32(b[4:]))
	if end > len(b) || start < 16 || start > end {
		return corrupt("index node: entries %d..%d outside the node of %d bytes", start, end, len(b))
	}
	for off := start; ; {
		if off+16 > end {
			return corrupt("index node: entry at %d runs past the node end %d", off, end)
		}
		ref := binary.LittleEndian.Uint64(b[off:])
		elen := int(binary.LittleEndian.Uint16(b[off+8:]))
		klen := int(binary.LittleEndian.Uint16(b[off+10:]))
		flags := binary.LittleEndian.Uint16(b[off+12:])
		if elen < 16 || elen%8 != 0 || off+elen > end {
			return corrupt("index node: entry at %d has bad length %d", off, elen)
		}
		if flags&2 != 0 {
			return nil // the last entry carries no key
		}
		if 16+klen > elen || klen < 0x42 {
			return corrupt("index node: entry at %d has bad key length %d", off, klen)
		}
		key := b[off+16 : off+16+klen]
		nameLen := int(key[0x40])
		if 0x42+2*nameLen > klen {
			return corrupt("index node: file name at %d overruns its key", off)
		}
		raw := key[0x42 : 0x42+2*nameLen]
		if !validUTF16(raw) {
			off += elen
			continue // like ntfs-3g, skip names with unpaired surrogates: no Unix form
		}
		add(dirEntry{
			name:      decodeUTF16(raw),
			rec:       ref & 0xFFFFFFFFFFFF,
			seq:       uint16(ref >> 48),
			namespace: key[0x41],
		})
		off += elen
	}
}

// validUTF16 reports whether a little-endian UTF-16 name has no unpaired surrogate.
func validUTF16(b []byte) bool {
	for i := 0; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		switch {
		case u >= 0xD800 && u < 0xDC00:
			if i+3 >= len(b) {
				return false
			}
			if v := binary.LittleEndian.Uint16(b[i+2:]); v < 0xDC00 || v >= 0xE000 {
				return false
			}
			i += 2
		case u >= 0xDC00 && u < 0xE000:
			return false
		}
	}
	return true
}
