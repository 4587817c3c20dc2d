package graft

import (
	"errors"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// File is one read-only file of a Files tree: a name and the bytes behind it.
type File struct {
	Name string
	R    io.ReaderAt
	Size int64
}

// Files is a flat tree of files read from ReaderAts (a mount's raw disks and volumes), so that they can
// be grafted beside file trees.
type Files struct {
	files map[string]File
	names []string
	time  time.Time
}

var _ fsys.FS = (*Files)(nil)

// NewFiles makes the tree; t stamps every entry.
func NewFiles(files []File, t time.Time) (*Files, error) {
	f := &Files{files: map[string]File{}, time: t}
	for _, x := range files {
		if !fs.ValidPath(x.Name) || x.Name == "." || strings.Contains(x.Name, "/") || f.files[x.Name].R != nil {
			return nil, errors.New("graft: bad or repeated file name " + x.Name)
		}
		f.files[x.Name] = x
		f.names = append(f.names, x.Name)
	}
	sort.Strings(f.names)
	return f, nil
}

func (f *Files) info(name string) (*fsys.Info, bool) {
	if name == "." {
		return &fsys.Info{EntryName: ".", St: fsys.Stat{Ino: 1, Nlink: 2, Mode: fsys.S_IFDIR | 0o555,
			Atime: f.time, Mtime: f.time, Ctime: f.time}}, true
	}
	x, ok := f.files[name]
	if !ok {
		return nil, false
	}
	i := sort.SearchStrings(f.names, name)
	return &fsys.Info{EntryName: name, St: fsys.Stat{Ino: uint64(i) + 2, Nlink: 1, Mode: fsys.S_IFREG | 0o444,
		Size: x.Size, AllocatedSize: x.Size, Atime: f.time, Mtime: f.time, Ctime: f.time}}, true
}

// Stat describes the root or one file.
func (f *Files) Stat(name string) (fs.FileInfo, error) {
	if fi, ok := f.info(name); ok {
		return fi, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// Lstat is Stat: there are no links.
func (f *Files) Lstat(name string) (fs.FileInfo, error) { return f.Stat(name) }

// ReadLink fails: there are no links.
func (f *Files) ReadLink(name string) (string, error) {
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

// ReadDir lists the files (the root is the only directory).
func (f *Files) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(f.names))
	for _, n := range f.names {
		fi, _ := f.info(n)
		out = append(out, fi)
	}
	return out, nil
}

// Open opens one file for reading at offsets, or the root.
func (f *Files) Open(name string) (fs.File, error) {
	fi, ok := f.info(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if name == "." {
		return &dir{g: &FS{base: f, index: map[fsys.FS]uint64{f: 0}}, name: ".", fi: fi}, nil
	}
	x := f.files[name]
	return &file{SectionReader: io.NewSectionReader(x.R, 0, x.Size), fi: fi}, nil
}

type file struct {
	*io.SectionReader
	fi fs.FileInfo
}

func (f *file) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *file) Close() error               { return nil }

// ListXattr lists nothing.
func (f *Files) ListXattr(string) ([]string, error) { return nil, nil }

// GetXattr finds nothing.
func (f *Files) GetXattr(name, attr string) ([]byte, error) {
	return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fsys.ErrNoXattr}
}

// Usage reports the files' total size.
func (f *Files) Usage() fsys.Usage {
	var n int64
	for _, x := range f.files {
		n += x.Size
	}
	return fsys.Usage{BlockSize: 512, Blocks: uint64(n+511) / 512, NameMax: 255}
}

// Close does nothing: the readers belong to the caller.
func (f *Files) Close() error { return nil }
