package exfat

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

const (
	fatBlockSize = fsys.FATBlockSize
	maxFATBlocks = 1024
)

// table reads 32-bit FAT entries through a bounded block cache; w walks and caches chains.
type table struct {
	*fsys.FATTable
	g *geometry
}

func newTable(r io.ReaderAt, g *geometry) *table {
	t := &table{g: g}
	t.FATTable = &fsys.FATTable{R: r, Blocks: fsys.NewFATBlocks(r, g.fatOffset, g.fatBytes, maxFATBlocks)}
	t.Chains = &fsys.ChainWalker{Corrupt: ErrCorrupt, MaxCluster: g.maxCluster(), Clusters: int64(g.clusters),
		Entry: t.entry, IsEnd: func(v uint32) bool { return v == 0xFFFFFFFF }, Bad: 0xFFFFFFF7}
	return t
}

func (t *table) entry(n uint32) (uint32, error) {
	off := int64(n) * 4
	idx := off / fatBlockSize
	b, err := t.Blocks.Block(idx)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[off%fatBlockSize:]), nil
}

// clusters returns the runs holding n clusters of data starting at first: one run when the entry has
// the NoFatChain flag, else the FAT chain.
func (t *table) clustersOf(first uint32, n int64, contiguous bool) ([]fsys.ClusterRun, error) {
	if n == 0 {
		return nil, nil
	}
	if contiguous {
		if first < 2 || int64(first)+n-1 > int64(t.g.maxCluster()) {
			return nil, fmt.Errorf("%w: contiguous run of %d clusters at %d leaves the cluster heap", ErrCorrupt, n, first)
		}
		return []fsys.ClusterRun{{First: first, Count: uint32(n)}}, nil
	}
	c, err := t.Walk(first, n)
	if err != nil {
		return nil, err
	}
	if c.Clusters < n {
		return nil, fmt.Errorf("%w: chain from %d has %d clusters, %d needed", ErrCorrupt, first, c.Clusters, n)
	}
	return c.Runs, nil
}
