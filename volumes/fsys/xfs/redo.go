package xfs

import (
	"encoding/binary"
	"fmt"
)

// Finishing bmap intents, as the kernel's xfs_bui_item_recover does after replaying the log. A BUI is
// logged in the first transaction of a rolled chain (a reflink remap, a copy-on-write completion, an
// extent swap) and its BUD in the one that changes the fork; when a checkpoint falls between them the
// log holds the promise without the change. Recovery keeps it: a map (xfs_bmapi_remap) puts the
// extent into a hole of the inode's data or attribute fork and adds its blocks to the inode's count;
// an unmap (__xfs_bunmapi with XFS_BMAPI_REMAP) takes whatever the range maps out of the fork and
// subtracts those blocks, freeing nothing (the reference counts and free space the chain's CUIs, RUIs
// and EFIs change are not the tree's concern).
//
// The result is a view: the finished extent maps of the forks the intents name, and each inode's
// change of block count, which forkExtents and inode consult before the volume. The fork's on-disk
// format (extents in the inode or a btree) does not matter, and nothing is written.
const (
	bmapMap       = 1
	bmapUnmap     = 2
	bmapTypeMask  = 0xff
	bmapAttrFork  = 1 << 31
	bmapUnwritten = 1 << 30
	bmapRealtime  = 1 << 29
	buiSize       = 16 + 32 // xfs_bui_log_format with its one xfs_map_extent
	maxBmbtExtLen = 1<<21 - 1
	// maxRedoWork bounds the extent records the redo copies in all (each intent rewrites its fork's
	// map): a log of crafted intents against a file of a million extents must not take minutes. Real
	// logs hold a few unfinished intents, one or two per remap chain in flight.
	maxRedoWork = 1 << 26
)

// bmapIntent is one BUI's extent: map or unmap count blocks of a fork from file block off.
type bmapIntent struct {
	ino       uint64
	attr      bool
	unmap     bool
	unwritten bool
	off       uint64
	block     uint64
	count     uint64
}

func (b bmapIntent) String() string {
	op, fork := "map", "data"
	if b.unmap {
		op = "unmap"
	}
	if b.attr {
		fork = "attribute"
	}
	return fmt.Sprintf("bmap intent to %s %d blocks at file block %d (volume block %#x) of inode %d's %s fork", op, b.count, b.off, b.block, b.ino, fork)
}

// parseBUI decodes a BUI's format region (host order: little-endian) and checks it as
// xfs_bui_validate does; the kernel refuses to mount a log holding one that fails.
func parseBUI(sb *superblock, r []byte) (bmapIntent, error) {
	le := binary.LittleEndian
	if len(r) != buiSize || le.Uint32(r[4:]) != 1 {
		return bmapIntent{}, corruptf("bmap intent of %d bytes with %d extents", len(r), le.Uint32(r[4:min(8, len(r))]))
	}
	flags := le.Uint32(r[44:])
	b := bmapIntent{
		ino: le.Uint64(r[16:]), block: le.Uint64(r[24:]), off: le.Uint64(r[32:]), count: uint64(le.Uint32(r[40:])),
		attr: flags&bmapAttrFork != 0, unmap: flags&bmapTypeMask == bmapUnmap, unwritten: flags&bmapUnwritten != 0,
	}
	switch {
	case flags&^(bmapTypeMask|bmapAttrFork|bmapUnwritten|bmapRealtime) != 0 || (flags&bmapTypeMask != bmapMap && !b.unmap):
		return b, corruptf("bmap intent with flags %#x", flags)
	case flags&bmapRealtime != 0:
		return b, fmt.Errorf("%v: realtime extents are not supported", b)
	case b.count == 0 || b.count > maxBmbtExtLen || b.off > maxFileBlock-b.count:
		return b, corruptf("%v: bad length or file offset", b)
	}
	if _, err := sb.inodeByte(b.ino); err != nil {
		return b, fmt.Errorf("%v: %w", b, err)
	}
	if err := sb.checkRun(b.block, b.count); err != nil {
		return b, fmt.Errorf("%v: %w", b, err)
	}
	if off, _ := sb.fsbToByte(b.block); uint64(off)>>sb.blockLog+b.count > sb.dblocks {
		return b, corruptf("%v: past the volume's end", b)
	}
	return b, nil
}

// redoBmaps finishes the unfinished BUIs among intents, in log order, into f's view. It changes
// nothing when one cannot be finished; the error says which.
func (f *FS) redoBmaps(intents []openIntent) (int, error) {
	maps := map[extentKey][]extent{}
	delta := map[uint64]int64{}
	blocks := map[uint64]uint64{}
	n, work := 0, 0
	for _, o := range intents {
		if o.typ != liBUI {
			continue
		}
		bi, err := parseBUI(f.sb, o.region)
		if err != nil {
			return 0, err
		}
		key := extentKey{ino: bi.ino, attr: bi.attr}
		ex, ok := maps[key]
		if !ok {
			ip, err := f.inode(bi.ino)
			if err != nil {
				return 0, fmt.Errorf("%v: %w", bi, err)
			}
			format := ip.format
			if bi.attr {
				format = ip.aformat
				if ip.afork == nil {
					return 0, corruptf("%v: the inode has no attribute fork", bi)
				}
			}
			if format != fmtExtents && format != fmtBtree {
				return 0, corruptf("%v: the fork's format %d maps no extents", bi, format)
			}
			if ex, err = f.forkExtents(ip, bi.attr); err != nil {
				return 0, fmt.Errorf("%v: %w", bi, err)
			}
			blocks[bi.ino] = ip.nblocks
		}
		if work += len(ex); work > maxRedoWork {
			return 0, fmt.Errorf("%d bmap intents over files of up to %d extents: more work than the redo allows", n+1, len(ex))
		}
		ex, d, err := applyBmap(ex, bi)
		if err != nil {
			return 0, err
		}
		maps[key] = ex
		if delta[bi.ino] += d; int64(blocks[bi.ino])+delta[bi.ino] < 0 {
			return 0, corruptf("%v: the inode would own fewer than no blocks", bi)
		}
		n++
	}
	for ino := range blocks {
		if err := f.freeEOFBlocks(ino, maps, delta); err != nil {
			return 0, err
		}
	}
	if n > 0 {
		f.redone, f.blocksDelta = maps, delta
		f.inodes.Clear()
		f.extents.Clear()
	}
	return n, nil
}

// freeEOFBlocks unmaps the blocks past the end of file ino's data fork into maps and delta, as the
// kernel does to every inode its intent recovery took (xfs_inactive → xfs_free_eofblocks when the
// inode leaves the cache during the mount): speculative preallocations go, unless the file has
// persistent preallocations or is append-only.
func (f *FS) freeEOFBlocks(ino uint64, maps map[extentKey][]extent, delta map[uint64]int64) error {
	ip, err := f.inode(ino)
	if err != nil {
		return err
	}
	if !ip.isReg() || ip.size == 0 || ip.flags&(diflagPrealloc|diflagAppend) != 0 || ip.nlink == 0 ||
		(ip.format != fmtExtents && ip.format != fmtBtree) {
		return nil
	}
	key := extentKey{ino: ino}
	ex, ok := maps[key]
	if !ok {
		if ex, err = f.forkExtents(ip, false); err != nil {
			return fmt.Errorf("%v: %w", ip, err)
		}
	}
	bs := uint64(f.sb.blockSize)
	ex, removed := unmapRange(ex, (uint64(ip.size)+bs-1)/bs, maxFileBlock)
	if removed > 0 {
		maps[key] = ex
		if delta[ino] -= int64(removed); int64(ip.nblocks)+delta[ino] < 0 {
			return corruptf("%v owns fewer blocks than it maps", ip)
		}
	}
	return nil
}

// applyBmap returns the extent map ex (sorted, not overlapping; left unchanged) after one bmap intent,
// and the change of the inode's block count.
func applyBmap(ex []extent, bi bmapIntent) ([]extent, int64, error) {
	end := bi.off + bi.count
	if !bi.unmap {
		i := findExtent(ex, bi.off)
		if i < len(ex) && ex[i].off < end {
			return nil, 0, corruptf("%v: the range is not a hole (the kernel maps only into holes)", bi)
		}
		out := make([]extent, 0, len(ex)+1)
		out = append(append(out, ex[:i]...), extent{off: bi.off, block: bi.block, count: bi.count, unwritten: bi.unwritten})
		return append(out, ex[i:]...), int64(bi.count), nil
	}
	out, removed := unmapRange(ex, bi.off, end)
	return out, -int64(removed), nil
}

// unmapRange returns ex (left unchanged) without file blocks [off, end), and how many mapped blocks
// it took out.
func unmapRange(ex []extent, off, end uint64) ([]extent, uint64) {
	i := findExtent(ex, off)
	out := make([]extent, 0, len(ex)+1)
	out = append(out, ex[:i]...)
	var removed uint64
	for ; i < len(ex) && ex[i].off < end; i++ {
		e := ex[i]
		if e.off < off {
			out = append(out, extent{off: e.off, block: e.block, count: off - e.off, unwritten: e.unwritten})
		}
		if e.off+e.count > end {
			out = append(out, extent{off: end, block: e.block + (end - e.off), count: e.off + e.count - end, unwritten: e.unwritten})
		}
		removed += min(e.off+e.count, end) - max(e.off, off)
	}
	return append(out, ex[i:]...), removed
}
