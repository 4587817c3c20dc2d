package vddk

import (
	"os"
	"sync"
	"syscall"
)

// The budget of the grain-table formats: what an open disk keeps of its extents' metadata is charged
// here, so that a descriptor cannot multiply it. Every file's grain directory is loaded once, however
// many extent lines name the file, and all grain directories of a disk together stay under
// maxGDBytesPerDisk; decoded grain tables of every read-only extent share one cache of tableCacheBytes,
// and inflated stream grains one of grainCacheBytes.
const (
	maxGDBytesPerDisk = 128 << 20 // a 512 TiB disk of 64 KiB grains needs 64 MiB
	tableCacheBytes   = 64 << 20
)

// diskTables is the budget and the shared state of one opened disk (its whole chain).
type diskTables struct {
	mu      sync.Mutex
	gdBytes int64
	byFile  map[fileID]*grainExtent // read-only grain extents, by the file they read
	gt32    *sizedLRU[tableKey, []uint32]
	gt64    *sizedLRU[tableKey, []uint64]
	grains  *sizedLRU[grainKey, []byte]
}

func newDiskTables() *diskTables {
	return &diskTables{
		byFile: map[fileID]*grainExtent{},
		gt32:   newSizedLRU[tableKey](tableCacheBytes, func(v []uint32) int { return 4 * len(v) }),
		gt64:   newSizedLRU[tableKey](tableCacheBytes, func(v []uint64) int { return 8 * len(v) }),
		grains: newGrainLRU(),
	}
}

func newGrainLRU() *sizedLRU[grainKey, []byte] {
	return newSizedLRU[grainKey](grainCacheBytes, func(v []byte) int { return len(v) })
}

// grainCache picks the cache of a stream file's inflated grains: the disk's shared one unless the
// extent is writable or unbudgeted.
func (t *diskTables) grainCache(f *os.File, writable bool) (*sizedLRU[grainKey, []byte], fileID) {
	if id, ok := idOf(f); t != nil && ok && !writable {
		return t.grains, id
	}
	return newGrainLRU(), fileID{}
}

// chargeGD accounts for a grain directory of n bytes about to be loaded for path.
func (t *diskTables) chargeGD(path string, n int64) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gdBytes+n > maxGDBytesPerDisk {
		return newErr(ErrDiskInvalidDisk, path, "grain directory of %d bytes would take the disk's grain directories past %d MiB", n, maxGDBytesPerDisk>>20)
	}
	t.gdBytes += n
	return nil
}

// shared returns the read-only grain extent already opened on the same file as f, if any.
func (t *diskTables) shared(f *os.File) (*grainExtent, fileID, bool) {
	id, ok := idOf(f)
	if t == nil || !ok {
		return nil, id, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	g, found := t.byFile[id]
	return g, id, found
}

func (t *diskTables) remember(id fileID, g *grainExtent) {
	if t == nil || id == (fileID{}) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.byFile[id]; !dup {
		t.byFile[id] = g
	}
}

func idOf(f *os.File) (fileID, bool) {
	st, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(sys.Dev), sys.Ino}, true
}

// alias is another extent line reading the same file as g: it shares g's grain directory, tables and
// inflated grains, and reads through its own descriptor f.
func (g *grainExtent) alias(f *os.File, size int64, line ExtentLine, path string) *grainExtent {
	inf := g.inf
	inf.ExtentLine, inf.Path = line, path
	return &grainExtent{f: f, fileSize: g.fileSize, size: size, grainBytes: g.grainBytes, m: g.m, inflater: g.inflater, inf: inf}
}

type tableKey struct {
	file   fileID
	sector uint32
}

// tableCache keeps decoded grain tables of one file by their sector (or index), in a cache that is
// either the disk's shared one or the extent's own (writable extents update their tables in place).
type tableCache[V any] struct {
	file fileID
	c    *sizedLRU[tableKey, []V]
}

func (c tableCache[V]) get(sector uint32) ([]V, bool) { return c.c.get(tableKey{c.file, sector}) }
func (c tableCache[V]) put(sector uint32, v []V)      { c.c.put(tableKey{c.file, sector}, v) }

// privateTables is a cache of gtCacheBytes for one extent.
func privateTables[V any](entrySize int) tableCache[V] {
	return tableCache[V]{c: newSizedLRU[tableKey](gtCacheBytes, func(v []V) int { return entrySize * len(v) })}
}

// tables32 picks the cache for a file's 32-bit grain tables: shared unless writable or unbudgeted.
func (t *diskTables) tables32(f *os.File, writable bool) tableCache[uint32] {
	if id, ok := idOf(f); t != nil && ok && !writable {
		return tableCache[uint32]{file: id, c: t.gt32}
	}
	return privateTables[uint32](4)
}

func (t *diskTables) tables64(f *os.File) tableCache[uint64] {
	if id, ok := idOf(f); t != nil && ok {
		return tableCache[uint64]{file: id, c: t.gt64}
	}
	return privateTables[uint64](8)
}
