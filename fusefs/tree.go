package fusefs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"golang.org/x/sys/unix"
)

// treeNode is one entry of a volume's file tree, addressed by its path in the tree.
type treeNode struct {
	fs.Inode
	readOnly
	tree   fsys.FS
	path   string
	layout *Layout
	vol    uint64    // 1-based volume number; 0 when the tree is the whole mount (guest inode numbers kept)
	dir    string    // the tree's directory in the mount ("" when it is the mount itself)
	stream string    // for a FILE:STREAM node, the stream's name (path is the file's)
	st     fsys.Stat // the entry's attributes when it was looked up: a read-only tree never changes them

	mu     sync.Mutex
	file   *openFile   // opened at the first read on a mount without OPEN requests (see Layout.noOpen)
	primed atomic.Bool // queued for the primer once (a file with hard links shares one node)
	// lookups counts the kernel's LOOKUPs of entries of this directory: a listing that sees them is
	// being stat'ed (ls -l) and gives its entries' attributes past plusEntries (see dirStream).
	lookups atomic.Uint64
}

func newTreeNode(parent *treeNode, p string, st *fsys.Stat) *treeNode {
	return &treeNode{tree: parent.tree, path: p, layout: parent.layout, vol: parent.vol, dir: parent.dir, st: *st}
}

var (
	_ fs.NodeLookuper    = (*treeNode)(nil)
	_ fs.NodeGetattrer   = (*treeNode)(nil)
	_ fs.NodeReadlinker  = (*treeNode)(nil)
	_ fs.NodeOpener      = (*treeNode)(nil)
	_ fs.NodeGetxattrer  = (*treeNode)(nil)
	_ fs.NodeListxattrer = (*treeNode)(nil)
	_ fs.NodeStatfser    = (*treeNode)(nil)
)

// ino makes a guest inode number unique across the volumes of one mount: the volume number sits in the
// top bits. A single-tree mount shows the guest's own numbers.
func (n *treeNode) ino(guest uint64) uint64 {
	if n.vol == 0 {
		return guest
	}
	return n.vol<<48 | guest&(1<<48-1)
}

func (n *treeNode) child(name string) string {
	if n.path == "." {
		return name
	}
	return path.Join(n.path, name)
}

func (n *treeNode) fill(st *fsys.Stat, a *fuse.Attr) {
	a.Ino = n.ino(st.Ino)
	a.Mode = st.Mode
	a.Nlink = st.Nlink
	a.Uid, a.Gid = st.Uid, st.Gid
	if n.layout.ForceOwner {
		a.Uid, a.Gid = n.layout.UID, n.layout.GID
	}
	a.Rdev = uint32(st.Rdev)
	a.Size = uint64(st.Size)
	a.Blocks = uint64((st.AllocatedSize + 511) / 512)
	a.Blksize = 4096
	setTimes(a, st.Atime, st.Mtime, st.Ctime)
}

func (n *treeNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.lookups.Add(1)
	return n.lookup(ctx, name, out)
}

// lookup resolves an entry of n by its name.
func (n *treeNode) lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := n.child(name)
	fi, err := n.tree.Lstat(p)
	if err != nil {
		if c, ok := n.lookupStream(ctx, name, out); ok && errors.Is(err, iofs.ErrNotExist) {
			return c, 0
		}
		return nil, errno(err)
	}
	st := fsys.StatOf(fi)
	if st == nil {
		return nil, syscall.EIO
	}
	return n.newChild(ctx, p, st, out), 0
}

// newChild makes the node of an entry found under n and fills the kernel's view of it.
func (n *treeNode) newChild(ctx context.Context, p string, st *fsys.Stat, out *fuse.EntryOut) *fs.Inode {
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		if t, ok := n.volumeLink(p); ok {
			c := *st
			c.Size = int64(len(t)) // a link's size is its target's length, as readlink returns it
			st = &c
		}
	}
	n.fill(st, &out.Attr)
	c := newTreeNode(n, p, st)
	return n.NewInode(ctx, c, fs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: out.Attr.Ino})
}

func modeBits(t iofs.FileMode) uint32 {
	switch {
	case t.IsDir():
		return syscall.S_IFDIR
	case t&iofs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case t&iofs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case t&iofs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case t&iofs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case t&iofs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

func (n *treeNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&n.st, &out.Attr)
	return 0
}

func (n *treeNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if t, ok := n.volumeLink(n.path); ok {
		return []byte(t), 0
	}
	t, err := n.tree.ReadLink(n.path)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

// volumeLink returns the target of the symlink p when it is rooted at the volume (an NTFS junction,
// fsys.VolumeLinker): the path in the mount, so that it never points at the host.
func (n *treeNode) volumeLink(p string) (string, bool) {
	vl, ok := n.tree.(fsys.VolumeLinker)
	if !ok || n.layout.mountPoint == "" || !vl.VolumeRooted(p) {
		return "", false
	}
	if t, ok := n.otherVolumeLink(p); ok {
		return t, true
	}
	t, err := n.tree.ReadLink(p)
	if err != nil || !path.IsAbs(t) {
		return "", false
	}
	return path.Join(n.layout.mountPoint, n.dir, t), true
}

func (n *treeNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.layout.noOpen {
		return nil, 0, syscall.ENOSYS
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, en := n.open()
	if en != 0 {
		return nil, 0, en
	}
	// The tree cannot change under us: let the kernel keep its page cache between opens.
	return &treeFile{f: f, primer: n.layout.primer, path: n.path}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *treeNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if n.stream != "" {
		return 0, syscall.ENODATA // the owner's attributes are the owner's
	}
	var v []byte
	var err error
	if g, ok := n.tree.(fsys.InodeXattrGetter); ok && n.st.Ino != 0 {
		v, err = g.GetXattrInode(n.st.Ino, n.path, attr) // no path lookup: ls -l asks two per entry
	} else {
		v, err = n.tree.GetXattr(n.path, attr)
	}
	if errors.Is(err, fsys.ErrNoXattr) {
		return 0, syscall.ENODATA
	}
	if err != nil {
		return 0, errno(err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *treeNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if n.stream != "" {
		return 0, 0
	}
	names, err := n.tree.ListXattr(n.path)
	if err != nil {
		return 0, errno(err)
	}
	var b []byte
	for _, s := range names {
		b = append(append(b, s...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

func (n *treeNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	u := n.tree.Usage()
	out.Bsize = u.BlockSize
	out.Frsize = u.BlockSize
	out.Blocks = u.Blocks
	out.Bfree = u.FreeBlocks
	out.Bavail = u.FreeBlocks
	out.Files = u.Files
	out.Ffree = u.FreeFiles
	out.NameLen = u.NameMax
	return 0
}

// treeFile is an open file of a tree.
type treeFile struct {
	f      fsys.File
	primer *primer
	path   string // in the tree, for the log
}

var (
	_ fs.FileReader   = (*treeFile)(nil)
	_ fs.FileReleaser = (*treeFile)(nil)
)

func (f *treeFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.primer.reading()
	k, err := f.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, readFailed(f.path, err)
	}
	return dataResult(dest[:k]), 0
}

func (f *treeFile) Release(ctx context.Context) syscall.Errno {
	f.f.Close()
	return 0
}

var _ fs.NodeStatxer = (*treeNode)(nil)

// Statx adds what stat cannot carry: the birth (creation) time, where the filesystem stores one.
func (n *treeNode) Statx(ctx context.Context, f fs.FileHandle, flags uint32, mask uint32, out *fuse.StatxOut) syscall.Errno {
	st := &n.st
	var a fuse.Attr
	n.fill(st, &a)
	const basicStats, btime = 0x7ff, 0x800 // STATX_BASIC_STATS, STATX_BTIME
	out.Mask = basicStats
	out.Blksize = a.Blksize
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Mode = uint16(a.Mode)
	out.Ino = a.Ino
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.RdevMajor, out.RdevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	sx := func(t time.Time) fuse.SxTime {
		if t.IsZero() {
			return fuse.SxTime{}
		}
		return fuse.SxTime{Sec: uint64(t.Unix()), Nsec: uint32(t.Nanosecond())}
	}
	out.Atime, out.Mtime, out.Ctime = sx(st.Atime), sx(st.Mtime), sx(st.Ctime)
	if !st.Btime.IsZero() {
		out.Mask |= btime
		out.Btime = sx(st.Btime)
	}
	return 0
}
