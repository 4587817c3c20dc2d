package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// ErrCorrupt marks on-disk structures that contradict each other or the volume's bounds.
var ErrCorrupt = errors.New("corrupt FAT file system")

const (
	fatBlockSize = fsys.FATBlockSize
	maxFATBlocks = 1024 // cached FAT blocks: 4 MiB at most
)

// table reads FAT entries through a bounded block cache; w walks and caches chains.
type table struct {
	*fsys.FATTable
	g *geometry
}

func newTable(r io.ReaderAt, g *geometry) *table {
	t := &table{g: g}
	t.FATTable = &fsys.FATTable{R: r, Blocks: fsys.NewFATBlocks(r, g.fatOffset, g.fatBytes, maxFATBlocks)}
	t.Chains = &fsys.ChainWalker{Corrupt: ErrCorrupt, MaxCluster: g.maxCluster(), Clusters: int64(g.clusters),
		Entry: t.entry, IsEnd: t.isEOC, Bad: t.badMark()}
	return t
}

func (t *table) byteAt(off int64) (byte, error) {
	b, err := t.Blocks.Block(off / fatBlockSize)
	if err != nil {
		return 0, err
	}
	return b[off%fatBlockSize], nil
}

// entry returns FAT entry n (n ≤ maxCluster, checked by the caller).
func (t *table) entry(n uint32) (uint32, error) {
	switch t.g.typ {
	case FAT12:
		off := int64(n) + int64(n)/2
		lo, err := t.byteAt(off)
		if err != nil {
			return 0, err
		}
		hi, err := t.byteAt(off + 1)
		if err != nil {
			return 0, err
		}
		v := uint32(lo) | uint32(hi)<<8
		if n&1 == 1 {
			return v >> 4, nil
		}
		return v & 0xFFF, nil
	case FAT16:
		off := int64(n) * 2
		b, err := t.Blocks.Block(off / fatBlockSize)
		if err != nil {
			return 0, err
		}
		return uint32(binary.LittleEndian.Uint16(b[off%fatBlockSize:])), nil
	default:
		off := int64(n) * 4
		b, err := t.Blocks.Block(off / fatBlockSize)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(b[off%fatBlockSize:]) & 0x0FFFFFFF, nil
	}
}

// isEOC reports an end-of-chain mark.
func (t *table) isEOC(v uint32) bool {
	switch t.g.typ {
	case FAT12:
		return v >= 0xFF8
	case FAT16:
		return v >= 0xFFF8
	}
	return v >= 0x0FFFFFF8
}

func (t *table) badMark() uint32 {
	switch t.g.typ {
	case FAT12:
		return 0xFF7
	case FAT16:
		return 0xFFF7
	}
	return 0x0FFFFFF7
}

// countFree scans the whole FAT for free entries among the data clusters, as statfs does. FAT12/16
// tables are at most 128 KiB and read whole; FAT32 is streamed in aligned chunks.
func (t *table) countFree() (uint64, error) {
	var free uint64
	last := int64(t.g.maxCluster())
	if t.g.typ != FAT32 {
		n := (last+1)*int64(t.g.typ)/8 + 2
		buf := make([]byte, min(n, t.g.fatBytes))
		if _, err := t.R.ReadAt(buf, t.g.fatOffset); err != nil {
			return 0, fmt.Errorf("reading FAT: %w", err)
		}
		for e := int64(2); e <= last; e++ {
			var v uint32
			if t.g.typ == FAT16 {
				v = uint32(binary.LittleEndian.Uint16(buf[e*2:]))
			} else {
				p := e + e/2
				w := uint32(buf[p]) | uint32(buf[p+1])<<8
				if e&1 == 1 {
					v = w >> 4
				} else {
					v = w & 0xFFF
				}
			}
			if v == 0 {
				free++
			}
		}
		return free, nil
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	end := (last + 1) * 4
	for off := int64(0); off < end; off += chunk {
		n := min(chunk, end-off)
		if _, err := t.R.ReadAt(buf[:n], t.g.fatOffset+off); err != nil {
			return 0, fmt.Errorf("reading FAT at byte %d: %w", t.g.fatOffset+off, err)
		}
		for p := int64(0); p < n; p += 4 {
			if e := (off + p) / 4; e >= 2 && binary.LittleEndian.Uint32(buf[p:])&0x0FFFFFFF == 0 {
				free++
			}
		}
	}
	return free, nil
}
