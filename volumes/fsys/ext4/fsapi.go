package ext4

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Lstat describes name without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	in, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return infoFor(name, in), nil
}

// Stat describes name, following symlinks inside the volume.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	in, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return infoFor(name, in), nil
}

// ReadLink returns a symlink's target as stored.
func (f *FS) ReadLink(name string) (string, error) {
	in, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	return f.linkTarget(name, in)
}

// ReadDir lists a directory sorted by name; a final symlink is not followed.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := f.lookup("readdir", name, false)
	if err != nil {
		return nil, err
	}
	return f.readDir(name, in)
}

func (f *FS) readDir(name string, in *inode) ([]fs.DirEntry, error) {
	if !in.isDir() {
		return nil, pathErr("readdir", name, errNotDir)
	}
	d, err := f.directory(in)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	out := make([]fs.DirEntry, 0, len(d.entries))
	for _, e := range d.entries {
		if f.linkedElsewhere(in, e) {
			continue
		}
		out = append(out, &dirEntry{f: f, dir: name, ent: e})
	}
	return out, nil
}

// linkedElsewhere reports whether e names a directory whose ".." is not dir: a second link to a
// directory that lives elsewhere (walk refuses a lookup through it). Reading ".." goes through the
// listing and parent caches, which the walk into the child then reuses; a child that cannot be read
// stays listed, so its own error shows.
func (f *FS) linkedElsewhere(dir *inode, e dirent) bool {
	if e.ftype != 2 && e.ftype != 0 {
		return false
	}
	child, err := f.inode(e.ino)
	if err != nil || !child.isDir() {
		return false
	}
	parent, err := f.parentOf(child)
	if err != nil || parent == dir.ino {
		return false
	}
	slog.Debug("ext4: directory listed away from its parent left out", "name", e.name, "inode", e.ino, "parent", parent)
	return true
}

// dirEntry takes its type from the directory entry and reads the inode only when Info is asked for.
type dirEntry struct {
	f   *FS
	dir string
	ent dirent
}

func (e *dirEntry) Name() string { return e.ent.name }
func (e *dirEntry) Ino() uint64  { return uint64(e.ent.ino) }
func (e *dirEntry) IsDir() bool  { return e.Type().IsDir() }

var direntTypes = [8]fs.FileMode{0, 0, fs.ModeDir, fs.ModeDevice | fs.ModeCharDevice, fs.ModeDevice,
	fs.ModeNamedPipe, fs.ModeSocket, fs.ModeSymlink}

func (e *dirEntry) Type() fs.FileMode {
	if t := e.ent.ftype; t >= 1 && t <= 7 {
		return direntTypes[t]
	}
	if in, err := e.f.inode(e.ent.ino); err == nil {
		return fsys.FileMode(in.st.Mode).Type()
	}
	return 0
}

func (e *dirEntry) Info() (fs.FileInfo, error) {
	in, err := e.f.inode(e.ent.ino)
	if err != nil {
		return nil, pathErr("stat", path.Join(e.dir, e.ent.name), err)
	}
	return &fsys.Info{EntryName: e.ent.name, St: in.st}, nil
}

func (e *dirEntry) String() string { return fs.FormatDirEntry(e) }

// ListXattr names name's extended attributes, sorted; a final symlink is not followed.
func (f *FS) ListXattr(name string) ([]string, error) {
	in, err := f.lookup("listxattr", name, false)
	if err != nil {
		return nil, err
	}
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, pathErr("listxattr", name, err)
	}
	return sortedKeys(xs), nil
}

// GetXattr returns one extended attribute of name; a final symlink is not followed.
func (f *FS) GetXattr(name, attr string) ([]byte, error) {
	in, err := f.lookup("getxattr", name, false)
	if err != nil {
		return nil, err
	}
	return f.xattr(in, name, attr)
}

// GetXattrInode is GetXattr of the entry whose Stat.Ino is ino (fsys.InodeXattrGetter).
func (f *FS) GetXattrInode(ino uint64, name, attr string) ([]byte, error) {
	if ino == 0 || ino > uint64(f.sb.inodesCount) {
		return nil, pathErr("getxattr", name, fmt.Errorf("inode %d out of range: %w", ino, fs.ErrNotExist))
	}
	in, err := f.inode(uint32(ino))
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	return f.xattr(in, name, attr)
}

func (f *FS) xattr(in *inode, name, attr string) ([]byte, error) {
	xs, err := f.xattrs(in)
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	v, ok := xs[attr]
	if !ok {
		return nil, pathErr("getxattr", name, fmt.Errorf("%s: %w", attr, fsys.ErrNoXattr))
	}
	return append([]byte(nil), v...), nil
}

// Open opens name, following symlinks. Regular files (and devices, fifos and sockets, which read as
// empty) are fsys.File; directories are fs.ReadDirFile.
func (f *FS) Open(name string) (fs.File, error) {
	in, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := infoFor(name, in)
	if in.isDir() {
		return &fsys.DirFile{Path: name, Info: info, Load: func() ([]fs.DirEntry, error) { return f.readDir(name, in) }}, nil
	}
	d := &data{f: f}
	if in.typ() == fsys.S_IFREG {
		if d, err = f.dataOf(in); err != nil {
			return nil, pathErr("open", name, err)
		}
	}
	return &file{d: d, info: info}, nil
}

// OpenInode opens the regular file with inode number ino (fsys.InodeOpener).
func (f *FS) OpenInode(ino uint64, name string) (fsys.File, error) {
	if ino == 0 || ino > uint64(f.sb.inodesCount) {
		return nil, pathErr("open", name, fmt.Errorf("inode %d out of range: %w", ino, fs.ErrNotExist))
	}
	in, err := f.inode(uint32(ino))
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if in.typ() != fsys.S_IFREG {
		return nil, pathErr("open", name, fmt.Errorf("inode %d is not a regular file: %w", ino, fs.ErrInvalid))
	}
	d, err := f.dataOf(in)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &file{d: d, info: infoFor(name, in)}, nil
}

// file is an open regular file. ReadAt is lock-free; Read and Seek share an offset under a mutex.
type file struct {
	d    *data
	info *fsys.Info
	fsys.Cursor
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.info, nil }
func (fl *file) Close() error               { return nil }

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.info.EntryName, Err: fs.ErrInvalid}
	}
	if len(p) == 0 {
		return 0, nil
	}
	return fl.d.ReadAt(p, off)
}

func (fl *file) Read(p []byte) (int, error) { return fl.ReadFrom(fl.d, p) }

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	return fl.SeekIn(fl.info.EntryName, fl.d.size, offset, whence)
}
