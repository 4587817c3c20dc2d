package ext4

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Options tunes the caches. The zero value picks sensible sizes.
type Options struct {
	// InodeCache is how many decoded inodes to keep (default 8192).
	InodeCache int
	// DirCache is how many directory entries, summed over cached directories, to keep (default 400000).
	DirCache int
	// NoReplay shows the volume as it lies on disk even when its journal needs recovery; by default the
	// journal's committed transactions are replayed in memory.
	NoReplay bool
}

// FS is an open ext2/3/4 volume. It is safe for concurrent use.
type FS struct {
	r      io.ReaderAt
	size   int64
	sb     *superblock
	groups []groupDesc
	inodes *lru[*inode]
	itab   *lru[tableRun] // raw runs of the inode tables (inodeChunk bytes at most), by chunk
	dirs   *lru[*dirIndex]
	// parents remembers ".." of large directories looked up through their index (not cached in dirs).
	parents *lru[uint32]
	// linear keeps, for large directories searched without an index, where the last lookup found its name.
	linear *lru[*linearDir]
	// htree hashing parameters from the superblock.
	hashSeed     [4]uint32
	hashUnsigned bool
	state        fsys.VolumeState
}

var (
	_ fsys.FS            = (*FS)(nil)
	_ fsys.StateReporter = (*FS)(nil)
)

// Open reads the superblock and group descriptors of the ext2/3/4 volume in r (size bytes).
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	return OpenWith(r, size, Options{})
}

// OpenWith is Open with options. A volume whose journal needs recovery is shown as the kernel would
// show it after replaying the journal, unless opt.NoReplay; VolumeState says which.
func OpenWith(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f, err := openAt(r, size, opt)
	if err != nil {
		return nil, err
	}
	f.state = fsys.VolumeState{State: fsys.StateClean}
	if !f.sb.has(incompatRecover) {
		return f, nil
	}
	if opt.NoReplay {
		f.state = fsys.VolumeState{State: fsys.StateDirty, Detail: "the ext4 journal needs recovery; not replayed (no-replay)"}
		slog.Warn("ext4: journal needs recovery; showing the on-disk state as asked", "label", f.sb.label)
		return f, nil
	}
	view, st, err := f.replayJournal()
	if err != nil {
		f.state = fsys.VolumeState{State: fsys.StateDirty, Detail: "the ext4 journal needs recovery but was not replayed: " + err.Error()}
		slog.Warn("ext4: journal not replayed; the tree may be stale", "label", f.sb.label, "err", err)
		return f, nil
	}
	if view == nil {
		f.state = st
		return f, nil
	}
	g, err := openAt(view, size, opt)
	if err != nil {
		return nil, fmt.Errorf("ext4: after replaying the journal: %w", err)
	}
	g.state = st
	if st.State != fsys.StateReplayed {
		slog.Warn("ext4: "+st.Detail, "label", g.sb.label)
	}
	return g, nil
}

// openAt reads the superblock and group descriptors from r.
func openAt(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	if size < superblockOffset+superblockSize {
		return nil, fmt.Errorf("ext4: volume of %d bytes is too small", size)
	}
	buf := make([]byte, superblockSize)
	if _, err := r.ReadAt(buf, superblockOffset); err != nil {
		return nil, fmt.Errorf("ext4: reading superblock: %w", err)
	}
	sb, err := parseSuperblock(buf)
	if err != nil {
		return nil, err
	}
	if opt.InodeCache <= 0 {
		opt.InodeCache = 8192
	}
	if opt.DirCache <= 0 {
		opt.DirCache = 400000
	}
	f := &FS{r: r, size: size, sb: sb, inodes: newLRU[*inode](opt.InodeCache), dirs: newLRU[*dirIndex](opt.DirCache)}
	f.parents = newLRU[uint32](opt.InodeCache)
	f.linear = newLRU[*linearDir](linearDirs)
	f.itab = newLRU[tableRun](inodeTableChunks)
	f.hashSeed, f.hashUnsigned = superHashInfo(buf)
	if err := f.readGroups(); err != nil {
		return nil, err
	}
	return f, nil
}

// VolumeState reports whether the journal was replayed, needed no replay, or was left alone.
func (f *FS) VolumeState() fsys.VolumeState { return f.state }

// Reader is the view of the volume the tree is read from: the replayed journal over the volume's
// bytes when a replay happened, else the volume itself.
func (f *FS) Reader() io.ReaderAt { return f.r }

// volumeBlocks is the number of blocks that exist: the superblock's count, capped by the image size.
func (f *FS) volumeBlocks() uint64 {
	inImage := (uint64(f.size) + uint64(f.sb.blockSize) - 1) / uint64(f.sb.blockSize)
	return min(f.sb.blocksCount, inImage)
}

// readBlock fills buf (a multiple of the block size or less) from block blk on.
func (f *FS) readBlock(buf []byte, blk uint64) error {
	off := blk * uint64(f.sb.blockSize)
	if blk >= f.volumeBlocks() || off+uint64(len(buf)) > uint64(f.size) {
		return fmt.Errorf("block %d lies outside the volume: %w", blk, errCorrupt)
	}
	if _, err := f.r.ReadAt(buf, int64(off)); err != nil {
		return fmt.Errorf("reading block %d: %w", blk, err)
	}
	return nil
}

// inode returns inode ino, from the cache when it can.
func (f *FS) inode(ino uint32) (*inode, error) {
	if in, ok := f.inodes.get(ino); ok {
		return in, nil
	}
	sb := f.sb
	if ino < 1 || ino > sb.inodesCount {
		return nil, fmt.Errorf("inode %d out of range 1..%d: %w", ino, sb.inodesCount, errCorrupt)
	}
	g := (ino - 1) / sb.inodesPerGroup
	if int(g) >= len(f.groups) {
		return nil, fmt.Errorf("inode %d is in group %d of %d: %w", ino, g, len(f.groups), errCorrupt)
	}
	idx := uint64((ino - 1) % sb.inodesPerGroup)
	table := f.groups[g].inodeTable * uint64(sb.blockSize)
	off := table + idx*uint64(sb.inodeSize)
	if f.groups[g].inodeTable == 0 || off+uint64(sb.inodeSize) > uint64(f.size) {
		return nil, fmt.Errorf("inode %d lies outside the volume: %w", ino, errCorrupt)
	}
	// Read a run of the table and keep it: entries of one directory were mostly allocated together, and
	// one read of a run costs about what one inode does (the kernel reads its inode tables ahead and
	// keeps them too). Only the inode asked for is decoded: a listing in hash order touches the table
	// at random, and decoding every neighbour of every miss would cost more than the reads.
	first := max(table, off&^(inodeChunk-1))
	end := min(first+inodeChunk, table+uint64(sb.inodesPerGroup)*uint64(sb.inodeSize), uint64(f.size))
	end = first + (end-first)/uint64(sb.inodeSize)*uint64(sb.inodeSize)
	// Two tables may start in one chunk: the run kept says where it starts.
	key, keyed := uint32(first/inodeChunk), first/inodeChunk < 1<<32
	run, ok := f.itab.get(key)
	if !keyed || !ok || run.first != first || len(run.b) != int(end-first) {
		run = tableRun{first: first, b: make([]byte, end-first)}
		if _, err := f.r.ReadAt(run.b, int64(first)); err != nil {
			return nil, fmt.Errorf("reading inode %d: %w", ino, err)
		}
		if keyed {
			f.itab.put(key, run, 1)
		}
	}
	buf := run.b
	rel := off - first
	in, err := parseInode(sb, ino, buf[rel:rel+uint64(sb.inodeSize)])
	if err != nil {
		slog.Warn("ext4: damaged inode refused", "inode", ino, "problem", err.Error())
		return nil, fmt.Errorf("%w: %w", err, errCorrupt)
	}
	if in.st.Mode == 0 || in.st.Nlink == 0 && ino != rootIno {
		return nil, fmt.Errorf("inode %d is not in use: %w", ino, errCorrupt)
	}
	f.inodes.put(ino, in, 1)
	return in, nil
}

// tableRun is a run of an inode table as read, and where it starts on the volume.
type tableRun struct {
	first uint64
	b     []byte
}

// inodeChunk is how much of an inode table one miss reads; inodeTableChunks of them are kept (16 MiB).
const (
	inodeChunk       = 16 << 10
	inodeTableChunks = 1024
)

// Usage reports the superblock's counts.
func (f *FS) Usage() fsys.Usage {
	sb := f.sb
	// The free counts are hints the kernel recomputes; damaged ones must not exceed the totals.
	return fsys.Usage{BlockSize: sb.blockSize, Blocks: sb.blocksCount, FreeBlocks: min(sb.freeBlocks, sb.blocksCount),
		Files: uint64(sb.inodesCount), FreeFiles: uint64(min(sb.freeInodes, sb.inodesCount)), NameMax: 255, Label: sb.label,
		UUID: sb.uuidString()}
}

// Close drops the caches.
func (f *FS) Close() error {
	f.inodes.clear()
	f.dirs.clear()
	f.parents.clear()
	f.linear.clear()
	f.itab.clear()
	return nil
}

// pathErr wraps err as an *fs.PathError unless it already is one.
func pathErr(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}
