package ext4

import (
	"fmt"
	"log/slog"
	"slices"
	"syscall"
)

// dirBlocks is what a listing reads of a directory: the blocks of its mapping, without holes,
// unwritten extents, or physical blocks that an earlier part of the mapping already holds. A sound
// directory never maps one block twice; a hostile one whose indirect blocks all point at one block
// would otherwise list that block's entries a million times.
type dirBlocks struct {
	runs []run // sorted by logical block
}

// maxDirSize is the largest directory listed: 4 GiB, the most a directory without largedir can be.
const maxDirSize = 4 << 30

// dirBlocksOf checks a block-mapped or extent-mapped directory's size and builds its block list.
func (f *FS) dirBlocksOf(in *inode) (*dirBlocks, error) {
	bs := int64(f.sb.blockSize)
	if in.st.Size%bs != 0 {
		return nil, fmt.Errorf("size %d is not a whole number of blocks: %w", in.st.Size, errCorrupt)
	}
	if in.st.Size > f.size {
		return nil, fmt.Errorf("size %d exceeds the volume: %w", in.st.Size, errCorrupt)
	}
	if in.st.Size > maxDirSize {
		// Only largedir directories can be this large; their block lists would cost memory in
		// proportion (tens of bytes a block) before a single entry is read.
		slog.Warn("ext4: directory too large to list", "dir_inode", in.ino, "size", in.st.Size)
		return nil, fmt.Errorf("directory of %d bytes, larger than the %d this reader lists: %w", in.st.Size, int64(maxDirSize), syscall.EOPNOTSUPP)
	}
	d, err := f.dataOf(in)
	if err != nil {
		return nil, err
	}
	limit := uint64(in.st.Size / bs)
	var runs []run
	for _, r := range d.runs {
		if r.unwritten || r.logical >= limit {
			continue
		}
		r.length = min(r.length, limit-r.logical)
		runs = append(runs, r)
	}
	kept, dropped := withoutRepeats(runs)
	if dropped > 0 {
		slog.Warn("ext4: directory maps blocks more than once; the repeats are not listed",
			"dir_inode", in.ino, "repeated_blocks", dropped)
	}
	return &dirBlocks{runs: kept}, nil
}

// withoutRepeats drops every run whose physical blocks overlap those of a run earlier in logical
// order, and says how many blocks it dropped. runs is sorted by logical block.
func withoutRepeats(runs []run) ([]run, uint64) {
	byPhys := make([]int, len(runs))
	for i := range byPhys {
		byPhys[i] = i
	}
	slices.SortFunc(byPhys, func(a, b int) int {
		if runs[a].physical != runs[b].physical {
			return cmpU64(runs[a].physical, runs[b].physical)
		}
		return a - b
	})
	drop := make([]bool, len(runs))
	reach := -1 // the kept run reaching furthest among those seen in physical order
	for _, i := range byPhys {
		if reach >= 0 && runs[i].physical < runs[reach].physical+runs[reach].length {
			// Overlap: keep the run that comes first in the directory.
			if i > reach {
				drop[i] = true
				continue
			}
			drop[reach] = true
		}
		if reach < 0 || drop[reach] || runs[i].physical+runs[i].length > runs[reach].physical+runs[reach].length {
			reach = i
		}
	}
	var kept []run
	var dropped uint64
	for i, r := range runs {
		if drop[i] {
			dropped += r.length
			continue
		}
		kept = append(kept, r)
	}
	return kept, dropped
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// next finds the first listed block at or after logical block blk: its physical block and how many
// blocks follow it contiguously in the same run.
func (d *dirBlocks) next(blk uint64) (logical, physical, count uint64, ok bool) {
	i, _ := slices.BinarySearchFunc(d.runs, blk, func(r run, b uint64) int {
		if r.logical+r.length <= b {
			return -1
		}
		if r.logical > b {
			return 1
		}
		return 0
	})
	if i == len(d.runs) {
		return 0, 0, 0, false
	}
	r := d.runs[i]
	logical = max(blk, r.logical)
	return logical, r.physical + (logical - r.logical), r.length - (logical - r.logical), true
}

// damageLog reports the skipped entries of one listing: the first few in full, then a count, so a
// directory of damaged blocks cannot flood the log.
type damageLog struct {
	dir  uint32
	seen int
}

const damageLogged = 8

func (l *damageLog) at(blk int64) dirDamage {
	return func(pos int, why string) {
		l.seen++
		if l.seen <= damageLogged {
			logDamage(l.dir, blk)(pos, why)
		}
	}
}

func (l *damageLog) done() {
	if l.seen > damageLogged {
		slog.Warn("ext4: more bad directory entries skipped", "dir_inode", l.dir, "not_logged", l.seen-damageLogged)
	}
}
