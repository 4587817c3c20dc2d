// Package xfs reads XFS volumes (v4 and v5 superblocks) into the read-only fsys.FS tree: every directory
// format, extent and btree data forks, symlinks, device nodes and extended attributes. All reads are
// positional, so one FS serves many goroutines at once.
package xfs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Cache bounds: inodes by count, extent maps by extents, directory name maps by bytes.
const (
	inodeCacheSize  = 16384
	extentCacheSize = 1 << 20
	dirCacheSize    = 64 << 20
)

// FS is an open XFS volume.
type FS struct {
	fsys.Linked[*inode] // Stat, Lstat, ReadLink, Resolve

	r       io.ReaderAt
	size    int64
	sb      *superblock
	inodes  *fsys.LRU[uint64, *inode]
	extents *fsys.LRU[extentKey, []extent]
	dirs    *fsys.LRU[uint64, *dirMap]
	// parents holds the ".." of directories whose listing is not cached (read from their first block).
	parents *fsys.LRU[uint64, uint64]
	state   fsys.VolumeState
	log     *xlog // the internal log and its head, when it needs recovery
	head    int64
	// intents are the tree-changing intents the replayed log left unfinished, in log order.
	intents []openIntent
	// redone and blocksDelta are the finished bmap intents (redo.go): the extent maps of the forks
	// they changed and the change of each inode's block count.
	redone      map[extentKey][]extent
	blocksDelta map[uint64]int64
	view        io.ReaderAt
}

type extentKey struct {
	ino  uint64
	attr bool
}

var (
	_ fsys.FS            = (*FS)(nil)
	_ fsys.StateReporter = (*FS)(nil)
)

// Open reads the superblock of the XFS volume in r (size bytes) and returns its tree.
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	return OpenWith(r, size, Options{})
}

// Options tune OpenWith.
type Options struct {
	// NoReplay shows the volume as it lies on disk even when its log needs recovery; by default the
	// log's committed transactions are replayed in memory.
	NoReplay bool
}

// OpenWith is Open with options. A volume whose log needs recovery is shown as the kernel would show
// it after replaying the log, unless opt.NoReplay; VolumeState says which.
func OpenWith(r io.ReaderAt, size int64, opt Options) (*FS, error) {
	f, err := open(r, size)
	if err != nil || f.state.State == fsys.StateClean {
		return f, err
	}
	if f.log == nil || opt.NoReplay {
		if opt.NoReplay {
			f.state.Detail += " (no-replay)"
		}
		slog.Warn("xfs: "+f.state.Detail, "label", f.sb.label)
		return f, nil
	}
	view, n, err := f.recoverLog(f.log, f.head)
	if err != nil {
		f.state.Detail = "the XFS log needs recovery but could not be replayed: " + err.Error()
		slog.Warn("xfs: log not replayed; the tree may be stale", "label", f.sb.label, "err", err)
		return f, nil
	}
	if view == nil {
		f.state = fsys.VolumeState{State: fsys.StateReplayed, Detail: "the XFS log needed recovery but held no committed transaction"}
		return f, nil
	}
	g, err := open(view, size)
	if err != nil {
		return nil, fmt.Errorf("xfs: after replaying the log: %w", err)
	}
	g.view = view
	g.state = fsys.VolumeState{State: fsys.StateReplayed, Detail: fmt.Sprintf("XFS log replayed in memory: %d transactions", n)}
	redone, err := g.redoBmaps(f.intents)
	switch {
	case err != nil:
		g.state = fsys.VolumeState{State: fsys.StateDirty, Detail: g.state.Detail + "; the unfinished bmap intents were not finished: " +
			err.Error() + "; files they change may show their extents from before"}
		slog.Warn("xfs: "+g.state.Detail, "label", f.sb.label)
	case redone > 0:
		g.state.Detail += fmt.Sprintf(", %d unfinished bmap intents finished", redone)
	}
	if rest := describeIntents(f.intents, liBUI); rest != "" {
		g.state = fsys.VolumeState{State: fsys.StateDirty, Detail: g.state.Detail + "; not redone: " + rest +
			", which the kernel finishes after its replay: files they change may show their extents or attributes from before"}
		slog.Warn("xfs: "+g.state.Detail, "label", f.sb.label)
	}
	return g, nil
}

// Reader is the view of the volume the tree is read from: the replayed log over the volume's bytes
// when a replay happened, else the volume itself.
func (f *FS) Reader() io.ReaderAt { return f.r }

func open(r io.ReaderAt, size int64) (*FS, error) {
	buf := make([]byte, 512)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading superblock: %w", err)
	}
	if string(buf[:4]) != "XFSB" {
		return nil, errors.New("xfs: no XFSB magic at volume start")
	}
	sect := int(be.Uint16(buf[102:]))
	if sect > 512 && sect <= 32768 && sect&(sect-1) == 0 {
		buf = make([]byte, sect)
		if _, err := r.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("xfs: reading superblock: %w", err)
		}
	}
	sb, err := parseSuperblock(buf)
	if err != nil {
		return nil, err
	}
	if need := int64(sb.dblocks << sb.blockLog); need > size || need < 0 {
		return nil, fmt.Errorf("xfs: volume of %d bytes is smaller than the %d the superblock claims", size, need)
	}
	if sb.incompat&incompatNeedsRepr != 0 {
		slog.Warn("xfs: volume is flagged as needing xfs_repair; reading it anyway")
	}
	f := &FS{
		r: r, size: size, sb: sb,
		inodes:  fsys.NewLRU[uint64, *inode](inodeCacheSize),
		extents: fsys.NewLRU[extentKey, []extent](extentCacheSize),
		dirs:    fsys.NewLRU[uint64, *dirMap](dirCacheSize),
		parents: fsys.NewLRU[uint64, uint64](inodeCacheSize),
	}
	f.Linked = fsys.Linked[*inode]{Walk: f.walk, Info: f.info, Link: f.readLink}
	root, err := f.inode(sb.rootIno)
	if err != nil {
		return nil, fmt.Errorf("xfs: root directory: %w", err)
	}
	if !root.isDir() {
		return nil, corruptf("root inode %d is not a directory", sb.rootIno)
	}
	f.state = f.logState()
	return f, nil
}

// readAt reads exactly len(p) bytes at a volume offset, refusing anything past the volume's end.
func (f *FS) readAt(p []byte, off int64) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return corruptf("read of %d bytes at %d beyond the %d-byte volume", len(p), off, f.size)
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("xfs: read at %d: %w", off, err)
}

// readBlocks reads count consecutive filesystem blocks starting at fsb.
func (f *FS) readBlocks(fsb, count uint64) ([]byte, error) {
	if err := f.sb.checkRun(fsb, count); err != nil {
		return nil, err
	}
	off, err := f.sb.fsbToByte(fsb)
	if err != nil {
		return nil, err
	}
	b := make([]byte, count<<f.sb.blockLog)
	return b, f.readAt(b, off)
}

// inode returns the decoded inode ino, from the cache when possible.
func (f *FS) inode(ino uint64) (*inode, error) {
	if ip, ok := f.inodes.Get(ino); ok {
		return ip, nil
	}
	off, err := f.sb.inodeByte(ino)
	if err != nil {
		return nil, err
	}
	b := make([]byte, f.sb.inodeSize)
	if err := f.readAt(b, off); err != nil {
		return nil, err
	}
	ip, err := parseInode(f.sb, ino, b)
	if err != nil {
		return nil, err
	}
	if d, ok := f.blocksDelta[ino]; ok {
		ip.nblocks = uint64(int64(ip.nblocks) + d) // redoBmaps checked it stays positive
	}
	f.inodes.Put(ino, ip, 1)
	return ip, nil
}

// Usage reports the volume's geometry the way statfs does on Linux.
func (f *FS) Usage() fsys.Usage {
	sb := f.sb
	blocks := sb.dblocks
	if sb.logStart != 0 {
		blocks -= min(uint64(sb.logBlocks), blocks) // a damaged log size must not wrap the count
	}
	files := sb.icount + sb.fdblocks<<sb.inopbLog
	if sb.imaxPct != 0 {
		maxInodes := sb.dblocks * uint64(sb.imaxPct) / 100 << sb.inopbLog
		files = min(files, max(maxInodes, sb.icount))
	}
	return fsys.Usage{
		BlockSize:  sb.blockSize,
		Blocks:     blocks,
		FreeBlocks: min(sb.fdblocks, blocks), // damaged counters must not exceed the totals
		Files:      files,
		FreeFiles:  files - min(sb.icount-min(sb.ifree, sb.icount), files),
		NameMax:    255,
		Label:      sb.label,
		UUID:       sb.uuidString(),
	}
}

// Close drops the caches; the reader stays open.
func (f *FS) Close() error {
	f.inodes.Clear()
	f.extents.Clear()
	f.dirs.Clear()
	return nil
}
