package exfat

import (
	"fmt"
	"io/fs"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Open opens a file (an fsys.File with ReadAt) or a directory (an fs.ReadDirFile). Bytes of a file at
// or past its valid data length read as zeros, and nothing there is read from the volume.
func (f *FS) Open(name string) (fs.File, error) {
	return f.Plain.Open(name, func(n node, fi *fsys.Info) (fs.File, error) {
		e := n.ent
		size := fi.St.Size
		if size > 0 && !e.allocated {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: file of %d bytes has no allocation", ErrCorrupt, size)}
		}
		valid := int64(min(e.validLen, e.dataLen, uint64(size)))
		cs := f.g.clusterSize
		return &fsys.ClusterFile{Name: name, FileInfo: fi, Size: size, Valid: valid, ClusterSize: cs, R: f.r,
			Offset: f.clusterOffset, Corrupt: ErrCorrupt,
			Load: func() ([]fsys.ClusterRun, error) { return f.tab.clustersOf(e.first, (valid+cs-1)/cs, e.contiguous) }}, nil
	})
}
