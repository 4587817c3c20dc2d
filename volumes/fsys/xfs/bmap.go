package xfs

import (
	"fmt"
	"math"
	"sort"
)

// extent maps a run of file blocks to volume blocks.
type extent struct {
	off       uint64 // first file block
	block     uint64 // first filesystem block (AG-encoded)
	count     uint64
	unwritten bool
}

const (
	bmbtRecSize    = 16
	maxFileBlock   = 1<<54 - 1
	bmbtMaxLevels  = 9 // the kernel's limit is far lower for any real volume
	lblockHdrV4    = 24
	lblockHdrV5    = 72
	lblockCRCOff   = 64
	lblockOwnerOff = 56
)

// decodeExtent unpacks one 128-bit big-endian bmbt record.
func decodeExtent(b []byte) extent {
	l0, l1 := be.Uint64(b), be.Uint64(b[8:])
	return extent{
		unwritten: l0>>63 != 0,
		off:       (l0 & (1<<63 - 1)) >> 9,
		block:     (l0&(1<<9-1))<<43 | l1>>21,
		count:     l1 & (1<<21 - 1),
	}
}

// parseExtentList decodes n records from an inode fork or a bmbt leaf.
func parseExtentList(b []byte, n uint64, out []extent) ([]extent, error) {
	if n > uint64(len(b)/bmbtRecSize) {
		return nil, corruptf("%d extent records in %d bytes", n, len(b))
	}
	for i := uint64(0); i < n; i++ {
		out = append(out, decodeExtent(b[i*bmbtRecSize:]))
	}
	return out, nil
}

// forkExtents returns the sorted, checked extent map of one fork of ip.
func (f *FS) forkExtents(ip *inode, attr bool) ([]extent, error) {
	key := extentKey{ino: ip.ino, attr: attr}
	if ex, ok := f.redone[key]; ok {
		return ex, nil
	}
	if ex, ok := f.extents.Get(key); ok {
		return ex, nil
	}
	format, lit, n := ip.format, ip.dfork, ip.nextents
	if attr {
		format, lit, n = ip.aformat, ip.afork, ip.anextents
	}
	var ex []extent
	var err error
	switch format {
	case fmtExtents:
		ex, err = parseExtentList(lit, n, nil)
	case fmtBtree:
		ex, err = f.bmbtExtents(ip, lit, n)
	default:
		return nil, corruptf("%v: fork format %d has no extent map", ip, format)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", ip, err)
	}
	if err := f.checkExtents(ex); err != nil {
		return nil, fmt.Errorf("%v: %w", ip, err)
	}
	f.extents.Put(key, ex, len(ex)+1)
	return ex, nil
}

func (f *FS) checkExtents(ex []extent) error {
	var next uint64
	for i, e := range ex {
		if e.off < next || e.off+e.count > maxFileBlock {
			return corruptf("extent %d at file block %d overlaps or is out of order", i, e.off)
		}
		if err := f.sb.checkRun(e.block, e.count); err != nil {
			return err
		}
		next = e.off + e.count
	}
	return nil
}

// bmbtExtents walks a btree-format fork: the root lives in the inode, the rest in long-format blocks.
func (f *FS) bmbtExtents(ip *inode, root []byte, nextents uint64) ([]extent, error) {
	if len(root) < 4 {
		return nil, corruptf("bmbt root too small")
	}
	level, numrecs := int(be.Uint16(root)), int(be.Uint16(root[2:]))
	maxrecs := (len(root) - 4) / 16
	if level == 0 || level > bmbtMaxLevels || numrecs == 0 || numrecs > maxrecs {
		return nil, corruptf("bmbt root level %d with %d records (max %d)", level, numrecs, maxrecs)
	}
	w := bmbtWalk{f: f, ip: ip, budget: nextents, seen: map[uint64]bool{}}
	ptrs := root[4+maxrecs*8:]
	for i := 0; i < numrecs; i++ {
		if err := w.visit(be.Uint64(ptrs[i*8:]), level-1); err != nil {
			return nil, err
		}
	}
	if uint64(len(w.out)) != nextents {
		return nil, corruptf("bmbt holds %d extents, inode says %d", len(w.out), nextents)
	}
	return w.out, nil
}

type bmbtWalk struct {
	f      *FS
	ip     *inode
	budget uint64
	seen   map[uint64]bool
	out    []extent
}

func (w *bmbtWalk) visit(fsb uint64, level int) error {
	if w.seen[fsb] {
		return corruptf("bmbt block %#x reached twice", fsb)
	}
	w.seen[fsb] = true
	if uint64(len(w.seen)) > w.f.sb.dblocks {
		return corruptf("bmbt larger than the volume")
	}
	sb := w.f.sb
	b, err := w.f.readBlocks(fsb, 1)
	if err != nil {
		return err
	}
	hdr, magic := lblockHdrV4, "BMAP"
	if sb.crc {
		hdr, magic = lblockHdrV5, "BMA3"
	}
	if err := checkBmbtBlock(b, sb, w.ip.ino, magic, hdr); err != nil {
		return fmt.Errorf("bmbt block %#x: %w", fsb, err)
	}
	if got := int(be.Uint16(b[4:])); got != level {
		return corruptf("bmbt block %#x: level %d, expected %d", fsb, got, level)
	}
	numrecs := uint64(be.Uint16(b[6:]))
	if level == 0 {
		if uint64(len(w.out))+numrecs > w.budget {
			return corruptf("bmbt block %#x: more extents than the inode records", fsb)
		}
		w.out, err = parseExtentList(b[hdr:], numrecs, w.out)
		return err
	}
	maxrecs := uint64((len(b) - hdr) / 16)
	if numrecs == 0 || numrecs > maxrecs {
		return corruptf("bmbt node %#x: %d records (max %d)", fsb, numrecs, maxrecs)
	}
	ptrs := b[hdr+int(maxrecs)*8:]
	for i := uint64(0); i < numrecs; i++ {
		if err := w.visit(be.Uint64(ptrs[i*8:]), level-1); err != nil {
			return err
		}
	}
	return nil
}

// checkBmbtBlock validates a long-format btree block header (magic, v5 CRC and owner).
func checkBmbtBlock(b []byte, sb *superblock, owner uint64, magic string, hdr int) error {
	if len(b) < hdr || string(b[0:4]) != magic {
		return corruptf("bad bmbt magic %q", b[0:min(4, len(b))])
	}
	if sb.crc {
		if !crcOK(b, lblockCRCOff) {
			return corruptf("bmbt checksum mismatch")
		}
		if got := be.Uint64(b[lblockOwnerOff:]); got != owner {
			return corruptf("bmbt block owned by inode %d, not %d", got, owner)
		}
	}
	return nil
}

// findExtent returns the index of the first extent ending after file block blk.
func findExtent(ex []extent, blk uint64) int {
	return sort.Search(len(ex), func(i int) bool { return ex[i].off+ex[i].count > blk })
}

// blockByte is the byte offset of a file block, saturated where it would pass the largest int64.
func (f *FS) blockByte(blk uint64) int64 {
	if blk > math.MaxInt64>>f.sb.blockLog {
		return math.MaxInt64
	}
	return int64(blk << f.sb.blockLog)
}

// readMapped fills p with the fork's bytes from byte offset off: holes and unwritten extents read as zeros.
func (f *FS) readMapped(ex []extent, p []byte, off int64) error {
	bs := int64(f.sb.blockSize)
	for len(p) > 0 {
		blk := uint64(off / bs)
		i := findExtent(ex, blk)
		if i == len(ex) || ex[i].off > blk {
			// hole up to the next extent (or to the end of p)
			n := int64(len(p))
			if i < len(ex) {
				n = min(n, f.blockByte(ex[i].off)-off)
			}
			clear(p[:n])
			p, off = p[n:], off+n
			continue
		}
		e := ex[i]
		end := f.blockByte(e.off + e.count)
		n := min(int64(len(p)), end-off)
		if e.unwritten {
			clear(p[:n])
		} else {
			base, err := f.sb.fsbToByte(e.block)
			if err != nil {
				return err
			}
			if err := f.readAt(p[:n], base+off-int64(e.off)*bs); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}
