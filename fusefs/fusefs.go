// Package fusefs presents disks, volumes and their file trees through FUSE (go-fuse v2):
//
//	MOUNT/raw/disk           the whole virtual disk (disk0, disk1, … for a set of several)
//	MOUNT/raw/<volume id>    each volume as a raw file
//	MOUNT/<volume id>/       the file tree of each volume whose filesystem has a reader
//
// It holds no format logic: disks and volumes are io.ReaderAt, trees are fsys.FS.
package fusefs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// RawSource is something shown as a raw file: a disk or a volume.
type RawSource struct {
	Name string
	R    io.ReaderAt
	W    io.WriterAt // nil: read-only
	Size int64
	// Span, when set, says where a range lies in a host file when it is one contiguous run of it; reads
	// of such ranges are spliced by the kernel from that file instead of being copied through us.
	Span func(off, n int64) (f *os.File, fileOff int64, ok bool)
}

// TreeSource is a volume's file tree.
type TreeSource struct {
	Name string
	Tree fsys.FS
}

// Layout is what a mount shows.
type Layout struct {
	Raw   []RawSource  // under raw/
	Trees []TreeSource // at the top; with SingleTree, Trees[0] is the root itself
	// SingleTree puts Trees[0] at the mount point (vmdkmount --volume), with the guest's inode numbers.
	SingleTree bool
	// Time stamps the synthetic directories and raw files (the source disk's modification time).
	Time time.Time
	// UID/GID own the synthetic entries and raw files; with ForceOwner they also own every tree entry.
	UID, GID   uint32
	ForceOwner bool
	// DiskSize is the disks' total size, which statfs of the synthetic directories reports.
	DiskSize int64
	// ListStreams lists the named data streams of a tree's entries (fsys.StreamFS) as FILE:STREAM
	// entries beside them; they can be opened by that name either way.
	ListStreams bool
	// LinkVolume, when set, names the tree (of Trees) that the guest calls volume, as seen from the
	// tree from: volume-rooted links that name another volume (fsys.LinkVolumer) point into that
	// tree's folder. ok false: the set does not hold it, and the link stays on its own volume.
	LinkVolume func(from, volume string) (to string, ok bool)

	// noOpen is set by Mount for a read-only mount: every OPEN is answered ENOSYS, after which the kernel
	// opens files without asking (keeping its page cache) and sends no RELEASE or FLUSH, saving those
	// round trips on every file a walker reads. Reads then arrive without a handle.
	noOpen bool
	// mountPoint is the absolute path of the mount, set by Mount: volume-rooted link targets
	// (fsys.VolumeLinker) are shown under it.
	mountPoint string
	// primer stores the first bytes of listed files in the kernel's page cache while files are being
	// read; set by Mount (nil: off).
	primer *primer
}

// Root builds the root node of a layout.
func Root(l *Layout) fs.InodeEmbedder {
	if l.SingleTree && len(l.Trees) > 0 {
		return treeRoot(l.Trees[0].Tree, l, 0, "")
	}
	return &dirNode{layout: l, build: func(ctx context.Context, d *dirNode) {
		if len(l.Raw) > 0 {
			raw := &dirNode{layout: l, build: func(ctx context.Context, r *dirNode) {
				for i, src := range l.Raw {
					f := &rawNode{src: src, layout: l}
					r.AddChild(src.Name, r.NewPersistentInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG, Ino: synthIno(uint64(i) + 16)}), false)
				}
			}}
			d.AddChild("raw", d.NewPersistentInode(ctx, raw, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: synthIno(2)}), false)
		}
		for i, t := range l.Trees {
			n := treeRoot(t.Tree, l, uint64(i+1), t.Name)
			ino := synthIno(uint64(1000 + i))
			if n.st.Ino != 0 {
				ino = n.ino(n.st.Ino)
			}
			d.AddChild(t.Name, d.NewPersistentInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), false)
		}
	}}
}

// treeRoot is the node of a tree's root directory, with its attributes read once.
func treeRoot(t fsys.FS, l *Layout, vol uint64, dir string) *treeNode {
	n := &treeNode{tree: t, path: ".", layout: l, vol: vol, dir: dir}
	n.st = fsys.Stat{Mode: syscall.S_IFDIR | 0o555, Nlink: 2}
	if fi, err := t.Lstat("."); err == nil {
		if st := fsys.StatOf(fi); st != nil {
			n.st = *st
		}
	}
	return n
}

// flushReply answers FLUSH: nothing is buffered here. On a mount without OPEN (see Layout.noOpen)
// ENOSYS tells the kernel to stop sending FLUSH at every close.
func flushReply(l *Layout) syscall.Errno {
	if l.noOpen {
		return syscall.ENOSYS
	}
	return 0
}

// synthIno numbers the entries vmdkmount makes up (root, raw/, raw files), far from any guest inode.
func synthIno(n uint64) uint64 { return 1<<63 | n }

// dirNode is a synthetic directory whose children are added once, when the node is attached.
type dirNode struct {
	fs.Inode
	readOnly
	layout *Layout
	build  func(ctx context.Context, d *dirNode)
}

var _ fs.NodeOnAdder = (*dirNode)(nil)
var _ fs.NodeGetattrer = (*dirNode)(nil)

func (d *dirNode) OnAdd(ctx context.Context) {
	if d.build != nil {
		d.build(ctx, d)
	}
}

func (d *dirNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Uid, out.Gid = d.layout.UID, d.layout.GID
	setTimes(&out.Attr, d.layout.Time, d.layout.Time, d.layout.Time)
	return 0
}

func setTimes(a *fuse.Attr, atime, mtime, ctime time.Time) {
	if !atime.IsZero() {
		a.Atime, a.Atimensec = uint64(atime.Unix()), uint32(atime.Nanosecond())
	}
	if !mtime.IsZero() {
		a.Mtime, a.Mtimensec = uint64(mtime.Unix()), uint32(mtime.Nanosecond())
	}
	if !ctime.IsZero() {
		a.Ctime, a.Ctimensec = uint64(ctime.Unix()), uint32(ctime.Nanosecond())
	}
}

// dataResult returns bytes read into a request's buffer. go-fuse would first try to splice a plain data
// result through a pipe and then fall back to a copy; a one-slice vector goes straight to writev.
func dataResult(b []byte) fuse.ReadResult { return fuse.ReadResultVector([][]byte{b}) }

// errno maps our errors to the errno a reading program should see: EIO unless the error says better.
func errno(err error) syscall.Errno {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &en):
		return en
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, iofs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, fsys.ErrLoop):
		return syscall.ELOOP
	case errors.Is(err, fsys.ErrNoXattr):
		return syscall.ENODATA
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.EOPNOTSUPP
	case strings.Contains(err.Error(), "not a directory"):
		return syscall.ENOTDIR
	case strings.Contains(err.Error(), "is a directory"):
		return syscall.EISDIR
	}
	logCause("", err, syscall.EIO) // damage: say where and why, not EIO alone
	return syscall.EIO
}
