package fusefs

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// spliceLimit is the largest read the kernel can take from a host file through a pipe: go-fuse puts the
// reply header and the data in one pipe, grown to fit them and a page, which fails past the pipe size
// limit; larger reads are copied instead of trying and failing each time.
var spliceLimit = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n - 2*os.Getpagesize()
})

// rawNode is a disk or volume shown as a file; reads go straight to its ReaderAt.
type rawNode struct {
	fs.Inode
	src    RawSource
	layout *Layout
}

var (
	_ fs.NodeGetattrer = (*rawNode)(nil)
	_ fs.NodeOpener    = (*rawNode)(nil)
	_ fs.NodeReader    = (*rawNode)(nil)
	_ fs.NodeWriter    = (*rawNode)(nil)
	_ fs.NodeFsyncer   = (*rawNode)(nil)
)

// flusher is a writer that can make its writes durable (vddk.Disk.Flush).
type flusher interface{ Flush() error }

func (n *rawNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	if n.src.W != nil {
		out.Mode |= 0o200
	}
	out.Size = uint64(n.src.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	out.Nlink = 1
	out.Uid, out.Gid = n.layout.UID, n.layout.GID
	setTimes(&out.Attr, n.layout.Time, n.layout.Time, n.layout.Time)
	return 0
}

func (n *rawNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.layout.noOpen {
		return nil, 0, syscall.ENOSYS
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 && n.src.W == nil {
		return nil, 0, syscall.EROFS
	}
	if n.src.W != nil {
		return nil, fuse.FOPEN_DIRECT_IO, 0 // writes go to the redo log; keep the kernel from caching stale pages
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *rawNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= n.src.Size {
		return fuse.ReadResultData(nil), 0
	}
	if rem := n.src.Size - off; int64(len(dest)) > rem {
		dest = dest[:rem]
	}
	if n.src.Span != nil && n.src.W == nil && len(dest) <= spliceLimit() {
		if f, fo, ok := n.src.Span(off, int64(len(dest))); ok {
			return fuse.ReadResultFd(f.Fd(), fo, len(dest)), 0
		}
	}
	k, err := n.src.R.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, readFailed("raw/"+n.src.Name, err)
	}
	return dataResult(dest[:k]), 0
}

func (n *rawNode) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if n.src.W == nil {
		return 0, syscall.EROFS
	}
	if off < 0 || off+int64(len(data)) > n.src.Size {
		return 0, syscall.ENOSPC
	}
	k, err := n.src.W.WriteAt(data, off)
	if err != nil {
		return uint32(k), errno(err)
	}
	return uint32(k), 0
}

// Fsync makes the writes durable when the writer can (fsync, fdatasync, dd conv=fsync); without it
// fsync would fail with EOPNOTSUPP and writers that check it would stop. A read-only raw file has
// nothing to sync.
func (n *rawNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	fl, ok := n.src.W.(flusher)
	if !ok {
		return 0
	}
	return errno(fl.Flush())
}

// Setattr: a raw file keeps its size, owner and mode. Truncating to its own size (O_TRUNC is not sent
// for it) and setting times are accepted and change nothing; the rest is refused.
func (n *rawNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.src.W == nil {
		return syscall.EROFS
	}
	if size, ok := in.GetSize(); ok && size != uint64(n.src.Size) {
		return syscall.EINVAL // a disk's size is fixed; vmdk grow changes it
	}
	_, modeSet := in.GetMode()
	_, uidSet := in.GetUID()
	_, gidSet := in.GetGID()
	if modeSet || uidSet || gidSet {
		return syscall.EPERM
	}
	return n.Getattr(ctx, f, out)
}

func (n *rawNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *rawNode) Removexattr(ctx context.Context, attr string) syscall.Errno { return syscall.EROFS }

var _ fs.NodeFlusher = (*rawNode)(nil)

func (n *rawNode) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	return flushReply(n.layout)
}
