package makefs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// entry is one thing found in the source tree, named by its slash path relative to the root.
type entry struct {
	rel    string
	mode   fs.FileMode
	size   int64
	mtime  time.Time
	target string // symlink target
	// dangling: a symlink whose target does not resolve once staged in a workspace (see resolves)
	dangling bool
}

// maxMember bounds a tar member's size: a sparse member's holes cost no archive bytes, so a hostile
// archive could otherwise make extraction stream exabytes of zeros. 16 TiB passes every disk we make.
var maxMember int64 = 16 << 40

// copyBuf is the unit of streamed copies: files are never read whole.
const copyBuf = 1 << 20

// extractTar unpacks the (plain, gzip, xz or zstd) tar archive at src into dir, streaming each file and
// leaving its runs of zeros as holes, so a sparse member does not take its apparent size on disk.
func extractTar(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", src, err)
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: xz: %w", src, err)
		}
		r = xr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("%s: zstd: %w", src, err)
		}
		defer zr.Close()
		r = zr
	}
	type dirTime struct {
		p    string
		t    time.Time
		mode fs.FileMode
	}
	var dirs []dirTime
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: tar: %w", src, err)
		}
		rel := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if rel == "." {
			if h.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirTime{dir, h.ModTime, fs.FileMode(h.Mode) & fs.ModePerm})
			}
			continue
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s: member %q leaves the archive's root", src, h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := safeParents(dir, rel); err != nil {
			return fmt.Errorf("%s: member %q: %w", src, h.Name, err)
		}
		if fi, err := os.Lstat(dst); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
			// A later member replaces an earlier one; never open through it (a FIFO would block, a
			// symlink would lead out of dir).
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
		mode := fs.FileMode(h.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := os.Chmod(dst, mode|0o700); err != nil { // owner access until every member is in
				return err
			}
			dirs = append(dirs, dirTime{dst, h.ModTime, mode})
			continue
		case tar.TypeReg:
			if h.Size > maxMember {
				return fmt.Errorf("%s: member %q claims %d bytes, more than the %d a disk built here can hold", src, h.Name, h.Size, int64(maxMember))
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			if err := copySparse(out, tr); err != nil {
				out.Close()
				return fmt.Errorf("%s: member %q: %w", src, h.Name, err)
			}
			if err := out.Close(); err != nil {
				return err
			}
			if err := os.Chmod(dst, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeLink:
			old := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if old == ".." || strings.HasPrefix(old, "../") {
				return fmt.Errorf("%s: member %q links outside the archive", src, h.Name)
			}
			if err := safeParents(dir, old); err != nil {
				return fmt.Errorf("%s: member %q: %w", src, h.Name, err)
			}
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(old)), dst); err != nil {
				return fmt.Errorf("%s: member %q: %w", src, h.Name, err)
			}
			continue
		case tar.TypeFifo:
			if err := unix.Mkfifo(dst, uint32(mode)); err != nil {
				return err
			}
		default: // devices and the rest are left out: the targets hold none of them
			continue
		}
		ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first: setting a child's time touches no parent
		if err := os.Chmod(dirs[i].p, dirs[i].mode); err != nil {
			return err
		}
		if err := os.Chtimes(dirs[i].p, dirs[i].t, dirs[i].t); err != nil {
			return err
		}
	}
	return nil
}

// safeParents creates rel's parent folders under dir, refusing to pass through a symlink an earlier
// member made: that would write outside dir.
func safeParents(dir, rel string) error {
	cur := dir
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder (a member cannot go through a symlink or a file)", p)
		}
	}
	return nil
}

// copySparse copies r to out, seeking over all-zero blocks so they stay holes.
func copySparse(out *os.File, r io.Reader) error {
	buf := make([]byte, copyBuf)
	var off int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, err := out.WriteAt(buf[:n], off); err != nil {
					return err
				}
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return out.Truncate(off)
		}
		if rerr != nil {
			return rerr
		}
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

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
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
			e.dangling = !resolves(root, e.rel, e.target)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// resolves tells whether a symlink at rel (target as stored) points at something once the tree is
// staged elsewhere: an absolute target is looked up on the host, a relative one inside the tree (one
// that climbs out of it, fine in the source's place, leads nowhere in the workspace).
func resolves(root, rel, target string) bool {
	if filepath.IsAbs(target) {
		_, err := os.Stat(target)
		return err == nil
	}
	p := path.Join(path.Dir(rel), filepath.ToSlash(target))
	if p == ".." || strings.HasPrefix(p, "../") {
		return false
	}
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
	return err == nil
}

// stage mirrors the kept entries of root into ws, hard-linking regular files where it can (copying,
// holes kept, where it cannot), so a workspace-based writer sees exactly what is to go in.
func stage(root, ws string, entries []entry) error {
	for _, e := range entries {
		src := filepath.Join(root, filepath.FromSlash(e.rel))
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
			if os.Link(src, dst) == nil {
				continue
			}
			if err := copyFile(src, dst); err != nil {
				return err
			}
			if err := os.Chmod(dst, e.mode.Perm()); err != nil {
				return err
			}
			if err := setTimes(dst, e.mtime); err != nil {
				return err
			}
		}
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

func setTimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := copySparse(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
