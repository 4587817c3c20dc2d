package iso9660

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// dirCacheNames bounds how many parsed directory entries stay cached.
const dirCacheNames = 1 << 16

// FS is an open ISO9660 image. It is safe for concurrent use.
type FS struct {
	r      io.ReaderAt
	size   int64
	label  string
	blocks uint32
	rock   bool // Rock Ridge names and attributes
	skip   int  // SUSP bytes to skip at the start of each system use area
	joliet bool // Joliet names (only without Rock Ridge)
	root   *node
	dirs   *dirCache
}

var _ fsys.FS = (*FS)(nil)

// Open reads the volume descriptors and the root directory of the ISO9660 image in r.
func Open(r io.ReaderAt, size int64) (fsys.FS, error) {
	pvd, svd, err := readDescriptors(r, size)
	if err != nil {
		return nil, err
	}
	f := &FS{r: r, size: size, label: pvd.label, blocks: pvd.volumeSize,
		dirs: &dirCache{max: dirCacheNames, byBlock: map[uint32]*listing{}}}
	rootRec, err := parseRecord(pvd.root)
	if err != nil {
		return nil, fmt.Errorf("root record: %w", err)
	}
	// Rock Ridge is announced by an SP entry in the root's own "." record.
	dot, err := f.dotRecord(rootRec)
	if err != nil {
		return nil, err
	}
	rr, err := f.parseSUSP(dot.system, 0)
	if err == nil && (rr.sp || rr.any) {
		f.rock, f.skip = true, rr.skip
		if rr, err = f.parseSUSP(dot.system, f.skip); err != nil {
			return nil, fmt.Errorf("root Rock Ridge entries: %w", err)
		}
	} else {
		rr = nil
		if svd != nil {
			f.joliet, f.label = true, svd.label
			if rootRec, err = parseRecord(svd.root); err != nil {
				return nil, fmt.Errorf("root record of the Joliet tree: %w", err)
			}
			if dot, err = f.dotRecord(rootRec); err != nil {
				return nil, err
			}
		}
	}
	f.root = &node{name: ".", st: f.baseStat(dot, rr, int64(rootRec.extent)*sectorSize),
		dir: extent{block: rootRec.extent, size: rootRec.size}}
	if !f.root.isDir() {
		return nil, fmt.Errorf("%w: root is not a directory", ErrCorrupt)
	}
	f.root.st.Size = int64(rootRec.size)
	f.root.st.AllocatedSize = allocated(f.root.st.Size)
	return f, nil
}

// dotRecord reads the "." record at the start of a directory listing.
func (f *FS) dotRecord(dir *record) (*record, error) {
	pos := int64(dir.extent) * sectorSize
	if dir.flags&flagDirectory == 0 || pos+sectorSize > f.size {
		return nil, fmt.Errorf("%w: root directory at block %d", ErrCorrupt, dir.extent)
	}
	buf := make([]byte, sectorSize)
	if _, err := f.r.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("iso9660: reading root directory: %w", err)
	}
	rec, err := parseRecord(buf)
	if err != nil {
		return nil, fmt.Errorf("root \".\" record: %w", err)
	}
	return rec, nil
}

var errNotDir = errors.New("not a directory")

// walk looks up name without following any symlink.
func (f *FS) walk(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur := f.root
	if name == "." {
		return cur, nil
	}
	// The directory extents on the path so far: a record naming one of them again would make the tree
	// endless, so it is reported instead of entered.
	ancestors := []uint32{cur.dir.block}
	for part := range strings.SplitSeq(name, "/") {
		if !cur.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: errNotDir}
		}
		l, err := f.list(cur.dir)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		next, ok := l.byName[part]
		if !ok && l.second[part] {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: %q names a directory already listed under another name", ErrCorrupt, part)}
		}
		if !ok {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		cur = next
		if cur.isDir() {
			if slices.Contains(ancestors, cur.dir.block) {
				return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: directory %q links back to its ancestor at block %d (a directory loop)", ErrCorrupt, part, cur.dir.block)}
			}
			ancestors = append(ancestors, cur.dir.block)
		}
	}
	return cur, nil
}

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
	return info(name, n), nil
}

func (l linker) ReadLink(name string) (string, error) { return l.f.ReadLink(name) }

func info(name string, n *node) *fsys.Info {
	return &fsys.Info{EntryName: path.Base(name), St: n.st}
}

// Stat follows symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return info(name, n), nil
}

// Lstat does not follow a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return info(name, n), nil
}

// ReadLink returns a Rock Ridge symlink's target.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.st.Mode&fsys.S_IFMT != fsys.S_IFLNK {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// ReadDir lists a directory sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return f.readDirNode(name, n)
}

func (f *FS) readDirNode(name string, n *node) ([]fs.DirEntry, error) {
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	l, err := f.list(n.dir)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, 0, len(l.nodes))
	for _, c := range l.nodes {
		out = append(out, &fsys.Info{EntryName: c.name, St: c.st})
	}
	return out, nil
}

// ListXattr reports no attributes: Rock Ridge has none.
func (f *FS) ListXattr(name string) ([]string, error) {
	if _, err := f.resolve("listxattr", name, false); err != nil {
		return nil, err
	}
	return []string{}, nil
}

// GetXattr always reports fsys.ErrNoXattr for an existing entry.
func (f *FS) GetXattr(name, attr string) ([]byte, error) {
	if _, err := f.resolve("getxattr", name, false); err != nil {
		return nil, err
	}
	return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fsys.ErrNoXattr}
}

// Usage reports the volume size; an ISO image has no free space.
func (f *FS) Usage() fsys.Usage {
	return fsys.Usage{BlockSize: sectorSize, Blocks: uint64(f.blocks), NameMax: 255, Label: f.label}
}

// Close drops the directory cache.
func (f *FS) Close() error {
	f.dirs.clear()
	return nil
}
