package ntfs

import (
	"errors"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"unicode"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// node is a looked-up path: its inode and the directory path it sits in.
type node struct {
	ino  *inode
	name string // last path element ("." for the root)
	dir  string // path of the parent directory
}

// walk looks name up component by component without following symlinks; the directory part is
// expected to hold no symlinks (fsys.Resolve guarantees that).
func (f *FS) walk(op, name string) (node, error) {
	return f.walkCase(op, name, f.opt.IgnoreCase)
}

func (f *FS) walkCase(op, name string, ignoreCase bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	cur, err := f.inode(recRoot)
	if err != nil {
		return node{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if name == "." {
		return node{ino: cur, name: ".", dir: "."}, nil
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if !cur.isDir() {
			return node{}, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory")}
		}
		e, err := f.lookupCase(cur, p, ignoreCase)
		if err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if cur, err = f.child(cur, e); err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		parts[i] = e.name
	}
	return node{ino: cur, name: parts[len(parts)-1], dir: path.Dir(strings.Join(parts, "/"))}, nil
}

// lookupCase finds one name in a directory. Like ntfs-3g, lookups are case-sensitive; ignoreCase
// (Options.IgnoreCase, or resolving a Windows junction target) adds a second pass that compares
// through the volume's $UpCase table.
func (f *FS) lookupCase(dir *inode, name string, ignoreCase bool) (dirEntry, error) {
	list, err := f.listDir(dir)
	if err != nil {
		return dirEntry{}, err
	}
	i := sort.Search(len(list), func(i int) bool { return list[i].name >= name })
	if i < len(list) && list[i].name == name {
		if list[i].second {
			return dirEntry{}, errSecondLink
		}
		return list[i], nil
	}
	if !ignoreCase {
		return dirEntry{}, fs.ErrNotExist
	}
	want := f.upper(name)
	for _, e := range list {
		if f.upper(e.name) == want && !e.second {
			return e, nil
		}
	}
	return dirEntry{}, fs.ErrNotExist
}

// upper maps a name to upper case with the volume's $UpCase table, per UTF-16 unit as NTFS does
// (characters outside the BMP are left alone; without a table, Unicode simple case mapping).
func (f *FS) upper(s string) string {
	f.upcaseOnce.Do(f.loadUpcase)
	return strings.Map(func(r rune) rune {
		switch {
		case r > 0xFFFF:
			return r
		case f.upcase != nil:
			return rune(f.upcase[r])
		default:
			return unicode.ToUpper(r)
		}
	}, s)
}

func (f *FS) loadUpcase() {
	n, err := f.inode(recUpCase)
	if err != nil {
		return
	}
	a := n.find(attrData, "")
	if a == nil {
		return
	}
	v, err := f.attrValue(recUpCase, a, 1<<17)
	if err != nil || len(v) < 1<<17 {
		return
	}
	t := make([]uint16, 1<<16)
	for i := range t {
		t[i] = uint16(v[2*i]) | uint16(v[2*i+1])<<8
	}
	f.upcase = t
}

// child loads the inode an entry of dir names, checking that the entry is current (its sequence
// number matches the record's) and, for a directory, that dir is its parent: NTFS directories have
// exactly one parent, so this keeps a damaged index from turning the tree into a loop.
func (f *FS) child(dir *inode, e dirEntry) (*inode, error) {
	n, err := f.inode(e.rec)
	if err != nil {
		return nil, err
	}
	if e.seq != 0 && e.seq != n.seq {
		return nil, corrupt("entry %q expects sequence %d of MFT record %d, which has %d (stale entry)", e.name, e.seq, e.rec, n.seq)
	}
	if n.isDir() && !n.hasParent(dir.num) {
		return nil, corrupt("directory record %d listed in record %d, which is not its parent", n.num, dir.num)
	}
	return n, nil
}

// info builds the FileInfo of a looked-up node.
func (f *FS) info(nd node) (*fsys.Info, error) {
	k, err := f.classify(nd.ino)
	if err != nil {
		return nil, err
	}
	n := nd.ino
	nlink := uint32(n.linkCount)
	if k.mode&fsys.S_IFMT == fsys.S_IFDIR || nlink == 0 {
		nlink = 1
	}
	return &fsys.Info{EntryName: nd.name, St: fsys.Stat{
		Ino: n.num, Nlink: nlink, Mode: k.mode, Size: k.size, AllocatedSize: k.alloc, Rdev: k.rdev,
		Atime: n.atime, Mtime: n.mtime, Ctime: n.ctime, Btime: n.btime,
	}}, nil
}

// linker is the no-follow view fsys.Resolve walks.
type linker struct{ f *FS }

func (l linker) Lstat(name string) (fs.FileInfo, error) {
	nd, err := l.f.walk("lstat", name)
	if err != nil {
		return nil, err
	}
	return l.f.info(nd)
}

func (l linker) ReadLink(name string) (string, error) {
	nd, err := l.f.walk("readlink", name)
	if err != nil {
		return "", err
	}
	k, err := l.f.classify(nd.ino)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if k.mode&fsys.S_IFMT != fsys.S_IFLNK {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return k.target, nil
}

// resolve follows symlinks in name (all of them, or all but the last) and looks the result up.
func (f *FS) resolve(op, name string, followLast bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	real, err := fsys.Resolve(linker{f}, name, followLast)
	if err != nil {
		return node{}, err
	}
	return f.walk(op, real)
}

// infoAs builds the FileInfo of nd under the name the caller asked for (not a link target's).
func (f *FS) infoAs(nd node, name string) (fs.FileInfo, error) {
	fi, err := f.info(nd)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	fi.EntryName = path.Base(name)
	return fi, nil
}

// Stat describes name, following symlinks.
func (f *FS) Stat(name string) (_ fs.FileInfo, err error) {
	defer guard(&err)
	nd, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return f.infoAs(nd, name)
}

// Lstat describes name without following a final symlink.
func (f *FS) Lstat(name string) (_ fs.FileInfo, err error) {
	defer guard(&err)
	nd, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return f.infoAs(nd, name)
}

// ReadLink returns a symlink's target as ntfs-3g shows it.
func (f *FS) ReadLink(name string) (_ string, err error) {
	defer guard(&err)
	nd, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	k, err := f.classify(nd.ino)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if k.mode&fsys.S_IFMT != fsys.S_IFLNK {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return k.target, nil
}

// ReadDir lists a directory sorted by name, following symlinks in name.
func (f *FS) ReadDir(name string) (_ []fs.DirEntry, err error) {
	defer guard(&err)
	nd, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return f.readDir(nd, name)
}

func (f *FS) readDir(nd node, name string) ([]fs.DirEntry, error) {
	if !nd.ino.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	list, err := f.listDir(nd.ino)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	dirPath := path.Join(nd.dir, nd.name)
	out := make([]fs.DirEntry, 0, len(list))
	for _, e := range list {
		if e.second {
			continue
		}
		ino, err := f.child(nd.ino, e)
		if err != nil {
			// One damaged entry should not hide its siblings; lookups of it report the error.
			slog.Warn("ntfs: skipping an unreadable directory entry", "dir", dirPath, "name", e.name, "err", err)
			continue
		}
		fi, err := f.info(node{ino: ino, name: e.name, dir: dirPath})
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: path.Join(name, e.name), Err: err}
		}
		out = append(out, fi)
	}
	return out, nil
}
