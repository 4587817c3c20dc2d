package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Trees and the synthetic folders refuse every change with EROFS, also under --rw (the kernel's "ro"
// is off then, for raw/disk). Without these go-fuse answers ENOTSUP, and for unlink and rmdir it
// reports success and drops the entry from the mount's view.

// readOnly is embedded in both node types to give them these refusals.
type readOnly struct{}

var (
	_ fs.NodeSetattrer     = (*treeNode)(nil)
	_ fs.NodeUnlinker      = (*treeNode)(nil)
	_ fs.NodeRmdirer       = (*treeNode)(nil)
	_ fs.NodeRenamer       = (*treeNode)(nil)
	_ fs.NodeLinker        = (*treeNode)(nil)
	_ fs.NodeMknoder       = (*treeNode)(nil)
	_ fs.NodeMkdirer       = (*treeNode)(nil)
	_ fs.NodeSymlinker     = (*treeNode)(nil)
	_ fs.NodeSetxattrer    = (*treeNode)(nil)
	_ fs.NodeRemovexattrer = (*treeNode)(nil)
	_ fs.NodeSetattrer     = (*dirNode)(nil)
	_ fs.NodeUnlinker      = (*dirNode)(nil)
	_ fs.NodeRmdirer       = (*dirNode)(nil)
	_ fs.NodeRenamer       = (*dirNode)(nil)
	_ fs.NodeLinker        = (*dirNode)(nil)
	_ fs.NodeMknoder       = (*dirNode)(nil)
	_ fs.NodeMkdirer       = (*dirNode)(nil)
	_ fs.NodeSymlinker     = (*dirNode)(nil)
	_ fs.NodeSetxattrer    = (*dirNode)(nil)
	_ fs.NodeRemovexattrer = (*dirNode)(nil)
)

func (readOnly) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (readOnly) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (readOnly) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (readOnly) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (readOnly) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (readOnly) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (readOnly) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (readOnly) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (readOnly) Setxattr(context.Context, string, []byte, uint32) syscall.Errno { return syscall.EROFS }
func (readOnly) Removexattr(context.Context, string) syscall.Errno              { return syscall.EROFS }

// Fsync on a tree file has nothing to make durable; without it go-fuse answers EOPNOTSUPP and a program
// that syncs what it read (some copy tools do) would report an error.
func (n *treeNode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno { return 0 }
