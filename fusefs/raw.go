package fusefs

import (
	"context"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

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
)

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
	if n.src.Span != nil && n.src.W == nil {
		if f, fo, ok := n.src.Span(off, int64(len(dest))); ok {
			return fuse.ReadResultFd(f.Fd(), fo, len(dest)), 0
		}
	}
	k, err := n.src.R.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
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
