package treecmp

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"time"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

func (c *comparer) metadata(name string, fi fs.FileInfo, st *fsys.Stat, h *unix.Stat_t) {
	hostType := h.Mode & unix.S_IFMT
	ourType := st.Mode & fsys.S_IFMT
	if ourType != hostType {
		c.add(name, Type, typeName(ourType), typeName(hostType))
	}
	sizeField := Size
	if hostType == unix.S_IFDIR {
		sizeField = DirSize
	}
	if st.Size != h.Size {
		c.add(name, sizeField, st.Size, h.Size)
	}
	if st.AllocatedSize != h.Blocks*512 {
		c.add(name, Blocks, st.AllocatedSize, h.Blocks*512)
	}
	if st.Mode&0o777 != h.Mode&0o777 {
		c.add(name, Perm, octal(st.Mode&0o777), octal(h.Mode&0o777))
	}
	const special = fsys.S_ISUID | fsys.S_ISGID | fsys.S_ISVTX
	if st.Mode&special != h.Mode&special {
		c.add(name, Special, octal(st.Mode&special), octal(h.Mode&special))
	}
	if st.Uid != h.Uid {
		c.add(name, Uid, st.Uid, h.Uid)
	}
	if st.Gid != h.Gid {
		c.add(name, Gid, st.Gid, h.Gid)
	}
	if uint64(st.Nlink) != h.Nlink {
		c.add(name, Nlink, st.Nlink, h.Nlink)
	}
	if c.opt.CompareIno && st.Ino != h.Ino {
		c.add(name, Ino, st.Ino, h.Ino)
	}
	if (hostType == unix.S_IFCHR || hostType == unix.S_IFBLK) && st.Rdev != h.Rdev {
		c.add(name, Rdev, devName(st.Rdev), devName(h.Rdev))
	}
	c.compareTime(name, Mtime, st.Mtime, ts(h.Mtim), true)
	c.compareTime(name, Atime, st.Atime, ts(h.Atim), true)
	c.compareTime(name, Ctime, st.Ctime, ts(h.Ctim), true)
	if bt, ok := hostBtime(c.hostPath(name)); ok {
		c.compareTime(name, Btime, st.Btime, bt, true)
	}
	c.infoConsistency(name, fi, st)
}

// infoConsistency checks that the FileInfo methods agree with the Stat behind them.
func (c *comparer) infoConsistency(name string, fi fs.FileInfo, st *fsys.Stat) {
	want := path.Base(name)
	if name == "." {
		want = "."
	}
	if fi.Name() != want {
		c.add(name, Listing, "FileInfo.Name "+quote(fi.Name()), quote(want))
	}
	if fi.Mode() != fsys.FileMode(st.Mode) {
		c.add(name, Listing, "FileInfo.Mode "+fi.Mode().String(), fsys.FileMode(st.Mode).String())
	}
	if fi.Size() != st.Size {
		c.add(name, Listing, "FileInfo.Size "+strconv.FormatInt(fi.Size(), 10), st.Size)
	}
	if !fi.ModTime().Equal(st.Mtime) {
		c.add(name, Listing, "FileInfo.ModTime "+fi.ModTime().String(), st.Mtime)
	}
}

func (c *comparer) compareTime(name string, f Field, ours, host time.Time, hostHas bool) {
	if !hostHas {
		return
	}
	if !c.truncTime(ours).Equal(c.truncTime(host)) {
		c.add(name, f, fmtTime(ours), fmtTime(host))
	}
}

// hostBtime reads the birth time through statx; ok is false when the host filesystem does not report it.
func hostBtime(p string) (time.Time, bool) {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &sx); err != nil {
		return time.Time{}, false
	}
	if sx.Mask&unix.STATX_BTIME == 0 {
		return time.Time{}, false
	}
	return time.Unix(sx.Btime.Sec, int64(sx.Btime.Nsec)).UTC(), true
}

func ts(t unix.Timespec) time.Time { return time.Unix(t.Sec, t.Nsec).UTC() }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func octal(m uint32) string { return fmt.Sprintf("%#o", m) }

func devName(d uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(d), unix.Minor(d))
}

func quote(s string) string { return strconv.Quote(s) }

func typeName(t uint32) string {
	switch t {
	case fsys.S_IFREG:
		return "regular"
	case fsys.S_IFDIR:
		return "directory"
	case fsys.S_IFLNK:
		return "symlink"
	case fsys.S_IFCHR:
		return "chardev"
	case fsys.S_IFBLK:
		return "blockdev"
	case fsys.S_IFIFO:
		return "fifo"
	case fsys.S_IFSOCK:
		return "socket"
	}
	return octal(t)
}
