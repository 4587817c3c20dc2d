// Package confine opens the files a disk names (extents, parents, redo logs) in one step, beneath a
// folder opened once, so that a symlink swapped in between a check and the open cannot lead outside it.
// Every open is non-blocking (a FIFO never blocks) and accepts only regular files, and block devices
// when the caller allows them.
package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrOutside is returned when a path leaves the folder (by "..", an absolute path or a symlink).
var ErrOutside = errors.New("leaves the disk's folder")

// ErrNotFile is returned when the opened file is neither a regular file nor an allowed block device.
var ErrNotFile = errors.New("not a regular file")

// Dir is an opened folder: files are opened beneath it, whatever its path points at later.
type Dir struct {
	fd   int
	Path string // the path it was opened by, for messages and lexical checks
}

// OpenDir opens a folder the user named (symlinks in its path are followed: the user chose it).
func OpenDir(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open folder", Path: abs, Err: err}
	}
	return &Dir{fd: fd, Path: abs}, nil
}

// Close releases the folder.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Rel turns a name from a descriptor (relative to the folder, or absolute) into a clean path beneath
// the folder, or ErrOutside when it lexically leaves it.
func (d *Dir) Rel(name string) (string, error) {
	rel := filepath.Clean(name)
	if filepath.IsAbs(name) {
		r, err := filepath.Rel(d.Path, rel)
		if err != nil {
			return "", fmt.Errorf("%s %w", name, ErrOutside)
		}
		rel = r
	}
	if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s %w", filepath.Join(d.Path, rel), ErrOutside)
	}
	return rel, nil
}

// Open opens rel beneath the folder: no component, symlinks included, may lead outside it.
// flag is os.O_RDONLY or os.O_RDWR, optionally with os.O_CREATE|os.O_EXCL.
func (d *Dir) Open(rel string, flag int, devices bool) (*os.File, error) {
	rel, err := d.Rel(rel)
	if err != nil {
		return nil, err
	}
	full := filepath.Join(d.Path, rel)
	fd, err := withNoATime(flag, func(fl int) (int, error) { return d.openBeneath(rel, fl) })
	if err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s %w (through a symlink or a magic link)", full, ErrOutside)
		}
		return nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	return checked(fd, full, devices)
}

// OpenDir opens the subfolder rel beneath the folder, with the same confinement as Open.
func (d *Dir) OpenDir(rel string) (*Dir, error) {
	rel, err := d.Rel(rel)
	if err != nil {
		return nil, err
	}
	full := filepath.Join(d.Path, rel)
	fd, err := d.openBeneath(rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s %w (through a symlink)", full, ErrOutside)
		}
		return nil, &fs.PathError{Op: "open folder", Path: full, Err: err}
	}
	return &Dir{fd: fd, Path: full}, nil
}

// Remove deletes rel beneath the folder; a symlink is removed itself, never what it points at.
func (d *Dir) Remove(rel string) error {
	parent, base, err := d.split(rel)
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := unix.Unlinkat(parent.fd, base, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: filepath.Join(parent.Path, base), Err: err}
	}
	return nil
}

// Rename moves rel beneath from to the plain name newName in the folder to, never replacing a file.
func Rename(from *Dir, rel string, to *Dir, newName string) error {
	if newName != filepath.Base(newName) || newName == "." || newName == ".." {
		return fmt.Errorf("%s is not a plain file name", newName)
	}
	parent, base, err := from.split(rel)
	if err != nil {
		return err
	}
	defer parent.Close()
	err = unix.Renameat2(parent.fd, base, to.fd, newName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: check, then rename (the check can race; the move stays confined).
		if err = unix.Fstatat(to.fd, newName, new(unix.Stat_t), unix.AT_SYMLINK_NOFOLLOW); err == nil {
			err = unix.EEXIST
		} else if errors.Is(err, unix.ENOENT) {
			err = unix.Renameat(parent.fd, base, to.fd, newName)
		}
	}
	if err != nil {
		return &fs.PathError{Op: "rename", Path: filepath.Join(parent.Path, base), Err: err}
	}
	return nil
}

// split opens the folder holding rel (confined) and returns it with rel's last component.
func (d *Dir) split(rel string) (*Dir, string, error) {
	rel, err := d.Rel(rel)
	if err != nil {
		return nil, "", err
	}
	base := filepath.Base(rel)
	if rel == "." || base == ".." {
		return nil, "", fmt.Errorf("%s is not a file name", rel)
	}
	parent, err := d.OpenDir(filepath.Dir(rel))
	return parent, base, err
}

// OpenPath opens a path the user named (symlinks followed), in one step, non-blocking, and accepts
// only a regular file or (when devices) a block device.
func OpenPath(path string, flag int, devices bool) (*os.File, error) {
	fd, err := withNoATime(flag, func(fl int) (int, error) { return unix.Open(path, fl, 0) })
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return checked(fd, path, devices)
}

// openBeneath opens rel with openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS), or walks it component by
// component with O_NOFOLLOW where openat2 is missing (symlinks are then refused even inside).
func (d *Dir) openBeneath(rel string, flag int) (int, error) {
	if flag&unix.O_PATH != 0 {
		flag = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC // openat2 takes no other flag with O_PATH
	} else {
		flag |= unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	}
	if !noOpenat2.Load() {
		how := unix.OpenHow{Flags: uint64(flag), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		if flag&unix.O_CREAT != 0 {
			how.Mode = 0o644
		}
		for try := 0; ; try++ {
			fd, err := unix.Openat2(d.fd, rel, &how)
			if (err == unix.EINTR || err == unix.EAGAIN) && try < 100 {
				continue // EAGAIN: a rename raced a ".." in the lookup; the kernel asks to retry
			}
			if err != unix.ENOSYS {
				return fd, err
			}
			break
		}
		noOpenat2.Store(true)
	}
	return d.walk(rel, flag)
}

// noOpenat2 is set once the kernel has said it has no openat2 (before Linux 5.6, or a seccomp filter).
var noOpenat2 atomic.Bool

// walk is openBeneath without openat2.
func (d *Dir) walk(rel string, flag int) (int, error) {
	parts := strings.Split(rel, "/")
	cur := d.fd
	defer func() {
		if cur != d.fd {
			unix.Close(cur)
		}
	}()
	for i, p := range parts {
		if p == ".." {
			return -1, unix.EXDEV
		}
		last := i == len(parts)-1
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			fl = flag | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(cur, p, fl, 0o644)
		if errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if unix.Fstatat(cur, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		if err != nil {
			return -1, err
		}
		if last {
			return fd, nil
		}
		if cur != d.fd {
			unix.Close(cur)
		}
		cur = fd
	}
	return -1, unix.ENOENT
}

// withNoATime opens read-only files with O_NOATIME, and again without it where the kernel refuses it
// (O_NOATIME needs the file's owner or CAP_FOWNER).
func withNoATime(flag int, open func(int) (int, error)) (int, error) {
	flag |= unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	if flag&(unix.O_WRONLY|unix.O_RDWR) == 0 {
		fd, err := open(flag | unix.O_NOATIME)
		if err != unix.EPERM {
			return fd, err
		}
	}
	return open(flag)
}

// checked accepts an opened fd when it is a regular file (or an allowed block device), in blocking mode.
func checked(fd int, path string, devices bool) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	switch kind := st.Mode & unix.S_IFMT; {
	case kind == unix.S_IFREG, kind == unix.S_IFBLK && devices:
	default:
		unix.Close(fd)
		what := map[uint32]string{unix.S_IFIFO: "a FIFO", unix.S_IFSOCK: "a socket", unix.S_IFCHR: "a character device",
			unix.S_IFDIR: "a folder", unix.S_IFBLK: "a block device"}[kind]
		if kind == unix.S_IFBLK {
			return nil, fmt.Errorf("%s is a block device, %w (allow devices with --allow-external-extents)", path, ErrNotFile)
		}
		if devices {
			return nil, fmt.Errorf("%s is %s, %w or block device", path, what, ErrNotFile)
		}
		return nil, fmt.Errorf("%s is %s, %w", path, what, ErrNotFile)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// KeepsATime tells whether reads of f leave its access time alone (it was opened with O_NOATIME).
func KeepsATime(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && (fl&unix.O_NOATIME != 0 || fl&(unix.O_WRONLY|unix.O_RDWR) != 0)
}
