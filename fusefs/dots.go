package fusefs

import (
	"context"
	"sort"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The synthetic directories list "." and ".." like every directory of a disk filesystem (the kernel
// does not add them for FUSE), and statfs of them reports the disks' total size, so df shows what the
// mount holds.
var (
	_ fs.NodeReaddirer = (*dirNode)(nil)
	_ fs.NodeStatfser  = (*dirNode)(nil)
)

// dotEntries are the two entries every directory listing starts with, "." and "..", numbered as the
// directory and its parent (the mount's root counts as its own parent: the folder above is not ours).
func dotEntries(n *fs.Inode) [2]fuse.DirEntry {
	self := inoOf(n)
	up := self
	if _, p := n.Parent(); p != nil {
		up = inoOf(p)
	}
	return [2]fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR, Ino: self}, {Name: "..", Mode: syscall.S_IFDIR, Ino: up}}
}

func (d *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	kids := d.Children()
	names := make([]string, 0, len(kids))
	for name := range kids {
		names = append(names, name)
	}
	sort.Strings(names)
	dots := dotEntries(&d.Inode)
	ents := append(make([]fuse.DirEntry, 0, len(names)+2), dots[:]...)
	for _, name := range names {
		k := kids[name]
		ents = append(ents, fuse.DirEntry{Name: name, Mode: k.Mode(), Ino: k.StableAttr().Ino})
	}
	return fs.NewListDirStream(ents), 0
}

// statfsBlock is the block size statfs reports for the synthetic directories.
const statfsBlock = 4096

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize = statfsBlock, statfsBlock
	out.Blocks = uint64((d.layout.DiskSize + statfsBlock - 1) / statfsBlock)
	out.NameLen = 255
	return 0 // nothing free: the mount is read-only
}

// inoOf is the inode number the kernel shows for n: go-fuse keeps 0 for the root, which FUSE numbers 1.
func inoOf(n *fs.Inode) uint64 {
	if ino := n.StableAttr().Ino; ino != 0 {
		return ino
	}
	return fuse.FUSE_ROOT_ID
}
