// Package graft composes file trees: a base tree with other trees grafted at paths inside it, the way a
// guest mounts /boot and /home over its root or shows its drives side by side. The result is an
// fsys.FS like any reader's, so a FUSE layer mounts it without knowing it is composed.
//
// A grafted tree hides what the base has at its mount point, as a mount does. Directories leading to a
// mount point that the base lacks (or every one, with no base) are made up, read-only and empty but for
// the grafts. Inode numbers stay unique: each tree's numbers get its index in the top 16 bits.
// Symbolic links are followed inside the tree that holds them, as every reader does.
package graft

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Mount is one tree and where it goes: a slash-separated path without a leading slash ("boot",
// "home/alice", "C").
type Mount struct {
	Path string
	Tree fsys.FS
}

// FS is a base tree with trees grafted onto it.
type FS struct {
	base   fsys.FS // may be nil: only grafts and the directories leading to them
	mounts []Mount // longest path first, so the deepest graft wins
	index  map[fsys.FS]uint64
	synth  map[string]uint64 // made-up directories, with their inode numbers
	time   time.Time
}

var _ fsys.FS = (*FS)(nil)

// New grafts mounts onto base (nil for none). Mount paths must be distinct and not "." unless base is
// nil; t stamps the made-up directories.
func New(base fsys.FS, mounts []Mount, t time.Time) (*FS, error) {
	g := &FS{base: base, index: map[fsys.FS]uint64{}, synth: map[string]uint64{".": 1}, time: t}
	seen := map[string]bool{}
	for _, m := range mounts {
		p := strings.Trim(path.Clean("/"+m.Path), "/")
		if p == "" || m.Tree == nil || seen[p] || !fs.ValidPath(p) {
			return nil, fmt.Errorf("graft: bad mount path %q", m.Path)
		}
		seen[p] = true
		g.mounts = append(g.mounts, Mount{Path: p, Tree: m.Tree})
	}
	sort.SliceStable(g.mounts, func(i, j int) bool { return len(g.mounts[i].Path) > len(g.mounts[j].Path) })
	if base != nil {
		g.index[base] = 0
	}
	for i, m := range g.mounts {
		if _, ok := g.index[m.Tree]; !ok {
			g.index[m.Tree] = uint64(i + 1)
		}
	}
	// Every proper ancestor of a mount point may have to be made up.
	for _, m := range g.mounts {
		for d := path.Dir(m.Path); d != "."; d = path.Dir(d) {
			if _, ok := g.synth[d]; !ok {
				g.synth[d] = uint64(len(g.synth) + 1)
			}
		}
	}
	return g, nil
}

// resolve finds the tree holding name and the name inside it; mount is the graft's path when name is
// a mount point itself. ok is false when no tree holds it (no base).
func (g *FS) resolve(name string) (t fsys.FS, rel string, ok bool) {
	for _, m := range g.mounts {
		if name == m.Path {
			return m.Tree, ".", true
		}
		if strings.HasPrefix(name, m.Path+"/") {
			return m.Tree, name[len(m.Path)+1:], true
		}
	}
	if g.base == nil {
		return nil, "", false
	}
	return g.base, name, true
}

func (g *FS) check(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// ino puts the tree's index in the top 16 bits of its inode numbers.
func (g *FS) ino(t fsys.FS, ino uint64) uint64 { return g.index[t]<<48 | ino&(1<<48-1) }

// info renames and renumbers an entry of tree t.
func (g *FS) info(t fsys.FS, fi fs.FileInfo, name string) fs.FileInfo {
	st := fsys.StatOf(fi)
	if st == nil {
		return fi
	}
	c := *st
	c.Ino = g.ino(t, st.Ino)
	return &fsys.Info{EntryName: name, St: c}
}

// synthInfo is a made-up directory.
func (g *FS) synthInfo(name string) (fs.FileInfo, bool) {
	n, ok := g.synth[name]
	if !ok {
		return nil, false
	}
	return &fsys.Info{EntryName: path.Base(name), St: fsys.Stat{Ino: 1<<62 | n, Nlink: 2, Mode: fsys.S_IFDIR | 0o555,
		Atime: g.time, Mtime: g.time, Ctime: g.time}}, true
}

func (g *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	if err := g.check(op, name); err != nil {
		return nil, err
	}
	t, rel, ok := g.resolve(name)
	if ok {
		var fi fs.FileInfo
		var err error
		if follow {
			fi, err = t.Stat(rel)
		} else {
			fi, err = t.Lstat(rel)
		}
		if err == nil {
			return g.info(t, fi, path.Base(name)), nil
		}
		if _, synth := g.synth[name]; !synth || !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if fi, ok := g.synthInfo(name); ok {
		return fi, nil
	}
	return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// Stat follows a final symbolic link inside its tree.
func (g *FS) Stat(name string) (fs.FileInfo, error) { return g.stat("stat", name, true) }

// Lstat does not follow a final symbolic link.
func (g *FS) Lstat(name string) (fs.FileInfo, error) { return g.stat("lstat", name, false) }

// ReadLink reads a symbolic link.
func (g *FS) ReadLink(name string) (string, error) {
	if err := g.check("readlink", name); err != nil {
		return "", err
	}
	t, rel, ok := g.resolve(name)
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return t.ReadLink(rel)
}

// entry renumbers a directory entry of tree t when its Info is asked for.
type entry struct {
	fs.DirEntry
	g *FS
	t fsys.FS
}

func (e entry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	if err != nil {
		return nil, err
	}
	return e.g.info(e.t, fi, e.Name()), nil
}

// ReadDir lists a directory: its tree's entries, with grafts in place of (or beside) them.
func (g *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := g.check("readdir", name); err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	t, rel, ok := g.resolve(name)
	_, synth := g.synth[name]
	if ok {
		ents, err := t.ReadDir(rel)
		if err != nil && !(synth && errors.Is(err, fs.ErrNotExist)) {
			return nil, err
		}
		for _, e := range ents {
			out = append(out, entry{e, g, t})
		}
	} else if !synth {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	// Grafts and made-up directories whose parent is this directory.
	children := map[string]bool{}
	for _, m := range g.mounts {
		if path.Dir(m.Path) == name {
			children[path.Base(m.Path)] = true
		}
	}
	for d := range g.synth {
		if d != "." && path.Dir(d) == name {
			children[path.Base(d)] = true
		}
	}
	if len(children) == 0 {
		return out, nil
	}
	out = slices.DeleteFunc(out, func(e fs.DirEntry) bool { return children[e.Name()] })
	for c := range children {
		fi, err := g.Lstat(path.Join(name, c))
		if err != nil {
			return nil, err
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open opens a file (or directory) of the tree that holds it.
func (g *FS) Open(name string) (fs.File, error) {
	if err := g.check("open", name); err != nil {
		return nil, err
	}
	if t, rel, ok := g.resolve(name); ok {
		f, err := t.Open(rel)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	fi, ok := g.synthInfo(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &dir{g: g, name: name, fi: fi}, nil
}

// dir is an open made-up directory.
type dir struct {
	g    *FS
	name string
	fi   fs.FileInfo
	ents []fs.DirEntry
	read bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *dir) Close() error { return nil }

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.g.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}

func (g *FS) xattrTree(name string) (fsys.FS, string, error) {
	if err := g.check("xattr", name); err != nil {
		return nil, "", err
	}
	t, rel, ok := g.resolve(name)
	if ok {
		if _, err := t.Lstat(rel); err == nil {
			return t, rel, nil
		}
	}
	return nil, "", nil
}

// ListXattr lists a file's extended attributes (none for made-up directories).
func (g *FS) ListXattr(name string) ([]string, error) {
	t, rel, err := g.xattrTree(name)
	if err != nil || t == nil {
		return nil, err
	}
	return t.ListXattr(rel)
}

// GetXattr reads one extended attribute.
func (g *FS) GetXattr(name, attr string) ([]byte, error) {
	t, rel, err := g.xattrTree(name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%s: %w", name, fsys.ErrNoXattr)
	}
	return t.GetXattr(rel, attr)
}

// Usage reports the base tree's usage (the first graft's without a base).
func (g *FS) Usage() fsys.Usage {
	if g.base != nil {
		return g.base.Usage()
	}
	if len(g.mounts) > 0 {
		return g.mounts[len(g.mounts)-1].Tree.Usage()
	}
	return fsys.Usage{}
}

// Close does nothing: the trees belong to the caller.
func (g *FS) Close() error { return nil }
