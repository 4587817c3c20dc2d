package fsys

import (
	"errors"
	"io/fs"
	"path"
)

// Linked serves Stat, Lstat and ReadLink for a reader with symbolic links (XFS, Btrfs), over its node
// type N: Walk looks up a path without symlinks in it, Info builds a FileInfo, Link reads a node's
// target. Resolve follows the links in between, inside the tree.
type Linked[N any] struct {
	Walk func(name string) (N, error)
	Info func(name string, n N) *Info
	Link func(n N) (string, error)
}

// linkedRaw gives Resolve the no-follow lookups it needs.
type linkedRaw[N any] struct{ l *Linked[N] }

func (r linkedRaw[N]) Lstat(name string) (fs.FileInfo, error) {
	n, err := r.l.Walk(name)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return r.l.Info(path.Base(name), n), nil
}

func (r linkedRaw[N]) ReadLink(name string) (string, error) {
	n, err := r.l.Walk(name)
	if err == nil {
		var t string
		if t, err = r.l.Link(n); err == nil {
			return t, nil
		}
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
}

// Resolve follows symlinks (the last one too when follow is set) and returns the node and the
// symlink-free path it was found at.
func (l *Linked[N]) Resolve(op, name string, follow bool) (N, string, error) {
	var zero N
	if !fs.ValidPath(name) {
		return zero, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p, err := Resolve(linkedRaw[N]{l}, name, follow)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return zero, "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	n, err := l.Walk(p)
	if err != nil {
		return zero, "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, p, nil
}

// Stat follows symlinks.
func (l *Linked[N]) Stat(name string) (fs.FileInfo, error) { return l.stat("stat", name, true) }

// Lstat does not follow a final symlink.
func (l *Linked[N]) Lstat(name string) (fs.FileInfo, error) { return l.stat("lstat", name, false) }

func (l *Linked[N]) stat(op, name string, follow bool) (fs.FileInfo, error) {
	n, _, err := l.Resolve(op, name, follow)
	if err != nil {
		return nil, err
	}
	return l.Info(path.Base(name), n), nil
}

// ReadLink returns a symlink's target as stored.
func (l *Linked[N]) ReadLink(name string) (string, error) {
	n, _, err := l.Resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	t, err := l.Link(n)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return t, nil
}
