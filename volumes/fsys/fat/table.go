package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrCorrupt marks on-disk structures that contradict each other or the volume's bounds.
var ErrCorrupt = errors.New("corrupt FAT file system")

const (
	fatBlockSize     = 4096
	maxFATBlocks     = 1024 // cached FAT blocks: 4 MiB at most
	maxCachedChains  = 4096
	maxCachedExtents = 1 << 18
)

// extent is a run of consecutive clusters.
type extent struct {
	first uint32
	count uint32
}

// chain is a cluster chain as runs; clusters is their total.
type chain struct {
	runs     []extent
	clusters int64
	complete bool // the walk reached end-of-chain (not just the number of clusters asked for)
}

// table reads FAT entries through a bounded block cache and caches walked chains.
type table struct {
	r io.ReaderAt
	g *geometry

	mu      sync.Mutex
	blocks  map[int64][]byte
	chains  map[uint32]*chain
	extents int
}

func newTable(r io.ReaderAt, g *geometry) *table {
	return &table{r: r, g: g, blocks: map[int64][]byte{}, chains: map[uint32]*chain{}}
}

// block returns the cached FAT block holding byte offset off of the FAT.
func (t *table) block(idx int64) ([]byte, error) {
	t.mu.Lock()
	b, ok := t.blocks[idx]
	t.mu.Unlock()
	if ok {
		return b, nil
	}
	n := int64(fatBlockSize)
	if rest := t.g.fatBytes - idx*fatBlockSize; rest < n {
		n = rest
	}
	b = make([]byte, n)
	if _, err := t.r.ReadAt(b, t.g.fatOffset+idx*fatBlockSize); err != nil {
		return nil, fmt.Errorf("reading FAT at byte %d: %w", t.g.fatOffset+idx*fatBlockSize, err)
	}
	t.mu.Lock()
	if len(t.blocks) >= maxFATBlocks {
		clear(t.blocks)
	}
	t.blocks[idx] = b
	t.mu.Unlock()
	return b, nil
}

func (t *table) byteAt(off int64) (byte, error) {
	b, err := t.block(off / fatBlockSize)
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
		b, err := t.block(off / fatBlockSize)
		if err != nil {
			return 0, err
		}
		return uint32(binary.LittleEndian.Uint16(b[off%fatBlockSize:])), nil
	default:
		off := int64(n) * 4
		b, err := t.block(off / fatBlockSize)
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

// walk follows the chain from first for at most want clusters (want < 0: to the end). Loops, free or
// bad entries and out-of-range links are errors.
func (t *table) walk(first uint32, want int64) (*chain, error) {
	t.mu.Lock()
	c, ok := t.chains[first]
	t.mu.Unlock()
	if ok && (c.complete || (want >= 0 && c.clusters >= want)) {
		return c, nil
	}
	c = &chain{}
	var guard loopGuard
	limit := int64(t.g.clusters)
	cur := first
	for {
		if cur < 2 || cur > t.g.maxCluster() {
			return nil, fmt.Errorf("%w: cluster chain from %d links to invalid cluster %d", ErrCorrupt, first, cur)
		}
		if guard.seen(c, cur, t.g.maxCluster()) {
			return nil, fmt.Errorf("%w: cluster chain from %d loops back to cluster %d", ErrCorrupt, first, cur)
		}
		if n := len(c.runs); n > 0 && c.runs[n-1].first+c.runs[n-1].count == cur {
			c.runs[n-1].count++
		} else {
			c.runs = append(c.runs, extent{cur, 1})
		}
		c.clusters++
		if want >= 0 && c.clusters >= want {
			break
		}
		if c.clusters > limit {
			return nil, fmt.Errorf("%w: cluster chain from %d loops (longer than the volume's %d clusters)", ErrCorrupt, first, limit)
		}
		next, err := t.entry(cur)
		if err != nil {
			return nil, err
		}
		if t.isEOC(next) {
			c.complete = true
			break
		}
		switch {
		case next == 0:
			return nil, fmt.Errorf("%w: cluster chain from %d runs into free cluster after %d", ErrCorrupt, first, cur)
		case next == t.badMark():
			return nil, fmt.Errorf("%w: cluster chain from %d runs into a bad cluster after %d", ErrCorrupt, first, cur)
		}
		cur = next
	}
	t.mu.Lock()
	if len(t.chains) >= maxCachedChains || t.extents+len(c.runs) > maxCachedExtents {
		clear(t.chains)
		t.extents = 0
	}
	t.chains[first] = c
	t.extents += len(c.runs)
	t.mu.Unlock()
	return c, nil
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
		if _, err := t.r.ReadAt(buf, t.g.fatOffset); err != nil {
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
		if _, err := t.r.ReadAt(buf[:n], t.g.fatOffset+off); err != nil {
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
