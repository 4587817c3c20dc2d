package ext4

import (
	"errors"
	"sync/atomic"
)

var errNotScannable = errors.New("inline or encrypted directory: no blocks to scan")

// scanRecBytes is about the smallest record of a real name (8 bytes of header, a short name, padding):
// a directory of size/scanRecBytes entries or more that a cache shard cannot hold is scanned, not
// cached whole; smaller ones are listed once and then found in their cached listing.
const scanRecBytes = 24

// linearDirs is how many large unindexed directories keep a lookup start and their block list.
const linearDirs = 256

// linearDir is what lookups in one large directory without a usable hash index keep between calls:
// its block list, the logical block where the last lookup found its name, and the block last read.
// Starting there and wrapping around, as the kernel's ext4 does (i_dir_start_lookup), makes lookups
// in listing order (ls -l, find -ls) read each block about once instead of the whole directory each.
type linearDir struct {
	blocks *dirBlocks
	start  atomic.Uint64
	last   atomic.Pointer[dirBlock]
}

// dirBlock is one read directory block, never changed once stored.
type dirBlock struct {
	logical uint64
	b       []byte
}

// linearOf returns the lookup state of directory in, making it on first use.
func (f *FS) linearOf(in *inode) (*linearDir, error) {
	if ld, ok := f.linear.get(in.ino); ok {
		return ld, nil
	}
	blocks, err := f.dirBlocksOf(in)
	if err != nil {
		return nil, err
	}
	ld := &linearDir{blocks: blocks}
	f.linear.put(in.ino, ld, 1)
	return ld, nil
}

// block returns logical block logical (at physical block phys) of the directory, reusing the last
// one read when it is the same.
func (ld *linearDir) block(f *FS, logical, phys uint64) ([]byte, error) {
	if c := ld.last.Load(); c != nil && c.logical == logical {
		return c.b, nil
	}
	b := make([]byte, f.sb.blockSize)
	if err := f.readBlock(b, phys); err != nil {
		return nil, err
	}
	ld.last.Store(&dirBlock{logical: logical, b: b})
	return b, nil
}

// scanLookup finds name in a block-mapped directory by reading its blocks from the start hint to the
// end, then from the beginning to the hint. found=false with a nil error means the name is absent.
// Damaged entries are skipped silently: listing the directory reports them, and a report per lookup
// would repeat one warning a million times.
func (f *FS) scanLookup(in *inode, name string) (ent dirent, found bool, err error) {
	if in.flags&(flagInlineData|flagEncrypt) != 0 {
		return dirent{}, false, errNotScannable
	}
	ld, err := f.linearOf(in)
	if err != nil {
		return dirent{}, false, err
	}
	hasFT := f.sb.has(incompatFiletype)
	start := ld.start.Load()
	blk, wrapped := start, false
	for {
		logical, phys, _, ok := ld.blocks.next(blk)
		if wrapped && (!ok || logical >= start) {
			return dirent{}, false, nil
		}
		if !ok {
			if start == 0 {
				return dirent{}, false, nil
			}
			blk, wrapped = 0, true
			continue
		}
		b, err := ld.block(f, logical, phys)
		if err != nil {
			return dirent{}, false, err
		}
		parent := uint32(1) // "..": not looked up here, and not damage
		scanDirBlock(b, hasFT, f.sb.blockSize, f.sb.inodesCount, &parent, nil, func(e dirent, _, _ int) {
			if !found && e.name == name {
				ent, found = e, true
			}
		})
		if found {
			ld.start.Store(logical)
			return ent, true, nil
		}
		blk = logical + 1
	}
}
