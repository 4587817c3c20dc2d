package fsys

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
)

// Plain serves the path-level calls of a reader whose nodes have no symbolic links and no extended
// attributes (FAT, exFAT): Stat, Lstat, ReadLink, ReadDir, ListXattr, GetXattr and the directory side
// of Open, written once over the reader's node type N. The reader fills in the functions; an embedded
// Plain gives its FS those methods.
type Plain[N any] struct {
	// Lookup resolves an io/fs path, returning *fs.PathError (with op) on failure.
	Lookup func(op, name string) (N, error)
	// StatNode builds a node's Stat.
	StatNode func(n N) (Stat, error)
	// NameOf is the node's stored name (nil for the root: the path's base is used).
	NameOf func(n N) (string, bool)
	IsDir  func(n N) bool
	// List lists a directory's entries in any order, entries not to show (second names) left out.
	List func(n N) ([]PlainEntry[N], error)
	// NotDir is the reader's "not a directory" error.
	NotDir error
}

// PlainEntry is one listed entry.
type PlainEntry[N any] struct {
	Name string
	Dir  bool
	Node N
}

// Info builds the FileInfo of n named name.
func (p *Plain[N]) Info(n N, name string) (*Info, error) {
	st, err := p.StatNode(n)
	if err != nil {
		return nil, err
	}
	return &Info{EntryName: name, St: st}, nil
}

// BaseName is the name a FileInfo of n reached by path name carries: the stored name, whatever case
// or alias was asked.
func (p *Plain[N]) BaseName(n N, name string) string {
	if s, ok := p.NameOf(n); ok {
		return s
	}
	return path.Base(name)
}

// Stat returns the FileInfo of name.
func (p *Plain[N]) Stat(name string) (fs.FileInfo, error) {
	n, err := p.Lookup("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := p.Info(n, p.BaseName(n, name))
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// Lstat is Stat: there are no symbolic links.
func (p *Plain[N]) Lstat(name string) (fs.FileInfo, error) { return p.Stat(name) }

// ReadLink always fails: there are no symbolic links.
func (p *Plain[N]) ReadLink(name string) (string, error) {
	if _, err := p.Lookup("readlink", name); err != nil {
		return "", err
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

// ReadDir lists a directory sorted by name as io/fs asks, without "." and "..".
func (p *Plain[N]) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := p.Lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !p.IsDir(n) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: p.NotDir}
	}
	return p.readDir(n, name)
}

func (p *Plain[N]) readDir(n N, name string) ([]fs.DirEntry, error) {
	ents, err := p.List(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, &plainDirEntry[N]{p: p, e: e})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// plainDirEntry computes its FileInfo on demand: a directory's link count needs its own listing.
type plainDirEntry[N any] struct {
	p *Plain[N]
	e PlainEntry[N]
}

func (d *plainDirEntry[N]) Name() string { return d.e.Name }
func (d *plainDirEntry[N]) IsDir() bool  { return d.e.Dir }
func (d *plainDirEntry[N]) Type() fs.FileMode {
	if d.e.Dir {
		return fs.ModeDir
	}
	return 0
}
func (d *plainDirEntry[N]) Info() (fs.FileInfo, error) { return d.p.Info(d.e.Node, d.e.Name) }

// Open resolves name and opens it: a directory as a DirFile, anything else through file.
func (p *Plain[N]) Open(name string, file func(n N, fi *Info) (fs.File, error)) (fs.File, error) {
	n, err := p.Lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := p.Info(n, p.BaseName(n, name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if p.IsDir(n) {
		return &DirFile{Path: name, Info: fi, Load: func() ([]fs.DirEntry, error) { return p.readDir(n, name) }}, nil
	}
	return file(n, fi)
}

// ListXattr returns no names.
func (p *Plain[N]) ListXattr(name string) ([]string, error) {
	if _, err := p.Lookup("listxattr", name); err != nil {
		return nil, err
	}
	return nil, nil
}

// GetXattr always reports ErrNoXattr.
func (p *Plain[N]) GetXattr(name, attr string) ([]byte, error) {
	if _, err := p.Lookup("getxattr", name); err != nil {
		return nil, err
	}
	return nil, &fs.PathError{Op: "getxattr", Path: name, Err: fmt.Errorf("%w: %s", ErrNoXattr, attr)}
}

// WalkPath resolves an io/fs path from root one component at a time, step finding comp in directory
// cur. It checks the path, refuses to descend through a non-directory (notDir) and wraps every
// failure in a *fs.PathError.
func WalkPath[N any](op, name string, root N, isDir func(N) bool, notDir error, step func(cur N, comp string) (N, error)) (N, error) {
	var zero N
	if !fs.ValidPath(name) {
		return zero, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return root, nil
	}
	cur := root
	for _, comp := range strings.Split(name, "/") {
		if !isDir(cur) {
			return zero, &fs.PathError{Op: op, Path: name, Err: notDir}
		}
		next, err := step(cur, comp)
		if err != nil {
			return zero, &fs.PathError{Op: op, Path: name, Err: err}
		}
		cur = next
	}
	return cur, nil
}

// CountDirs counts the entries isDir says are directories.
func CountDirs[E any](ents []E, isDir func(*E) bool) uint32 {
	n := uint32(0)
	for i := range ents {
		if isDir(&ents[i]) {
			n++
		}
	}
	return n
}

// RoundUp rounds n up to a multiple of unit (AllocatedSize in whole clusters or blocks).
func RoundUp(n, unit int64) int64 { return (n + unit - 1) / unit * unit }

// EntryValue resolves name and returns get of its node, or root for the root (which has no entry):
// the per-entry extras a reader offers beside the FS calls (attributes, 8.3 names).
func EntryValue[N, V any](p *Plain[N], op, name string, root V, get func(N) V) (V, error) {
	n, err := p.Lookup(op, name)
	if err != nil {
		return root, err
	}
	if _, ok := p.NameOf(n); !ok {
		return root, nil
	}
	return get(n), nil
}

// Listing turns a reader's directory entries into Plain entries, leaving out those skip names.
func Listing[E, N any](ents []E, skip func(i int) bool, entry func(e *E) PlainEntry[N]) []PlainEntry[N] {
	out := make([]PlainEntry[N], 0, len(ents))
	for i := range ents {
		if !skip(i) {
			out = append(out, entry(&ents[i]))
		}
	}
	return out
}

// OnceCount computes a volume-wide count once (free clusters or blocks, for Usage); a failure is
// logged and counts as zero.
type OnceCount struct {
	once sync.Once
	n    uint64
}

// Get returns the count, computing it on the first call.
func (c *OnceCount) Get(what string, count func() (uint64, error)) uint64 {
	c.once.Do(func() {
		n, err := count()
		if err != nil {
			slog.Warn("counting "+what, "err", err)
		}
		c.n = n
	})
	return c.n
}

// FinishStat completes a Stat the way the cluster-based readers derive it: a directory's Nlink is 2
// plus its subdirectories (counted by subdirs), anything else has 1, and AllocatedSize is Size in
// whole units.
func FinishStat(st *Stat, subdirs func() (uint32, error), unit int64) error {
	st.Nlink = 1
	st.AllocatedSize = RoundUp(st.Size, unit)
	if st.Mode&S_IFMT != S_IFDIR {
		return nil
	}
	n, err := subdirs()
	st.Nlink = 2 + n
	return err
}

// SubdirsOf adapts a directory-listing call (listing, error) to FinishStat's subdirectory count.
func SubdirsOf[D any](count func(*D) uint32) func(*D, error) (uint32, error) {
	return func(d *D, err error) (uint32, error) {
		if err != nil {
			return 0, err
		}
		return count(d), nil
	}
}

// EntryName is Plain.NameOf for nodes that point at their directory entry, nil for the root.
func EntryName[E any](ent *E, name func(*E) string) (string, bool) {
	if ent == nil {
		return "", false
	}
	return name(ent), true
}
