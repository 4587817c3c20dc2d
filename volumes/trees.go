package volumes

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/exfat"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/fat"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/iso9660"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/ntfs"
	"github.com/vmdkmount/vmdkmount/volumes/fsys/squashfs"
)

// TreeOptions tune the file trees of volumes.
type TreeOptions struct {
	// ShowSystemFiles shows NTFS metadata files ($MFT, $LogFile, …), hidden by default.
	ShowSystemFiles bool
}

// ErrNoTree is returned (wrapped) for a volume whose filesystem has no reader: it stays raw-only.
var ErrNoTree = errors.New("no file tree for this filesystem")

// HasTree tells whether OpenTree has a reader for the volume's filesystem.
func (v *Volume) HasTree() bool {
	_, ok := treeOpeners[v.Filesystem.Type]
	return ok && !v.Incomplete && !v.Container
}

var treeOpeners = map[string]func(v *Volume, opt TreeOptions) (fsys.FS, error){
	"ext2":     openExt4,
	"ext3":     openExt4,
	"ext4":     openExt4,
	"fat12":    plain(fat.Open),
	"fat16":    plain(fat.Open),
	"fat32":    plain(fat.Open),
	"exfat":    plain(exfat.Open),
	"xfs":      openXFS,
	"iso9660":  plain(iso9660.Open),
	"squashfs": plain(squashfs.Open),
	"btrfs":    openBtrfs,
	"ntfs": func(v *Volume, opt TreeOptions) (fsys.FS, error) {
		return ntfs.Open(v, v.Size(), ntfs.Options{ShowSystemFiles: opt.ShowSystemFiles})
	},
}

func plain(open func(r io.ReaderAt, size int64) (fsys.FS, error)) func(*Volume, TreeOptions) (fsys.FS, error) {
	return func(v *Volume, _ TreeOptions) (fsys.FS, error) { return open(v, v.Size()) }
}

// OpenTree opens the volume's filesystem as a read-only file tree.
func (v *Volume) OpenTree(opt TreeOptions) (fsys.FS, error) {
	if v.Incomplete {
		return nil, fmt.Errorf("volume %s: %w", v.ID, ErrIncomplete)
	}
	open, ok := treeOpeners[v.Filesystem.Type]
	if !ok {
		name := v.Filesystem.Type
		if name == "" {
			name = "an unrecognised filesystem"
		}
		return nil, fmt.Errorf("volume %s holds %s: %w (raw access only)", v.ID, name, ErrNoTree)
	}
	t, err := open(v, opt)
	if err != nil {
		return nil, fmt.Errorf("volume %s (%s): %w", v.ID, v.Filesystem.Type, err)
	}
	return t, nil
}
