// Package untar extracts a tar archive (plain, gzip, xz or zstd) into a folder for make-fs: files
// streamed with their holes kept, members that would leave the folder refused. It is a package of its
// own so its fuzz target's instrumented binary holds only this code: linked into makefs's tests, the
// whole module's coverage counters were scanned for every input (~3 execs/s).
package untar

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
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/vmdkmount/vmdkmount/vddk"
	"golang.org/x/sys/unix"
)

// maxMember bounds a tar member's size: a sparse member's holes cost no archive bytes, so a hostile
// archive could otherwise make extraction stream exabytes of zeros. 16 TiB passes every disk we make.
var maxMember int64 = 16 << 40

// Extract unpacks the (plain, gzip, xz or zstd) tar archive at src into dir, streaming each file and
// leaving its runs of zeros as holes, so a sparse member does not take its apparent size on disk.
func Extract(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return ExtractFrom(f, src, dir)
}

// ExtractFrom unpacks the archive read from in (named src in errors) into dir, as Extract does.
func ExtractFrom(in io.Reader, src, dir string) error {
	br := bufio.NewReaderSize(in, 1<<16)
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
		xr, err := xz.NewReader(newXZGuard(br))
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
			if err := CopySparse(out, tr); err != nil {
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

// CopySparse copies r to out, seeking over all-zero blocks so they stay holes.
func CopySparse(out *os.File, r io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var off int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if !vddk.IsZero(buf[:n]) {
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

// copyBufs keeps CopySparse's buffers: a new 1 MiB buffer per file, cleared by the allocator, cost
// more than copying a tree of small files.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
