package fat

import (
	"fmt"
	"io/fs"

	"github.com/vmdkmount/vmdkmount/volumes/fsys"
)

// Open opens a file (an fsys.File with ReadAt) or a directory (an fs.ReadDirFile).
func (f *FS) Open(name string) (fs.File, error) {
	return f.Plain.Open(name, func(n node, fi *fsys.Info) (fs.File, error) {
		e := n.ent
		size := int64(e.size)
		if size > 0 && e.cluster == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: file of %d bytes has no first cluster", ErrCorrupt, e.size)}
		}
		cs := f.g.clusterSize
		return &fsys.ClusterFile{Name: name, FileInfo: fi, Size: size, Valid: size, ClusterSize: cs, R: f.r,
			Offset: f.clusterOffset, Corrupt: ErrCorrupt,
			Load: func() ([]fsys.ClusterRun, error) {
				c, err := f.tab.Walk(e.cluster, (size+cs-1)/cs)
				if err != nil {
					return nil, err
				}
				return c.Runs, nil
			}}, nil
	})
}
