package fsys

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// MaxSymlinks bounds how many links one lookup follows, as Linux does (ELOOP past 40).
const MaxSymlinks = 40

// ErrLoop reports a symlink chain longer than MaxSymlinks.
var ErrLoop = errors.New("too many levels of symbolic links")

// Linker is the part of an FS that Resolve needs: Lstat and ReadLink of paths without symlinks in
// their directory part.
type Linker interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
}

// Resolve returns name with every symbolic link in it followed, inside the tree: an absolute target
// restarts at the volume root and ".." never climbs above it, so a guest link can never name a host
// path. With followLast false the final component is left as it is (Lstat semantics).
func Resolve(l Linker, name string, followLast bool) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: fs.ErrInvalid}
	}
	var done []string // resolved components, no symlinks among them
	todo := splitPath(name)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".", "":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := join(append(done, c))
		if len(todo) == 0 && !followLast {
			done = append(done, c)
			break
		}
		fi, err := l.Lstat(cur)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(todo) > 0 && !fi.IsDir() {
				return "", &fs.PathError{Op: "resolve", Path: name, Err: errNotDir}
			}
			done = append(done, c)
			continue
		}
		links++
		if links > MaxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: ErrLoop}
		}
		target, err := l.ReadLink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		todo = append(splitPath(target), todo...)
	}
	return join(done), nil
}

var errNotDir = errors.New("not a directory")

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

func join(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return path.Join(parts...)
}
