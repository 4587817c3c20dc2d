package makefs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmdkmount/vmdkmount/vddk/makefs/untar"
	"golang.org/x/sys/unix"
)

// entry is one thing found in the source tree, named by its slash path relative to the root.
type entry struct {
	rel    string
	mode   fs.FileMode
	size   int64
	mtime  time.Time
	target string // symlink target
	uid    uint32
	gid    uint32
	rdev   uint64 // a device's number, as stat gives it
}

// copyBuf is the unit of streamed copies: files are never read whole.
const copyBuf = 1 << 20

// scan lists root's tree in walk order (parents before children), not following symlinks.
func scan(root string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := entry{rel: filepath.ToSlash(rel), mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
		e.uid, e.gid, e.rdev = owner(fi)
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// stage mirrors the kept entries of root into ws, so a workspace-based writer sees exactly what is to
// go in. Files are cloned (a reflink where the filesystem has them) or copied, holes kept: never
// hard-linked, which would change a source file's link count and ctime. Only an own tree (a tar
// archive we extracted) is linked.
func stage(root, ws string, entries []entry, own bool) error {
	var files []entry
	for _, e := range entries {
		dst := filepath.Join(ws, filepath.FromSlash(e.rel))
		switch {
		case e.mode.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case e.mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.target, dst); err != nil {
				return err
			}
			if err := setTimes(dst, e.mtime); err != nil {
				return err
			}
		default:
			files = append(files, e)
		}
	}
	// The files, once their folders are in, by several workers: a tree of small files costs mostly
	// the opens and creates, which wait on the filesystem rather than the CPU.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for range min(8, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(files)); i = next.Add(1) - 1 {
				if err := stageFile(root, ws, files[i], own); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.mode.IsDir() {
			dst := filepath.Join(ws, filepath.FromSlash(e.rel))
			if err := os.Chmod(dst, e.mode&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky)); err != nil {
				return err
			}
			if err := setTimes(dst, e.mtime); err != nil {
				return err
			}
		}
	}
	fi, err := os.Stat(root) // the root folder keeps its mode and time too
	if err != nil {
		return err
	}
	if err := os.Chmod(ws, fi.Mode().Perm()); err != nil {
		return err
	}
	return setTimes(ws, fi.ModTime())
}

// stageFile links (own tree) or copies one file into the workspace with its mode and time.
func stageFile(root, ws string, e entry, own bool) error {
	src := filepath.Join(root, filepath.FromSlash(e.rel))
	dst := filepath.Join(ws, filepath.FromSlash(e.rel))
	if own && os.Link(src, dst) == nil {
		return nil
	}
	if err := copyFile(src, dst); err != nil {
		return err
	}
	if err := os.Chmod(dst, e.mode.Perm()); err != nil {
		return err
	}
	return setTimes(dst, e.mtime)
}

func setTimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyFile copies src to the new file dst: a reflink where the filesystem shares blocks, else a copy
// that leaves runs of zeros as holes.
func copyFile(src, dst string) error {
	in, err := openSource(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return out.Close()
	}
	if err := untar.CopySparse(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
