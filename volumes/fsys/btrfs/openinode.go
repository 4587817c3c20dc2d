package btrfs

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// OpenInode opens the regular file whose Stat.Ino is ino (fsys.InodeOpener): a stored inode number of
// the top-level subvolume, or a subvolume id in the high bits over the stored number (inode.Ino).
func (f *FS) OpenInode(ino uint64, name string) (fsys.File, error) {
	sub, n := uint64(fsTreeID), ino
	if _, ok := f.subs[ino>>40]; ok && ino>>40 != fsTreeID {
		sub, n = ino>>40, ino&(1<<40-1)
	}
	if n < rootDirIno {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)}
	}
	// An unused number is not damage: look the item up before reading it as an inode.
	_, found, err := f.item(f.subs[sub], key{n, typeInodeItem, 0})
	if err == nil && !found {
		err = fmt.Errorf("inode %d: %w", ino, fs.ErrNotExist)
	}
	var ip *inode
	if err == nil {
		ip, err = f.inode(sub, n)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if ip.mode&fsys.S_IFMT != fsys.S_IFREG {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("inode %d is not a regular file: %w", ino, fs.ErrInvalid)}
	}
	return &file{fileReader: fileReader{f: f, ip: ip}, name: name, fi: f.info(path.Base(name), ip)}, nil
}
