package ext4

import (
	"encoding/binary"
	"fmt"
)

// blockMapRuns turns an ext2/ext3 block map (12 direct pointers, then single, double and triple
// indirect blocks) into runs, covering logical blocks below limit. Zero pointers are holes.
func (f *FS) blockMapRuns(iblock []byte, limit uint64) ([]run, error) {
	le := binary.LittleEndian
	b := &blockMapper{f: f, limit: limit, maxRuns: int(f.volumeBlocks())}
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
	return b.runs, nil
}

type blockMapper struct {
	f       *FS
	limit   uint64
	runs    []run
	maxRuns int
	reads   int // indirect blocks read, bounded like runs so pointer-heavy junk cannot spin
}

// add maps one logical block, extending the last run when the blocks are contiguous.
func (b *blockMapper) add(logical, phys uint64) error {
	if phys == 0 || logical >= b.limit {
		return nil
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
	b.reads++
	if b.reads > b.maxRuns {
		return fmt.Errorf("block map reads more indirect blocks than the volume has: %w", errCorrupt)
	}
	buf := make([]byte, b.f.sb.blockSize)
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
