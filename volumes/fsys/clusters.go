package fsys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"
)

// ClusterRun is a run of consecutive clusters (FAT, exFAT).
type ClusterRun struct {
	First, Count uint32
}

// ClusterChain is a FAT cluster chain as runs; Clusters is their total, Complete says the walk reached
// the end-of-chain mark.
type ClusterChain struct {
	Runs     []ClusterRun
	Clusters int64
	Complete bool
}

const (
	maxCachedChains  = 4096
	maxCachedExtents = 1 << 18
)

// ChainWalker follows FAT chains and keeps the walked ones in a bounded cache. The reader supplies
// how to read one FAT entry and what its marks mean.
type ChainWalker struct {
	Corrupt    error  // the reader's corruption error, wrapped into every chain error
	MaxCluster uint32 // highest valid cluster number
	Clusters   int64  // data clusters: no chain is longer
	Entry      func(cluster uint32) (uint32, error)
	IsEnd      func(v uint32) bool // an end-of-chain mark
	Bad        uint32              // the bad-cluster mark

	mu      sync.Mutex
	chains  map[uint32]*ClusterChain
	extents int
}

// Walk follows the chain from first for at most want clusters (want < 0: to the end). Loops, free or
// bad entries and out-of-range links are errors.
func (w *ChainWalker) Walk(first uint32, want int64) (*ClusterChain, error) {
	w.mu.Lock()
	c, ok := w.chains[first]
	w.mu.Unlock()
	if ok && (c.Complete || (want >= 0 && c.Clusters >= want)) {
		return c, nil
	}
	c = &ClusterChain{}
	var guard loopGuard
	cur := first
	for {
		if cur < 2 || cur > w.MaxCluster {
			return nil, fmt.Errorf("%w: cluster chain from %d links to invalid cluster %d", w.Corrupt, first, cur)
		}
		if guard.seen(c, cur, w.MaxCluster) {
			return nil, fmt.Errorf("%w: cluster chain from %d loops back to cluster %d", w.Corrupt, first, cur)
		}
		if n := len(c.Runs); n > 0 && c.Runs[n-1].First+c.Runs[n-1].Count == cur {
			c.Runs[n-1].Count++
		} else {
			c.Runs = append(c.Runs, ClusterRun{cur, 1})
		}
		c.Clusters++
		if want >= 0 && c.Clusters >= want {
			break
		}
		if c.Clusters > w.Clusters {
			return nil, fmt.Errorf("%w: cluster chain from %d loops (longer than the volume's %d clusters)", w.Corrupt, first, w.Clusters)
		}
		next, err := w.Entry(cur)
		if err != nil {
			return nil, err
		}
		if w.IsEnd(next) {
			c.Complete = true
			break
		}
		switch next {
		case 0:
			return nil, fmt.Errorf("%w: cluster chain from %d runs into free cluster after %d", w.Corrupt, first, cur)
		case w.Bad:
			return nil, fmt.Errorf("%w: cluster chain from %d runs into a bad cluster after %d", w.Corrupt, first, cur)
		}
		cur = next
	}
	w.mu.Lock()
	if w.chains == nil || len(w.chains) >= maxCachedChains || w.extents+len(c.Runs) > maxCachedExtents {
		w.chains = map[uint32]*ClusterChain{}
		w.extents = 0
	}
	w.chains[first] = c
	w.extents += len(c.Runs)
	w.mu.Unlock()
	return c, nil
}

// Reset drops the cached chains.
func (w *ChainWalker) Reset() {
	w.mu.Lock()
	w.chains, w.extents = nil, 0
	w.mu.Unlock()
}

// loopGuard finds a cluster that a chain visits twice: a scan of the runs while they are few, then a
// bitmap over the volume's clusters (bounded by the volume size) once the chain is fragmented.
type loopGuard struct {
	bitmap []uint64
}

// seen reports whether cur is already part of c, and records it otherwise. It must be called before
// cur is appended to c.Runs.
func (l *loopGuard) seen(c *ClusterChain, cur, maxCluster uint32) bool {
	if l.bitmap == nil && len(c.Runs) > 32 {
		l.bitmap = make([]uint64, uint64(maxCluster)/64+1)
		for _, r := range c.Runs {
			for k := r.First; k < r.First+r.Count; k++ {
				l.bitmap[k/64] |= 1 << (k % 64)
			}
		}
	}
	if l.bitmap != nil {
		if l.bitmap[cur/64]&(1<<(cur%64)) != 0 {
			return true
		}
		l.bitmap[cur/64] |= 1 << (cur % 64)
		return false
	}
	for _, r := range c.Runs {
		if cur >= r.First && cur-r.First < r.Count {
			return true
		}
	}
	return false
}

// ClusterFile reads a regular file stored in cluster runs. Its runs are mapped on first read, so
// opening stays cheap; bytes at or past Valid (exFAT's valid data length) read as zeros.
type ClusterFile struct {
	Name        string
	FileInfo    *Info
	Size, Valid int64
	ClusterSize int64
	R           io.ReaderAt
	Offset      func(cluster uint32) int64   // byte offset of a cluster in the volume
	Load        func() ([]ClusterRun, error) // the runs covering Valid
	Corrupt     error                        // the reader's corruption error

	once   sync.Once
	runs   []ClusterRun
	starts []int64 // cluster index in the file where each run begins
	lerr   error

	Cursor
}

// Stat returns the file's FileInfo.
func (fl *ClusterFile) Stat() (fs.FileInfo, error) { return fl.FileInfo, nil }

// Close does nothing: the file holds no resource.
func (fl *ClusterFile) Close() error { return nil }

func (fl *ClusterFile) load() error {
	fl.once.Do(func() {
		runs, err := fl.Load()
		if err != nil {
			fl.lerr = err
			return
		}
		var idx int64
		for _, r := range runs {
			fl.runs = append(fl.runs, r)
			fl.starts = append(fl.starts, idx)
			idx += int64(r.Count)
		}
		if need := (fl.Valid + fl.ClusterSize - 1) / fl.ClusterSize; idx < need {
			fl.lerr = fmt.Errorf("%w: file of %d bytes has only %d clusters in its chain", fl.Corrupt, fl.Valid, idx)
		}
	})
	return fl.lerr
}

// ReadAt is safe for concurrent use.
func (fl *ClusterFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.Name, Err: fs.ErrInvalid}
	}
	if off >= fl.Size {
		return 0, io.EOF
	}
	want := p
	if rest := fl.Size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n := 0
	if off < fl.Valid {
		if err := fl.load(); err != nil {
			return 0, &fs.PathError{Op: "read", Path: fl.Name, Err: err}
		}
		cs := fl.ClusterSize
		for n < len(want) && off+int64(n) < fl.Valid {
			cur := off + int64(n)
			ci := cur / cs
			k := sort.Search(len(fl.starts), func(i int) bool { return fl.starts[i] > ci }) - 1
			r := fl.runs[k]
			inRun := ci - fl.starts[k]
			within := cur % cs
			chunk := want[n:]
			if limit := min((int64(r.Count)-inRun)*cs-within, fl.Valid-cur); int64(len(chunk)) > limit {
				chunk = chunk[:limit]
			}
			m, err := fl.R.ReadAt(chunk, fl.Offset(r.First+uint32(inRun))+within)
			n += m
			if err != nil && m < len(chunk) {
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("%w: cluster %d lies beyond the end of the image", fl.Corrupt, r.First+uint32(inRun))
				}
				return n, &fs.PathError{Op: "read", Path: fl.Name, Err: err}
			}
		}
	}
	clear(want[n:])
	n = len(want)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (fl *ClusterFile) Read(p []byte) (int, error) { return fl.ReadFrom(fl, p) }

func (fl *ClusterFile) Seek(offset int64, whence int) (int64, error) {
	return fl.SeekIn(fl.Name, fl.Size, offset, whence)
}

// ReadRuns reads the first size bytes held by runs of clusters and returns them with posOf, the volume
// byte offset of each byte index (the position that names a directory entry for its inode number).
func ReadRuns(r io.ReaderAt, runs []ClusterRun, size, clusterSize int64, offset func(uint32) int64) ([]byte, func(int) int64, error) {
	raw := make([]byte, size)
	var starts []int64 // volume offset of each run, by byte index in raw
	var idx []int
	p := int64(0)
	for _, run := range runs {
		if p >= size {
			break
		}
		m := min(int64(run.Count)*clusterSize, size-p)
		off := offset(run.First)
		if _, err := r.ReadAt(raw[p:p+m], off); err != nil {
			return nil, nil, fmt.Errorf("reading cluster %d: %w", run.First, err)
		}
		starts, idx = append(starts, off), append(idx, int(p))
		p += m
	}
	posOf := func(i int) int64 {
		k := sort.Search(len(idx), func(j int) bool { return idx[j] > i }) - 1
		return starts[k] + int64(i-idx[k])
	}
	return raw, posOf, nil
}

// FATBlockSize is the unit FAT tables are read and cached in.
const FATBlockSize = 4096

// FATBlocks reads a file allocation table of Bytes bytes at Offset in FATBlockSize blocks through a
// bounded cache (Max blocks).
type FATBlocks struct {
	R             io.ReaderAt
	Offset, Bytes int64
	cache         *LRU[int64, []byte]
}

// NewFATBlocks makes the block reader of a table.
func NewFATBlocks(r io.ReaderAt, offset, bytes int64, maxBlocks int) *FATBlocks {
	return &FATBlocks{R: r, Offset: offset, Bytes: bytes, cache: NewLRU[int64, []byte](maxBlocks)}
}

// Block returns block idx of the table (the last one may be short).
func (t *FATBlocks) Block(idx int64) ([]byte, error) {
	if b, ok := t.cache.Get(idx); ok {
		return b, nil
	}
	b := make([]byte, min(int64(FATBlockSize), t.Bytes-idx*FATBlockSize))
	if _, err := t.R.ReadAt(b, t.Offset+idx*FATBlockSize); err != nil {
		return nil, fmt.Errorf("reading FAT at byte %d: %w", t.Offset+idx*FATBlockSize, err)
	}
	t.cache.Put(idx, b, 1)
	return b, nil
}

// Reset drops the cached blocks.
func (t *FATBlocks) Reset() { t.cache.Clear() }

// FATTable is the shared half of a FAT or exFAT table reader: its cached blocks and walked chains.
// The reader embeds it and decodes entries from Blocks (12, 16 or 32 bits) for Chains.
type FATTable struct {
	R      io.ReaderAt
	Blocks *FATBlocks
	Chains *ChainWalker
}

// Walk follows the chain from first for at most want clusters (want < 0: to the end).
func (t *FATTable) Walk(first uint32, want int64) (*ClusterChain, error) {
	return t.Chains.Walk(first, want)
}

// Reset drops the cached blocks and chains.
func (t *FATTable) Reset() {
	t.Blocks.Reset()
	t.Chains.Reset()
}
