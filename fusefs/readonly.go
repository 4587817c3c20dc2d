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

func (n *treeNode) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (n *treeNode) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (n *treeNode) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (n *treeNode) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (n *treeNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *treeNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *treeNode) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *treeNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *treeNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}
func (n *treeNode) Removexattr(context.Context, string) syscall.Errno { return syscall.EROFS }

func (d *dirNode) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (d *dirNode) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (d *dirNode) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (d *dirNode) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (d *dirNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dirNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dirNode) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dirNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dirNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}
func (d *dirNode) Removexattr(context.Context, string) syscall.Errno { return syscall.EROFS }

// Fsync on a tree file has nothing to make durable; without it go-fuse answers EOPNOTSUPP and a program
// that syncs what it read (some copy tools do) would report an error.
func (n *treeNode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno { return 0 }
