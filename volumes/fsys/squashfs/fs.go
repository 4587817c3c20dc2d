package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Cache budgets: decompressed metadata blocks, data blocks and fragments, and parsed directory entries.
const (
	metaCacheBytes = 4 << 20
	dataCacheBytes = 16 << 20
	dirCacheNames  = 1 << 16
)

// FS is an open squashfs image. It is safe for concurrent use.
type FS struct {
	r         io.ReaderAt
	end       int64 // bytes_used: nothing valid lies beyond
	sb        *superblock
	dec       decompressor
	ids       []uint32
	xattrs    *xattrTable
	metaCache *blockCache
	dataCache *blockCache
	dirs      *dirCache
}

var _ fsys.FS = (*FS)(nil)

// Open reads the superblock and id table of the squashfs image in r (size bytes long).
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	b := make([]byte, superblockSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("squashfs: reading superblock: %w", err)
	}
	sb, err := parseSuperblock(b, size)
	if err != nil {
		return nil, err
	}
	dec, err := newDecompressor(sb.compressor, sb.blockSize)
	if err != nil {
		return nil, err
	}
	f := &FS{
		r: r, end: int64(sb.bytesUsed), sb: sb, dec: dec,
		metaCache: newBlockCache(metaCacheBytes),
		dataCache: newBlockCache(dataCacheBytes),
		dirs:      &dirCache{max: dirCacheNames, byRef: map[uint64]*dirListing{}},
	}
	f.ids = make([]uint32, sb.idCount)
	for i := range f.ids {
		e, err := f.tableEntry(sb.idTableStart, uint64(sb.idCount), 4, uint64(i))
		if err != nil {
			return nil, fmt.Errorf("id table: %w", err)
		}
		f.ids[i] = binary.LittleEndian.Uint32(e)
	}
	if err := f.loadXattrTable(); err != nil {
		return nil, err
	}
	root, err := f.inodeAt(sb.rootInode)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if root.typ != typeDir {
		return nil, fmt.Errorf("%w: root inode is not a directory", ErrCorrupt)
	}
	return f, nil
}

// node is a looked-up path: its inode and the reference it was read from.
type node struct {
	ref uint64
	in  *inode
}

// walk looks up name without following any symlink; every directory part must be a real directory.
func (f *FS) walk(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := &node{ref: f.sb.rootInode}
	var err error
	if cur.in, err = f.inodeAt(cur.ref); err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if name == "." {
		return cur, nil
	}
	// The directories on the path so far: an entry naming one of them again would make the tree
	// endless, so it is reported instead of entered.
	ancestors := []uint64{cur.ref}
	for part := range strings.SplitSeq(name, "/") {
		if cur.in.typ != typeDir {
			return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
		}
		l, err := f.listing(cur.ref, cur.in)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		i, ok := l.byName[part]
		if !ok {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		e := l.entries[i]
		next := &node{ref: e.ref}
		if next.in, err = f.inodeAt(e.ref); err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if next.in.typ != e.typ || next.in.number != e.number {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf(
				"%w: entry says inode %d type %d, inode says %d type %d",
				ErrCorrupt, e.number, e.typ, next.in.number, next.in.typ)}
		}
		parent := cur.in.number
		cur = next
		if cur.in.typ == typeDir {
			if slices.Contains(ancestors, cur.ref) {
				return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf(
					"%w: directory %q links back to its ancestor inode %d (a directory loop)", ErrCorrupt, part, cur.in.number)}
			}
			// A directory names its one parent; reached from another, it is a second link.
			if cur.in.parent != parent {
				return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf(
					"%w: directory %q (inode %d) names inode %d as its parent, not this one", ErrCorrupt, part, cur.in.number, cur.in.parent)}
			}
			ancestors = append(ancestors, cur.ref)
		}
	}
	return cur, nil
}

var errNotDir = errors.New("not a directory")

// resolve follows symlinks in name (the final one too when followLast) and looks the result up.
func (f *FS) resolve(op, name string, followLast bool) (*node, error) {
	real, err := fsys.Resolve(linker{f}, name, followLast)
	if err != nil {
		return nil, err
	}
	return f.walk(op, real)
}

// linker gives fsys.Resolve the no-follow lookups it needs.
type linker struct{ f *FS }

func (l linker) Lstat(name string) (fs.FileInfo, error) {
	n, err := l.f.walk("lstat", name)
	if err != nil {
		return nil, err
	}
	return l.f.info(name, n.in), nil
}

func (l linker) ReadLink(name string) (string, error) { return l.f.ReadLink(name) }

func (f *FS) info(name string, in *inode) *fsys.Info {
	return &fsys.Info{EntryName: path.Base(name), St: f.stat(in)}
}

// Stat follows symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return f.info(name, n.in), nil
}

// Lstat does not follow a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return f.info(name, n.in), nil
}

// ReadLink returns a symlink's target as stored.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.in.typ != typeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.in.target, nil
}

// ReadDir lists a directory sorted by name (squashfs stores entries sorted).
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return f.readDirNode(name, n)
}

func (f *FS) readDirNode(name string, n *node) ([]fs.DirEntry, error) {
	if n.in.typ != typeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	l, err := f.listing(n.ref, n.in)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, 0, len(l.entries))
	for _, e := range l.entries {
		in, err := f.inodeAt(e.ref)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: path.Join(name, e.name), Err: err}
		}
		out = append(out, &fsys.Info{EntryName: e.name, St: f.stat(in)})
	}
	return out, nil
}

// ListXattr names the extended attributes of name, sorted.
func (f *FS) ListXattr(name string) ([]string, error) {
	n, err := f.resolve("listxattr", name, false)
	if err != nil {
		return nil, err
	}
	m, err := f.xattrList(n.in.xattr)
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: name, Err: err}
	}
	return sortedKeys(m), nil
}

// GetXattr returns one extended attribute's value.
func (f *FS) GetXattr(name, attr string) ([]byte, error) {
	n, err := f.resolve("getxattr", name, false)
	if err != nil {
		return nil, err
	}
	m, err := f.xattrList(n.in.xattr)
	if err != nil {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: err}
	}
	v, ok := m[attr]
	if !ok {
		return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fsys.ErrNoXattr}
	}
	return v, nil
}

// Usage reports the image size in blocks; a squashfs image has no free space.
func (f *FS) Usage() fsys.Usage {
	bs := uint64(f.sb.blockSize)
	return fsys.Usage{
		BlockSize: f.sb.blockSize,
		Blocks:    (f.sb.bytesUsed + bs - 1) / bs,
		Files:     uint64(f.sb.inodeCount),
		NameMax:   256,
	}
}

// Close drops the caches.
func (f *FS) Close() error {
	f.metaCache.clear()
	f.dataCache.clear()
	f.dirs.mu.Lock()
	f.dirs.byRef, f.dirs.arrival, f.dirs.total = map[uint64]*dirListing{}, nil, 0
	f.dirs.mu.Unlock()
	return nil
}
