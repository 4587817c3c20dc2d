package exfat

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

const (
	fatBlockSize     = 4096
	maxFATBlocks     = 1024
	maxCachedChains  = 4096
	maxCachedExtents = 1 << 18
)

type extent struct{ first, count uint32 }

type chain struct {
	runs     []extent
	clusters int64
	complete bool
}

// table reads 32-bit FAT entries through a bounded block cache and caches walked chains.
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

func (t *table) entry(n uint32) (uint32, error) {
	off := int64(n) * 4
	idx := off / fatBlockSize
	t.mu.Lock()
	b, ok := t.blocks[idx]
	t.mu.Unlock()
	if !ok {
		size := min(int64(fatBlockSize), t.g.fatBytes-idx*fatBlockSize)
		b = make([]byte, size)
		if _, err := t.r.ReadAt(b, t.g.fatOffset+idx*fatBlockSize); err != nil {
			return 0, fmt.Errorf("reading FAT at byte %d: %w", t.g.fatOffset+idx*fatBlockSize, err)
		}
		t.mu.Lock()
		if len(t.blocks) >= maxFATBlocks {
			clear(t.blocks)
		}
		t.blocks[idx] = b
		t.mu.Unlock()
	}
	return binary.LittleEndian.Uint32(b[off%fatBlockSize:]), nil
}

// walk follows the FAT from first for at most want clusters (want < 0: to the end of the chain).
func (t *table) walk(first uint32, want int64) (*chain, error) {
	t.mu.Lock()
	c, ok := t.chains[first]
	t.mu.Unlock()
	if ok && (c.complete || (want >= 0 && c.clusters >= want)) {
		return c, nil
	}
	c = &chain{}
	var guard loopGuard
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
		if c.clusters > int64(t.g.clusters) {
			return nil, fmt.Errorf("%w: cluster chain from %d loops (longer than the volume's %d clusters)", ErrCorrupt, first, t.g.clusters)
		}
		next, err := t.entry(cur)
		if err != nil {
			return nil, err
		}
		switch {
		case next == 0xFFFFFFFF:
			c.complete = true
		case next == 0xFFFFFFF7:
			return nil, fmt.Errorf("%w: cluster chain from %d runs into a bad cluster after %d", ErrCorrupt, first, cur)
		case next == 0:
			return nil, fmt.Errorf("%w: cluster chain from %d runs into free cluster after %d", ErrCorrupt, first, cur)
		}
		if c.complete {
			break
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

// clusters returns the runs holding n clusters of data starting at first: one run when the entry has
// the NoFatChain flag, else the FAT chain.
func (t *table) clustersOf(first uint32, n int64, contiguous bool) ([]extent, error) {
	if n == 0 {
		return nil, nil
	}
	if contiguous {
		if first < 2 || int64(first)+n-1 > int64(t.g.maxCluster()) {
			return nil, fmt.Errorf("%w: contiguous run of %d clusters at %d leaves the cluster heap", ErrCorrupt, n, first)
		}
		return []extent{{first, uint32(n)}}, nil
	}
	c, err := t.walk(first, n)
	if err != nil {
		return nil, err
	}
	if c.clusters < n {
		return nil, fmt.Errorf("%w: chain from %d has %d clusters, %d needed", ErrCorrupt, first, c.clusters, n)
	}
	return c.runs, nil
}
