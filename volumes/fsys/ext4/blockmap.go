package ext4

import (
	"encoding/binary"
	"fmt"
	"log/slog"
)

// blockMapRuns turns an ext2/ext3 block map (12 direct pointers, then single, double and triple
// indirect blocks) into runs, covering logical blocks below limit. Zero pointers are holes.
func (f *FS) blockMapRuns(iblock []byte, limit uint64) ([]run, error) {
	return f.blockMapRunsOnce(iblock, limit, nil)
}

// blockMapRunsOnce is blockMapRuns that, given a set, maps each block once, indirect or data, and a
// repeated one as a hole (directories: a sound one never shares a block, and a hostile one whose
// indirect blocks all point at one would otherwise map a million copies of it).
func (f *FS) blockMapRunsOnce(iblock []byte, limit uint64, walked map[uint64]bool) ([]run, error) {
	le := binary.LittleEndian
	b := &blockMapper{f: f, limit: limit, maxRuns: int(f.volumeBlocks()), walked: walked}
	for i := 0; i < 12; i++ {
		if err := b.add(uint64(i), uint64(le.Uint32(iblock[4*i:]))); err != nil {
			return nil, err
		}
	}
	per := uint64(f.sb.addrPerBlock)
	start := uint64(12)
	span := per
	for level := 1; level <= 3; level++ {
		if start >= limit {
			break
		}
		ptr := uint64(le.Uint32(iblock[4*(11+level):]))
		if err := b.indirect(ptr, level, start); err != nil {
			return nil, err
		}
		start += span
		span *= per
	}
	if b.repeats > 0 {
		slog.Warn("ext4: directory block map claims blocks more than once; the repeats read as holes", "repeats", b.repeats)
	}
	return b.runs, nil
}

type blockMapper struct {
	f       *FS
	limit   uint64
	runs    []run
	maxRuns int
	reads   int // indirect blocks read, bounded like runs so pointer-heavy junk cannot spin
	walked  map[uint64]bool
	repeats int // indirect blocks left out as repeats
	bufs    [4][]byte
}

// add maps one logical block, extending the last run when the blocks are contiguous.
func (b *blockMapper) add(logical, phys uint64) error {
	if phys == 0 || logical >= b.limit {
		return nil
	}
	if b.walked != nil {
		if b.walked[phys] {
			b.repeats++
			return nil
		}
		b.walked[phys] = true
	}
	if err := b.f.checkRange(phys, 1); err != nil {
		return err
	}
	if n := len(b.runs); n > 0 {
		last := &b.runs[n-1]
		if last.logical+last.length == logical && last.physical+last.length == phys {
			last.length++
			return nil
		}
	}
	if len(b.runs) >= b.maxRuns {
		return fmt.Errorf("block map has more runs than the volume has blocks: %w", errCorrupt)
	}
	b.runs = append(b.runs, run{logical: logical, physical: phys, length: 1})
	return nil
}

// indirect walks an indirect block of the given level whose first pointer maps logical block start.
func (b *blockMapper) indirect(ptr uint64, level int, start uint64) error {
	if ptr == 0 || start >= b.limit {
		return nil
	}
	if err := b.f.checkRange(ptr, 1); err != nil {
		return fmt.Errorf("indirect block: %w", err)
	}
	if b.walked != nil {
		if b.walked[ptr] {
			b.repeats++
			return nil
		}
		b.walked[ptr] = true
	}
	b.reads++
	if b.reads > b.maxRuns {
		return fmt.Errorf("block map reads more indirect blocks than the volume has: %w", errCorrupt)
	}
	// One buffer per level: the walk is depth-first, so a level's block is done before it is reused.
	if b.bufs[level] == nil {
		b.bufs[level] = make([]byte, b.f.sb.blockSize)
	}
	buf := b.bufs[level]
	if err := b.f.readBlock(buf, ptr); err != nil {
		return err
	}
	per := uint64(b.f.sb.addrPerBlock)
	span := uint64(1)
	for i := 1; i < level; i++ {
		span *= per
	}
	le := binary.LittleEndian
	for i := uint64(0); i < per; i++ {
		p := uint64(le.Uint32(buf[4*i:]))
		at := start + i*span
		if at >= b.limit {
			break
		}
		var err error
		if level == 1 {
			err = b.add(at, p)
		} else {
			err = b.indirect(p, level-1, at)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
