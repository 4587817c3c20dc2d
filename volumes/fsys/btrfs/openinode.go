package btrfs

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// byIno finds the inode whose Stat.Ino is ino: a stored inode number of the top-level subvolume, or a
// subvolume id in the high bits over the stored number (inode.Ino). An unused number is
// fs.ErrNotExist, not damage.
func (f *FS) byIno(op string, ino uint64, name string) (*inode, error) {
	sub, n := uint64(fsTreeID), ino
	if _, ok := f.subs[ino>>40]; ok && ino>>40 != fsTreeID {
		sub, n = ino>>40, ino&(1<<40-1)
	}
	var err error
	switch {
	case n == emptySubvolDir && sub != fsTreeID:
	case n < rootDirIno:
		err = fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)
	default:
		var found bool
		if _, found, err = f.item(f.subs[sub], key{n, typeInodeItem, 0}); err == nil && !found {
			err = fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)
		}
	}
	var ip *inode
	if err == nil {
		ip, err = f.inode(sub, n)
	}
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return ip, nil
}

// OpenInode opens the regular file whose Stat.Ino is ino (fsys.InodeOpener).
func (f *FS) OpenInode(ino uint64, name string) (fsys.File, error) {
	ip, err := f.byIno("open", ino, name)
	if err != nil {
		return nil, err
	}
	if ip.mode&fsys.S_IFMT != fsys.S_IFREG {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("inode %d is not a regular file: %w", ino, fs.ErrInvalid)}
	}
	return &file{fileReader: fileReader{f: f, ip: ip}, name: name, fi: f.info(path.Base(name), ip)}, nil
}

// GetXattrInode returns one attribute of the entry whose Stat.Ino is ino (fsys.InodeXattrGetter).
func (f *FS) GetXattrInode(ino uint64, name, attr string) ([]byte, error) {
	ip, err := f.byIno("getxattr", ino, name)
	if err != nil {
		return nil, err
	}
	return f.xattr(ip, name, attr)
}
